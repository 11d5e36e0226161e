"""``ptv2 versions``: what is registered, per registered model (task), read from the registry's tags."""
from __future__ import annotations

import json
from typing import Optional

import typer

from pipelines.cli.app import app

LABELS_SHOWN = 40  # characters of labels in the table; --json has them all


@app.command()
def versions(
    task: Optional[str] = typer.Option(None, help="Task (model ptv2-<task>) or a registered model name "
                                       "(default: every ptv2 registered model in the store)."),
    mlflow_uri: Optional[str] = typer.Option(None, help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or sqlite "
                                             "in PTV2_HOME)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array, one object per version (keys in "
                                 "docs/registry.md)."),
) -> None:
    """List registered versions: aliases, task type, labels, prompt length, base model, dev/test scores,
    created, source run (the registry's tags only: no artifact is downloaded)."""
    from components.registry.listing import list_versions
    from optuna_studies.urls import mask_url

    uri, rows = list_versions(task, mlflow_uri)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in rows], indent=2, ensure_ascii=False, allow_nan=False))
    if not rows:
        where = f"'{task}' has no versions" if task is not None else "no ptv2 registered models"
        typer.echo(f"{where} in {mask_url(uri)} (register one with `ptv2 register`)", err=True)
        return
    if not as_json:
        _table(rows, mask_url(uri))


def _table(rows, where: str) -> None:
    import io

    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, caption=Text(f"MLflow store: {where}"), caption_justify="left")
    for col in ("model", "version", "aliases", "type", "labels", "prompt len", "base model", "metric", "dev", "test",
                "created (UTC)", "run"):
        table.add_column(col, justify="right" if col in ("version", "prompt len", "dev", "test") else "left")
    for r in rows:
        cells = (r.model, str(r.version), ", ".join("@" + a for a in r.aliases) or "-", r.task_type or "-",
                 _labels(r), _or_dash(r.prompt_len), r.base_model or "-", r.metric or "-",
                 _score(r.dev, r.metric), _score(r.test, r.metric),
                 r.created.replace("T", " ")[:16] if r.created else "-", r.run_id or "-")
        table.add_row(*(Text(c) for c in cells))  # text as written: a label like [O] is no rich markup
    probe = Console()
    # a pipe or log gets whole rows, not cells wrapped at rich's 80 columns; no padding at the line ends
    out = Console(file=io.StringIO(), width=probe.width if probe.is_terminal else 1000, color_system=None)
    out.print(table)
    typer.echo("\n".join(line.rstrip() for line in out.file.getvalue().splitlines()))

def _labels(r) -> str:
    if r.labels is None:
        return "-"
    text = ", ".join(r.labels)
    if len(text) > LABELS_SHOWN:
        text = text[:LABELS_SHOWN - 1].rstrip(", ") + "…"
    return f"{r.label_count if r.label_count is not None else len(r.labels)}: {text}"


def _score(scores: dict[str, float], metric: str | None) -> str:
    value = scores.get(metric) if metric else None
    if value is None and not (metric and metric in scores):  # a score that is not finite: None, shown '-'
        value = scores.get("score")
    return "-" if value is None else f"{value:.4f}"


def _or_dash(x) -> str:
    return "-" if x is None else str(x)
