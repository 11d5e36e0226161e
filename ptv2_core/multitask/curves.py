"""The picture of a pre-training run: each task's dev score after every epoch, one line per
prompt length (a leading slice of the shared prompt). Written into the artifact as a PNG."""
from __future__ import annotations

import io
from collections.abc import Sequence

CURVES = "dev_curves.png"


def curves_png(history: Sequence[dict], metrics: dict[str, str], title: str = "") -> bytes:
    """PNG bytes of ``history`` (``prompt_config.json``'s: epoch 0 = before training).
    ``metrics`` names each task's dev metric for its axis label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in metrics if t in history[0]["dev"]] + [t for t in history[0]["dev"] if t not in metrics]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.0 * len(tasks), 3.3), dpi=100, squeeze=False)
    epochs = [h["epoch"] for h in history]
    for ax, task in zip(axes[0], tasks):
        for length in sorted(history[0]["dev"][task], key=int):
            ax.plot(epochs, [h["dev"][task][length]["score"] for h in history], marker="o", ms=3,
                    label=f"L={length}")
        ax.set_title(task)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"dev {metrics.get(task, 'score')}")
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(title="prompt length", fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
