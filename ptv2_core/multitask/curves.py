"""The picture of a pre-training run: each task's dev score after every epoch, one line per
prompt length (a leading slice of the shared prompt). Written into the artifact as a PNG."""
from __future__ import annotations

import io
from collections.abc import Sequence
from ptv2_core.metric_names import metric_name

CURVES = "dev_curves.png"

# one (marker, line style) per length: lengths that score alike stay visible on top of each other
STYLES = (("o", "-"), ("s", "--"), ("^", ":"), ("D", "-."), ("v", (0, (5, 1, 1, 1))), ("P", (0, (1, 3))))


def curves_figure(history: Sequence[dict], metrics: dict[str, str], title: str = ""):
    """The matplotlib figure of ``history`` (``prompt_config.json``'s: epoch 0 = before training):
    a panel per task, a line per length, the lengths' legend right of the panels (covering no data).
    ``metrics`` names each task's dev metric for its axis label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in metrics if t in history[0]["dev"]] + [t for t in history[0]["dev"] if t not in metrics]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.0 * len(tasks) + 1.0, 3.3), dpi=100, squeeze=False,
                             layout="constrained")
    epochs = [h["epoch"] for h in history]
    for ax, task in zip(axes[0], tasks):
        for i, length in enumerate(sorted(history[0]["dev"][task], key=int)):
            marker, style = STYLES[i % len(STYLES)]
            ax.plot(epochs, [h["dev"][task][length]["score"] for h in history], marker=marker, ms=4,
                    linestyle=style, mfc="none", label=f"L={length}")
        ax.set_title(task)
        ax.set_xlabel("epoch (0 = before training)")
        ax.set_ylabel(f"dev {metric_name(metrics.get(task, 'score'))}")
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, title="prompt length", fontsize=8, loc="outside right center")
    if title:
        fig.suptitle(title)
    return fig


def curves_png(history: Sequence[dict], metrics: dict[str, str], title: str = "") -> bytes:
    """PNG bytes of ``curves_figure``."""
    import matplotlib.pyplot as plt

    fig = curves_figure(history, metrics, title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
