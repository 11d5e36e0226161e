"""The study's artifacts from its trial records: trials.csv, the length × learning-rate map
(PNG and interactive HTML) and trials over time (PNG)."""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from optuna_studies.records import COLUMNS

FILES = ("trials.csv", "length_lr.png", "length_lr.html", "trials_over_time.png")


def write_artifacts(records: list[dict[str, Any]], folder: Path, metric: str, mode: str, title: str) -> list[Path]:
    """Write every artifact of ``FILES`` into ``folder``. Returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_table(records, folder / "trials.csv")
    plot_length_lr(records, folder / "length_lr.png", metric, title)
    plot_length_lr_html(records, folder / "length_lr.html", metric, title)
    plot_over_time(records, folder / "trials_over_time.png", metric, mode, title)
    return [folder / f for f in FILES]


def write_table(records: list[dict[str, Any]], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMNS), extrasaction="ignore")
        writer.writeheader()
        for r in records:
            writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in COLUMNS})


def _scored(records: list[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
    ok = [r for r in records if isinstance(r.get("best_score"), (int, float)) and math.isfinite(r["best_score"])]
    return ok, [r for r in records if r not in ok]


def plot_length_lr(records: list[dict[str, Any]], path: Path, metric: str, title: str) -> None:
    """Scatter of learning rate (log x) × prompt length (log2 y), coloured by score; failed trials as x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok, bad = _scored(records)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    if ok:
        sc = ax.scatter([r["lr"] for r in ok], [r["prompt_len"] for r in ok], c=[r["best_score"] for r in ok],
                        cmap="viridis", s=[70 if r["status"] == "completed" else 35 for r in ok], edgecolors="k")
        fig.colorbar(sc, ax=ax, label=metric)
    if bad:
        ax.scatter([r["lr"] for r in bad], [r["prompt_len"] for r in bad], marker="x", c="red", label="failed")
        ax.legend(loc="best")
    ax.set_xscale("log")
    ax.set_yscale("log", base=2)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("prompt length")
    ax.set_title(f"{title}: length × learning rate (small dots: pruned)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_length_lr_html(records: list[dict[str, Any]], path: Path, metric: str, title: str) -> None:
    """The same map as an interactive plotly page (hover shows each trial)."""
    import plotly.graph_objects as go

    ok, bad = _scored(records)
    hover = lambda r: (f"trial {r.get('number')}<br>len {r['prompt_len']}, lr {r['lr']:.3g}<br>"
                       f"{r['status']}, {r.get('best_score')}")
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[r["lr"] for r in ok], y=[r["prompt_len"] for r in ok], mode="markers", name="scored",
                             text=[hover(r) for r in ok], hoverinfo="text",
                             marker=dict(size=12, color=[r["best_score"] for r in ok], colorscale="Viridis",
                                         showscale=True, colorbar=dict(title=metric))))
    fig.add_trace(go.Scatter(x=[r["lr"] for r in bad], y=[r["prompt_len"] for r in bad], mode="markers",
                             name="failed", text=[hover(r) for r in bad], hoverinfo="text",
                             marker=dict(symbol="x", size=10, color="red")))
    fig.update_layout(title=f"{title}: length × learning rate", xaxis=dict(type="log", title="learning rate"),
                      yaxis=dict(type="log", title="prompt length"))
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)


def plot_over_time(records: list[dict[str, Any]], path: Path, metric: str, mode: str, title: str) -> None:
    """Each trial's score at the time it ended, with the best so far as a step line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok, _ = _scored(records)
    ok = sorted(ok, key=lambda r: r.get("ended") or 0)
    t0 = min((r.get("started") or 0 for r in records), default=0)
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    if ok:
        xs = [((r.get("ended") or t0) - t0) / 60 for r in ok]
        ys = [r["best_score"] for r in ok]
        best, run = [], None
        for y in ys:
            run = y if run is None else (max(run, y) if mode == "max" else min(run, y))
            best.append(run)
        ax.scatter(xs, ys, label="trial", zorder=3)
        ax.step(xs, best, where="post", color="C1", label="best so far")
        ax.legend(loc="best")
    ax.set_xlabel("minutes since the first trial started")
    ax.set_ylabel(metric)
    ax.set_title(f"{title}: trials over time")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
