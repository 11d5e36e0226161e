"""``ptv2 register``, ``ptv2 promote``, ``ptv2 ui`` (and ``ptv2 versions``, ``versions_cmd``): adapters in the MLflow model registry.

The store is ``MLFLOW_TRACKING_URI`` when set, else the local default (sqlite file and artifact
folder under ``PTV2_HOME``); see docs/registry.md.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer

from pipelines.cli.app import app


def _parse_tags(pairs: list[str]) -> dict[str, str]:
    from ptv2_core.errors import Ptv2Error

    tags = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise Ptv2Error(f"--tag expects KEY=VALUE, got {pair!r}")
        tags[key.strip()] = value
    return tags


@app.command()
def register(
    adapter: Path = typer.Option(..., help="Adapter folder (adapter.safetensors, adapter_config.json, metrics.json)."),
    task: Optional[str] = typer.Option(None, help="The adapter's task: a packaged task (trec, rt, wnut16, bbc), a task "
                                       "YAML, or hub:<name> (default: the task it was trained on)."),
    name: Optional[str] = typer.Option(None, help="Registered model name (default: ptv2-<task>); it cannot hold "
                                       "/ : @ % ? ' \" \\ or control characters."),
    tag: list[str] = typer.Option([], "--tag", help="Extra version tag KEY=VALUE (repeatable), e.g. study=trec-v2."),
    run_id: Optional[str] = typer.Option(None, help="Log the model into this existing MLflow run."),
) -> None:
    """Register an adapter as a new model version with the alias 'challenger'."""
    from components.registry.register import register_adapter
    from pipelines.cli.committed import no_interrupts_from_here

    if task is None:
        from ptv2_core.adapter import own_task, read_adapter_config, recorded_metrics

        task = own_task(read_adapter_config(adapter), recorded_metrics(adapter))
    # "aliased": the version exists with its aliases; a signal from here on would only make a script register again
    version = register_adapter(adapter, task, name=name, tags=_parse_tags(tag) or None, run_id=run_id,
                               on_step=lambda step: step == "aliased" and no_interrupts_from_here(),
                               echo=lambda line: typer.echo(line, err=True))
    typer.echo(f"registered {version.name} version {version.version} (aliases: {', '.join(version.aliases) or 'none'}); "
               f"load it with models:/{version.name}@challenger")


@app.command()
def promote(
    task: str = typer.Option(..., help="Task (model ptv2-<task>) or a registered model name."),
    margin: float = typer.Option(0.5, help="Percentage points the challenger must win by (lower end of the 95% "
                                 "paired-bootstrap interval)."),
    force: bool = typer.Option(False, help="Promote whatever the scores say (needs --reason)."),
    reason: Optional[str] = typer.Option(None, help="Why, for a forced promotion (recorded as a tag)."),
    max_eval: Optional[int] = typer.Option(None, help="Score on at most N test examples."),
    version: Optional[int] = typer.Option(None, help="Decide on this version instead of the one 'challenger' "
                                          "points at."),
    batch_size: int = typer.Option(64, help="Test examples scored at once (lower it if scoring runs out of memory)."),
    as_json: bool = typer.Option(False, "--json", help="Print the decision as JSON."),
) -> None:
    """Score challenger against champion on the same test split; move 'champion' if the challenger wins."""
    from components.registry.promote import promote as run_promote
    from pipelines.cli.common import bars_on_a_terminal_only, check_batch_size
    from ptv2_core.errors import Ptv2Error

    if reason is not None and not force:
        raise Ptv2Error("--reason goes with --force")
    check_batch_size(batch_size)
    bars_on_a_terminal_only()
    d = run_promote(task, margin=margin, force=force, reason=reason, max_eval=max_eval, version=version,
                    batch_size=batch_size, progress=True)
    if d.demoted is not None:  # a roll-back: the next plain promote must not bring the demoted version back
        typer.echo(f"{d.name}: version {d.demoted} is tagged promotion.demoted: a promotion by the rule refuses it, "
                   "only --force promotes it again"
                   + (f"; alias 'challenger' no longer names it (the next `ptv2 register` sets it)"
                      if d.challenger_moved else ""), err=True)
    if as_json:
        typer.echo(json.dumps(asdict(d), indent=2))
        return
    if not d.promoted and d.challenger is not None and d.challenger == d.champion:
        typer.echo(f"{d.name}: version {d.challenger} is already champion; nothing scored or changed")
        return
    verdict = "promoted" if d.promoted else "not promoted"
    typer.echo(f"{d.name}: version {d.challenger} {verdict}"
               + (f" (champion is now version {d.challenger})" if d.promoted else
                  f" (champion stays {'version ' + str(d.champion) if d.champion is not None else 'unset'})"))
    typer.echo(d.reason)


@app.command()
def ui(
    port: int = typer.Option(5000, help="Port on 127.0.0.1."),
    workers: int = typer.Option(1, help="Server worker processes."),
) -> None:
    """Start the MLflow UI on 127.0.0.1 for the local store (Ctrl-C stops it)."""
    from components.registry import store
    from optuna_studies import settings
    from optuna_studies.urls import mask_url
    from ptv2_core.errors import Ptv2Error

    if not 0 < port < 65536:
        raise Ptv2Error(f"--port must be 1..65535, got {port}")
    if workers < 1:
        raise Ptv2Error(f"--workers must be at least 1, got {workers}")
    _check_port_free(port)  # mlflow's server logs a failed bind and exits 0, after creating the store
    uri = store.tracking_uri()
    if not store.is_local_store(uri):
        raise Ptv2Error(f"MLFLOW_TRACKING_URI points to a server ({mask_url(uri)}): open its UI there; "
                        "`ptv2 ui` serves the local store only")
    root = settings.artifact_root(tracking_uri=uri)
    cmd = [sys.executable, "-m", "mlflow", "server", "--default-artifact-root", root,
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    # the store by environment, not on the command line, where `ps` shows a database password to anyone
    env = dict(os.environ, MLFLOW_BACKEND_STORE_URI=uri)
    # MLflow 3 starts a job runner beside the server (huey consumers for its GenAI jobs, 8 more
    # processes) unless told not to; ptv2 submits no such job. A user's own value wins.
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    typer.echo(f"MLflow UI for {mask_url(uri)} on http://127.0.0.1:{port} (Ctrl-C stops it)", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, cmd, env)  # the server replaces this process: signals reach it directly


def _check_port_free(port: int) -> None:
    """Bind 127.0.0.1:``port`` as the server would (address reuse on, as uvicorn sets it), or
    refuse with the reason."""
    import socket

    from ptv2_core.errors import Ptv2Error

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise Ptv2Error(f"port {port} on 127.0.0.1 cannot be used ({e.strerror or e}): "
                            "pick another with --port") from None


from pipelines.cli import versions_cmd  # noqa: E402,F401  (registers versions, listed after ui)
