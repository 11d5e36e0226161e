"""The PNG legends list only the kinds of trial a study has (the HTML map does already): a study of
one completed trial has no "pruned" entry, an all-pruned study no empty "completed" one."""
from __future__ import annotations

import pytest

from optuna_studies.plots import length_lr_figure, length_score_figure, over_time_figure


def rec(number, prompt_len, lr, status, score):
    return {"number": number, "prompt_len": prompt_len, "lr": lr, "status": status, "best_score": score,
            "epochs_run": 2 if status == "completed" else 1, "started": 1000.0 + number,
            "ended": 1010.0 + number, "adapter": f"/a/t{number}"}


ONE_DONE = [rec(0, 8, 0.01, "completed", 0.5)]
ALL_PRUNED = [rec(0, 8, 0.01, "pruned", 0.4), rec(1, 16, 0.02, "pruned", 0.3)]
MIXED = [rec(0, 8, 0.01, "completed", 0.5), rec(1, 16, 0.02, "pruned", 0.3)]


def legend(draw, records):
    import matplotlib.pyplot as plt

    fig = draw(records, "dev_score", "max", "t", (8, 16))
    try:
        return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    finally:
        plt.close(fig)


@pytest.mark.parametrize("records, kinds", [(ONE_DONE, ["completed"]), (ALL_PRUNED, ["pruned (stopped early)"]),
                                            (MIXED, ["completed", "pruned (stopped early)"])])
def test_length_lr_png_legend_lists_only_the_kinds_present(records, kinds):
    shown = legend(length_lr_figure, records)
    assert [t for t in shown if not t.startswith("best")] == kinds, shown


@pytest.mark.parametrize("records, kinds", [(ONE_DONE, ["completed", "best per length"]),
                                            (ALL_PRUNED, ["pruned (stopped early)"]),
                                            (MIXED, ["completed", "pruned (stopped early)", "best per length"])])
def test_length_score_png_legend_lists_only_the_kinds_present(records, kinds):
    shown = legend(length_score_figure, records)
    assert [t for t in shown if not t.startswith("best:")] == kinds, shown


@pytest.mark.parametrize("records, kinds", [(ONE_DONE, ["completed"]), (ALL_PRUNED, ["pruned (stopped early)"]),
                                            (MIXED, ["completed", "pruned (stopped early)"])])
def test_over_time_png_legend_lists_only_the_kinds_present(records, kinds):
    import matplotlib.pyplot as plt

    fig = over_time_figure(records, "dev_score", "max", "t")
    try:
        shown = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    finally:
        plt.close(fig)
    assert [t for t in shown if t in ("completed", "pruned (stopped early)")] == kinds, shown
