"""The study's artifacts from its trial records: trials.csv, the length × learning-rate map
(PNG and interactive HTML), score against prompt length (PNG) and trials over time (PNG).
Every picture but the table marks the search's best trial (``records.best_record``, the trial
``best.json`` names) with a star."""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from optuna_studies.records import COLUMNS, best_record, table_row
from ptv2_core.metric_names import objective_name

COMPLETED, PRUNED = "completed", "pruned (stopped early)"  # the legend's names, alike in every picture
FILES = ("trials.csv", "length_lr.png", "length_lr.html", "length_score.png", "trials_over_time.png")


def write_artifacts(records: list[dict[str, Any]], folder: Path, metric: str, mode: str, title: str,
                    lengths: list[int] | tuple[int, ...] = (), task_metric: str = "") -> list[Path]:
    """Write every artifact of ``FILES`` into ``folder``; ``lengths``: the space's prompt-length
    choices, each a tick on the length axes (tried or not); ``task_metric``: the task's metric
    (``metric`` "dev_score" is it on dev), which the score axes name. Returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_table(records, folder / "trials.csv")
    save(length_lr_figure(records, metric, mode, title, lengths, task_metric=task_metric), folder / "length_lr.png")
    length_lr_html_figure(records, metric, mode, title, lengths, task_metric=task_metric).write_html(
        str(folder / "length_lr.html"), include_plotlyjs=True, full_html=True)
    save(length_score_figure(records, metric, mode, title, lengths, task_metric=task_metric), folder / "length_score.png")
    plot_over_time(records, folder / "trials_over_time.png", metric, mode, title, task_metric=task_metric)
    return [folder / f for f in FILES]


def write_table(records: list[dict[str, Any]], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMNS), extrasaction="ignore")
        writer.writeheader()
        for r in records:
            writer.writerow(table_row(r))


def _scored(records: list[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
    ok = [r for r in records if isinstance(r.get("best_score"), (int, float)) and math.isfinite(r["best_score"])]
    return ok, [r for r in records if r not in ok]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path)
    _pyplot().close(fig)


def lr_ticks(values: list[float], n: int = 5) -> list[float]:
    """About ``n`` learning rates spread evenly on a log scale over ``values``, inside their range,
    at two significant digits (more when the range is too narrow for two): readable ticks also
    when the range spans less than a decade (matplotlib's own log ticks then crowd minor labels
    like 3×10⁻² and 4×10⁻² into each other)."""
    lo, hi = min(values), max(values)
    if lo == hi:
        return [lo]
    steps = [math.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * i / (n - 1)) for i in range(n)]
    for digits in range(2, 8):
        def rounded(v: float, how) -> float:
            scale = 10.0 ** (math.floor(math.log10(v)) - digits + 1)
            return float(f"{how(v / scale) * scale:.{digits}g}")

        # 1e-4 / 1e-5 is 10.000000000000002: its ceiling must stay 10
        up, down = (lambda q: math.ceil(q - 1e-9)), (lambda q: math.floor(q + 1e-9))
        ends = [rounded(lo, up), rounded(hi, down)]
        ticks = sorted({t for t in [ends[0], *(rounded(v, round) for v in steps[1:-1]), ends[1]] if lo <= t <= hi})
        if len(ticks) >= 2:
            return ticks
    return [lo, hi]


def _length_axis(ax, which: str, lengths: list[int]) -> None:
    """A log2 axis (``which``: "x" or "y") spanning every prompt length given, with a tick at
    each, labelled as the plain number."""
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    lengths = sorted(set(lengths))
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xlim if which == "x" else ax.set_ylim)(lengths[0] / 1.3, lengths[-1] * 1.3)
    axis.set_major_locator(FixedLocator(lengths))
    axis.set_major_formatter(ScalarFormatter())
    axis.set_minor_locator(NullLocator())


def _lr_axis(axis, lrs: list[float]) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    axis.set_major_locator(FixedLocator(lr_ticks(lrs)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_locator(NullLocator())


def score_label(metric: str, task_metric: str = "") -> str:
    """The score axis: a trial's point is its best epoch's score (the epoch its adapter keeps),
    named by the task's metric ("dev accuracy", not "dev_score")."""
    return f"{objective_name(metric, task_metric)} (each trial's best epoch)"


def best_label(best: dict[str, Any]) -> str:
    """The legend entry of the best trial's star."""
    return f"best: trial {best.get('number')}"


def _dots_and_rings(ax, ok: list[dict], x: str, y: str, colour: str, cmap, norm, *, sizes: tuple[int, int],
                    ring_width: float):
    """Completed trials as filled dots, pruned ones as rings of the same colour scale (``colour``'s
    value through ``norm``); the dots' scatter (the colour bar's mappable)."""
    done = [r for r in ok if r["status"] == "completed"]
    stopped = [r for r in ok if r["status"] != "completed"]
    sc = ax.scatter([r[x] for r in done], [r[y] for r in done], c=[r[colour] for r in done], cmap=cmap, norm=norm,
                    s=sizes[0], edgecolors="k", label=_label(COMPLETED, done), zorder=3)
    ax.scatter([r[x] for r in stopped], [r[y] for r in stopped], s=sizes[1], facecolors="none",
               edgecolors=[cmap(norm(r[colour])) for r in stopped], linewidths=ring_width,
               label=_label(PRUNED, stopped), zorder=3)
    return sc


