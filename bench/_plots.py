"""The bench scripts' shared picture: grouped bars (a group per row of a report, a bar per setting), and
``--replot``: draw a script's picture again from the JSON it wrote, running nothing."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Callable

from bench._args import fail, figure_bytes, write_files


def grouped_bars(groups: list[str], series: dict[str, list[float | None]], *, ylabel: str, title: str,
                 outline: dict[str, list[float | None]] | None = None, errors: dict[str, list[float | None]] | None = None,
                 hline: tuple[float, str] | None = None, missing: str = "n/a", ylim: tuple[float, float] | None = None):
    """A figure of bars: per group (x), one bar per series (value None: ``missing`` written upright in its
    place, so an empty slot does not read as 0). ``outline``: an unfilled bar per series (e.g. "at all"
    behind "within budget"); ``errors``: error bars; ``hline``: (y, label) drawn dashed red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 0.8 / max(1, len(series))
    axes_width = max(4.0, len(groups) * max(1.3, 0.35 + 0.28 * len(series)))  # inches; the legend sits right of it
    fig, ax = plt.subplots(figsize=(axes_width + 2.6, 3.9), dpi=110)
    for k, (name, values) in enumerate(series.items()):
        xs = [x - 0.4 + width * (k + 0.5) for x in range(len(groups))]
        if outline:
            ax.bar([x for x, v in zip(xs, outline[name]) if v is not None], [v for v in outline[name] if v is not None],
                   width=width * 0.9, facecolor="none", edgecolor=f"C{k}", linewidth=1)
        shown = [(x, v, (errors or {}).get(name, [None] * len(values))[i]) for i, (x, v) in enumerate(zip(xs, values))]
        ax.bar([x for x, v, _ in shown if v is not None], [v for _, v, _ in shown if v is not None], width=width * 0.9,
               color=f"C{k}", label=name,
               yerr=[e or 0 for _, v, e in shown if v is not None] if errors else None, capsize=2 if errors else 0)
        for x, v, _ in shown:
            if v is None:
                ax.text(x, 0, missing, ha="center", va="bottom", rotation=90, fontsize=7, color="dimgray")
    if hline:
        ax.axhline(hline[0], color="red", linestyle="--", linewidth=1, label=hline[1])
    ax.set_xticks(list(range(len(groups))), groups, fontsize=8)
    ax.set_xlim(-0.6, len(groups) - 0.4)  # every slot shown, a missing one's note too
    ax.set_ylabel(ylabel)
    ax.set_title(textwrap.fill(title, width=int(13 * axes_width)), fontsize=9)  # wrapped rather than past the axes
    if ylim:
        ax.set_ylim(*ylim)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7)
    fig.tight_layout()
    return fig


def replot(out: Path, name: str, figure: Callable[[dict], object], option: str = "--out") -> None:
    """Write ``out/name.png`` again from ``out/name.json`` (what the script wrote there); a missing or
    unreadable JSON answers one error line, exit 2, and writes nothing."""
    path = out / f"{name}.json"
    try:
        doc = json.loads(path.read_text())
        png = figure_bytes(figure(doc))
    except FileNotFoundError:
        fail(f"--replot: {option} '{out}' holds no {name}.json to draw")
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
        fail(f"--replot: '{path}' is not a {name} report: {type(e).__name__}: {e}")
    write_files(out, {f"{name}.png": png})
    print(f"wrote {out / f'{name}.png'}")
