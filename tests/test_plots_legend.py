"""Completed and pruned trials tell apart on both length × learning-rate maps (PNG and HTML):
a pruned trial's score is after fewer epochs, so a reader must see which dots those are."""
from __future__ import annotations

import math

from optuna_studies.plots import length_lr_figure, length_lr_html_figure


def rec(number, prompt_len, lr, status, score, epochs):
    return {"number": number, "prompt_len": prompt_len, "lr": lr, "status": status, "best_score": score,
            "epochs_run": epochs, "started": 1000.0 + number, "ended": 1010.0 + number,
            "adapter": f"/a/t{number}" if status in ("completed", "pruned") else None}


RECORDS = [rec(0, 8, 0.0099, "completed", 0.5416666666666666, 2), rec(1, 32, 0.0088, "pruned", 0.41666666, 1),
           rec(2, 32, 0.0037, "pruned", 0.3125, 1), rec(3, 16, 0.0486, "completed", 0.7291666, 2),
           rec(4, 4, 0.02, "failed", math.nan, 0)]


def test_png_map_has_a_legend_entry_for_completed_pruned_and_failed_trials():
    import matplotlib.pyplot as plt

    fig = length_lr_figure(RECORDS, "dev_score", "max", "trec / minilm", (4, 8, 16, 32))
    try:
        ax = fig.axes[0]
        by_label = {c.get_label(): c for c in ax.collections}
        assert by_label["completed"].get_offsets().tolist() == [[0.0099, 8], [0.0486, 16]]
        assert by_label["pruned (stopped early)"].get_offsets().tolist() == [[0.0088, 32], [0.0037, 32]]
        assert len(by_label["failed"].get_offsets()) == 1
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend == ["completed", "pruned (stopped early)", "failed", "best: trial 3"]
        # pruned rings are hollow, coloured on the same score scale as the completed dots
        assert (by_label["pruned (stopped early)"].get_facecolors().size == 0
                or (by_label["pruned (stopped early)"].get_facecolors()[:, 3] == 0).all())
        done, rings = by_label["completed"], by_label["pruned (stopped early)"]
        assert rings.get_edgecolors().tolist() == [list(done.cmap(done.norm(s))) for s in (0.41666666, 0.3125)]
        assert by_label["completed"].norm.vmin == 0.3125 and by_label["completed"].norm.vmax >= 0.7291666
        assert "small dots" not in ax.get_title() and ax.get_xscale() == "log"
    finally:
        plt.close(fig)


def test_html_map_draws_pruned_trials_apart_with_readable_hover():
    fig = length_lr_html_figure(RECORDS, "dev_score", "max", "trec / minilm", (4, 8, 16, 32))
    traces = {t.name: t for t in fig.data}
    done, pruned = traces["completed"], traces["pruned (stopped early)"]
    assert list(done.x) == [0.0099, 0.0486] and list(pruned.x) == [0.0088, 0.0037]
    assert pruned.marker.symbol == "circle-open" and done.marker.symbol in (None, "circle")
    # one colour scale for both, shown once
    assert (done.marker.cmin, done.marker.cmax) == (pruned.marker.cmin, pruned.marker.cmax) == (0.3125, 0.7291666)
    assert done.marker.showscale and not pruned.marker.showscale
    assert "0.5417" in done.text[0] and "0.5416666" not in done.text[0] and "2 epochs" in done.text[0]
    assert "pruned after 1 epoch" in pruned.text[0]


def test_every_score_axis_says_it_is_the_trials_best_epoch():
    """A trial's point is its best epoch's score (the epoch its adapter keeps), not its last: trial 4
    of a real search scored 0.729 after epoch 1 and 0.667 after epoch 2, and sits at 0.729."""
    import matplotlib.pyplot as plt

    from optuna_studies.plots import length_score_figure, over_time_figure, score_label

    assert score_label("dev_score") == "dev score (each trial's best epoch)"
    for fig, axis in ((length_lr_figure(RECORDS, "dev_score", "max", "t"), lambda f: f.axes[1].get_ylabel()),
                      (length_score_figure(RECORDS, "dev_score", "max", "t"), lambda f: f.axes[0].get_ylabel()),
                      (over_time_figure(RECORDS, "dev_score", "max", "t"), lambda f: f.axes[0].get_ylabel())):
        try:
            assert axis(fig) == "dev score (each trial's best epoch)"
        finally:
            plt.close(fig)
    html = length_lr_html_figure(RECORDS, "dev_score", "max", "t")
    assert html.data[0].marker.colorbar.title.text == "dev score (each trial's best epoch)"


def test_every_picture_names_completed_and_pruned_trials_alike():
    import matplotlib.pyplot as plt

    from optuna_studies.plots import length_score_figure, over_time_figure

    for draw in (length_lr_figure, length_score_figure, over_time_figure):
        fig = draw(RECORDS, "dev_score", "max", "t")
        try:
            legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
            assert legend[:2] == ["completed", "pruned (stopped early)"], legend
        finally:
            plt.close(fig)


def test_html_map_lists_in_its_legend_only_the_kinds_of_trial_it_has():
    done = [r for r in RECORDS if r["status"] == "completed"]
    fig = length_lr_html_figure(done, "dev_score", "max", "t")
    shown = [t.name for t in fig.data if t.showlegend is not False]
    assert shown == ["completed", "best: trial 3"]