def _label(name: str, points: list) -> str:
    """A scatter's legend name, or matplotlib's hidden one when it has no points: the legend lists
    only the kinds of trial the study has (as the HTML map does)."""
    return name if points else "_nolegend_"


def _star(ax, x: float, y: float, best: dict[str, Any]) -> None:
    """The best trial's star at (x, y), labelled ``best_label``: the axes' last collection."""
    ax.scatter([x], [y], marker="*", s=320, c="gold", edgecolors="k", label=best_label(best), zorder=4)


def length_lr_figure(records: list[dict[str, Any]], metric: str, mode: str, title: str,
                     lengths: list[int] | tuple[int, ...] = (), *, task_metric: str = ""):
    """Scatter of learning rate (log x) × prompt length (log2 y), coloured by score: completed trials
    dots, pruned ones rings (their score is after fewer epochs), failed trials x, each a legend entry;
    the best trial a star (the last collection, labelled ``best_label``)."""
    from matplotlib.colors import Normalize

    plt = _pyplot()
    ok, bad = _scored(records)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    if ok:
        # one score scale for both kinds of trial: the colour bar reads the same on rings and dots
        norm = Normalize(min(r["best_score"] for r in ok), max(r["best_score"] for r in ok))
        cmap = plt.get_cmap("viridis")
        # hollow: the ring's colour is the score (one after fewer epochs), on the colour bar's scale
        sc = _dots_and_rings(ax, ok, "lr", "prompt_len", "best_score", cmap, norm, sizes=(70, 55), ring_width=1.8)
        fig.colorbar(sc, ax=ax, label=score_label(metric, task_metric))
    if bad:
        ax.scatter([r["lr"] for r in bad], [r["prompt_len"] for r in bad], marker="x", c="red", label="failed")
    best = best_record(records, mode)
    if best is not None:
        _star(ax, best["lr"], best["prompt_len"], best)
    if ok or bad:
        ax.legend(loc="best", fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log", base=2)
    if records:
        _length_axis(ax, "y", [*lengths, *(r["prompt_len"] for r in records)])
        _lr_axis(ax.xaxis, [r["lr"] for r in records])
    ax.set_xlabel("learning rate")
    ax.set_ylabel("prompt length")
    ax.set_title(f"{title}: length × learning rate")
    return fig


def best_by_length(records: list[dict[str, Any]], mode: str) -> dict[int, float]:
    """The best score of the trials that ran every epoch, per prompt length (pruned trials stopped
    early: their scores are not comparable)."""
    best: dict[int, float] = {}
    pick = max if mode == "max" else min
    for r in _scored(records)[0]:
        if r["status"] == "completed":
            n = int(r["prompt_len"])
            best[n] = r["best_score"] if n not in best else pick(best[n], r["best_score"])
    return dict(sorted(best.items()))


def length_score_figure(records: list[dict[str, Any]], metric: str, mode: str, title: str,
                        lengths: list[int] | tuple[int, ...] = (), *, task_metric: str = ""):
    """Score against prompt length (log2 x): each trial a dot coloured by its learning rate
    (pruned trials hollow, at the score they were stopped with), the best full trial per length as a line,
    the best trial a star (the last collection, labelled ``best_label``)."""
    from matplotlib.colors import LogNorm

    plt = _pyplot()
    ok, _ = _scored(records)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    if ok:
        norm = LogNorm(min(r["lr"] for r in ok), max(r["lr"] for r in ok) * (1 + 1e-9))
        cmap = plt.get_cmap("plasma")
        sc = _dots_and_rings(ax, ok, "prompt_len", "best_score", "lr", cmap, norm, sizes=(60, 45), ring_width=1.5)
        best = best_by_length(records, mode)
        ax.plot(list(best), list(best.values()), color="0.4", lw=1, marker="_", markersize=18,
                label=_label("best per length", list(best)), zorder=2)
        top = best_record(records, mode)
        if top is not None:
            _star(ax, top["prompt_len"], top["best_score"], top)
        _lr_axis(fig.colorbar(sc, ax=ax, label="learning rate").ax.yaxis, [r["lr"] for r in ok])
        ax.legend(loc="best")
        ax.set_xscale("log", base=2)
        _length_axis(ax, "x", [*lengths, *(r["prompt_len"] for r in records)])
    ax.set_xlabel("prompt length")
    ax.set_ylabel(score_label(metric, task_metric))
    ax.set_title(f"{title}: {objective_name(metric, task_metric)} by prompt length")
    return fig


def _hover(r: dict[str, Any]) -> str:
    """A trial's hover text on the interactive map: its number, length, lr, how it ended, its score."""
    score, epochs = r.get("best_score"), r.get("epochs_run")
    ran = f" after {epochs} epoch{'s' if epochs != 1 else ''}" if isinstance(epochs, int) else ""
    scored = f", {score:.4f}" if isinstance(score, (int, float)) and math.isfinite(score) else ""
    return f"trial {r.get('number')}<br>len {r['prompt_len']}, lr {r['lr']:.3g}<br>{r['status']}{ran}{scored}"


def length_lr_html_figure(records: list[dict[str, Any]], metric: str, mode: str, title: str,
                          lengths: list[int] | tuple[int, ...] = (), *, task_metric: str = ""):
    """The same map as a plotly figure for an interactive page (hover shows each trial, how it ended
    and its score): completed trials dots, pruned ones rings, on one score scale; the best trial a
    star (its last trace, named ``best_label``)."""
    import plotly.graph_objects as go

    ok, bad = _scored(records)
    fig = go.Figure()
    lo, hi = (min(r["best_score"] for r in ok), max(r["best_score"] for r in ok)) if ok else (0, 1)
    for name, kind, symbol in ((COMPLETED, [r for r in ok if r["status"] == "completed"], "circle"),
                               (PRUNED, [r for r in ok if r["status"] != "completed"],
                                "circle-open")):
        fig.add_trace(go.Scatter(x=[r["lr"] for r in kind], y=[r["prompt_len"] for r in kind], mode="markers",
                                 name=name, text=[_hover(r) for r in kind], hoverinfo="text", showlegend=bool(kind),
                                 marker=dict(size=12, symbol=symbol, color=[r["best_score"] for r in kind], cmin=lo,
                                             cmax=hi, colorscale="Viridis", showscale=symbol == "circle",
                                             colorbar=dict(title=score_label(metric, task_metric)),
                                             line=(dict(width=1, color="black") if symbol == "circle"
                                                   else dict(width=2)))))
    fig.add_trace(go.Scatter(x=[r["lr"] for r in bad], y=[r["prompt_len"] for r in bad], mode="markers",
                             name="failed", text=[_hover(r) for r in bad], hoverinfo="text", showlegend=bool(bad),
                             marker=dict(symbol="x", size=10, color="red")))
    best = best_record(records, mode)
    if best is not None:
        fig.add_trace(go.Scatter(x=[best["lr"]], y=[best["prompt_len"]], mode="markers", name=best_label(best),
                                 text=[_hover(best)], hoverinfo="text",
                                 marker=dict(symbol="star", size=22, color="gold", line=dict(width=1, color="black"))))
    ticks = sorted({*lengths, *(r["prompt_len"] for r in records)})
    fig.update_layout(title=f"{title}: length × learning rate", xaxis=dict(type="log", title="learning rate"),
                      yaxis=dict(type="log", title="prompt length", tickvals=ticks, ticktext=[str(n) for n in ticks]))
    return fig


def plot_over_time(records: list[dict[str, Any]], path: Path, metric: str, mode: str, title: str, *,
                   task_metric: str = "") -> None:
    """Each trial's score at the time it ended (pruned trials hollow), with the best so far as a step
    line: the best completed trial so far, as the search picks its best (pruned ones count only
    while no trial has completed); the best trial of all a star."""
    save(over_time_figure(records, metric, mode, title, task_metric=task_metric), path)


def over_time_figure(records: list[dict[str, Any]], metric: str, mode: str, title: str, *, task_metric: str = ""):
    """The figure of ``plot_over_time`` (its step line is ``ax.lines[0]``, the best trial's star the
    last collection, labelled ``best_label``)."""
    plt = _pyplot()
    ok, _ = _scored(records)
    ok = sorted(ok, key=lambda r: r.get("ended") or 0)
    t0 = min((r.get("started") or 0 for r in records), default=0)
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    if ok:
        xs = [((r.get("ended") or t0) - t0) / 60 for r in ok]
        ys = [r["best_score"] for r in ok]
        full = [r["status"] == "completed" for r in ok]
        # the trial the search would have picked at each point in time (none yet: no line there)
        picks = [best_record(ok[:i + 1], mode) for i in range(len(ok))]
        best = [p["best_score"] if p is not None else math.nan for p in picks]
        ax.scatter([x for x, f in zip(xs, full) if f], [y for y, f in zip(ys, full) if f],
                   label=_label(COMPLETED, [f for f in full if f]), zorder=3)
        if not all(full):
            ax.scatter([x for x, f in zip(xs, full) if not f], [y for y, f in zip(ys, full) if not f],
                       facecolors="none", edgecolors="C0", label=PRUNED, zorder=3)
        ax.step(xs, best, where="post", color="C1", label="best so far")
        top = best_record(records, mode)
        if top is not None:
            _star(ax, ((top.get("ended") or t0) - t0) / 60, top["best_score"], top)
        ax.legend(loc="best")
    ax.set_xlabel("minutes since the first trial started")
    ax.set_ylabel(score_label(metric, task_metric))
    ax.set_title(f"{title}: trials over time")
    return fig
