"""The search's pictures, drawn by real matplotlib from trial records like a search writes:
score against prompt length, the length × learning-rate map and trials over time."""
from __future__ import annotations

import math

import pytest

from optuna_studies.plots import (FILES, best_by_length, length_lr_figure, length_lr_html_figure, length_score_figure,
                                  lr_ticks, over_time_figure, write_artifacts)


def rec(number, prompt_len, lr, status, score, ended):
    """A record as the trial log writes it: completed and pruned trials keep their adapter."""
    return {"number": number, "ray_trial_id": f"t{number}", "prompt_len": prompt_len, "lr": lr, "status": status,
            "best_score": score, "best_epoch": 1, "epochs_run": 1, "retries": 0, "started": 1000.0 + number,
            "ended": 1000.0 + ended, "duration_s": ended - number, "mlflow_run_id": "", "failure": None,
            "adapter": f"/work/adapters/t{number}" if status in ("completed", "pruned") else None}


RECORDS = [
    rec(0, 8, 0.0139, "completed", 0.68, 40),
    rec(1, 8, 0.0369, "pruned", 0.615, 29),  # stopped after one epoch: not a length's best
    rec(2, 4, 0.0133, "completed", 0.675, 55),
    rec(3, 8, 0.00383, "completed", 0.655, 70),
    rec(4, 32, 0.02, "pruned", 0.99, 80),  # a pruned trial alone at its length: no best there
    rec(5, 4, 0.05, "failed", math.nan, 85),
]


def test_best_by_length_takes_full_trials_only():
    assert best_by_length(RECORDS, "max") == {4: 0.675, 8: 0.68}
    assert best_by_length(RECORDS, "min") == {4: 0.675, 8: 0.655}


@pytest.mark.parametrize("values", [[0.00383, 0.0369], [1e-4, 1e-1], [3e-3, 5e-2], [0.0101, 0.0102]])
def test_lr_ticks_are_readable_and_inside_the_range(values):
    ticks = lr_ticks(values)
    assert 1 <= len(ticks) <= 5 and ticks == sorted(ticks)
    assert all(min(values) <= t <= max(values) for t in ticks), ticks
    digits = 2 if max(values) / min(values) > 1.1 else 3  # a range too narrow for two digits gets three
    assert all(float(f"{t:.{digits}g}") == t for t in ticks), ticks
    assert len(ticks) >= 2
    if max(values) / min(values) > 3:
        assert len(ticks) >= 4  # spread over the range, not one lonely tick per decade
    assert lr_ticks([0.01, 0.01]) == [0.01]


def test_length_score_figure_shows_every_length_of_the_space():
    import matplotlib.pyplot as plt

    fig = length_score_figure(RECORDS, "dev_score", "max", "rt / minilm", lengths=(4, 8, 16, 32))
    try:
        ax = fig.axes[0]
        assert ax.get_xscale() == "log"
        # a tick at every candidate length, tried (4, 8, 32) or not (16), as plain numbers, all in view
        assert [t.get_text() for t in ax.get_xticklabels()] == ["4", "8", "16", "32"]
        lo, hi = ax.get_xlim()
        assert lo < 4 and hi > 32
        (line,) = ax.get_lines()
        assert list(line.get_xdata()) == [4, 8] and list(line.get_ydata()) == [0.675, 0.68]
        full, pruned = ax.collections[:2]
        assert len(full.get_offsets()) == 3 and len(pruned.get_offsets()) == 2
        assert ax.get_ylabel() == "dev score (each trial's best epoch)" and "prompt length" in ax.get_title()
        # the colour bar is the learning rate, labelled in plain numbers inside the trials' range
        bar = fig.axes[1]
        labels = [t.get_text() for t in bar.get_yticklabels()]
        assert labels and all("10^" not in s and "$" not in s for s in labels), labels
    finally:
        plt.close(fig)


def test_write_artifacts_writes_every_picture(tmp_path):
    paths = write_artifacts(RECORDS, tmp_path, "dev_score", "max", "rt / minilm", lengths=(4, 8, 16, 32))
    assert [p.name for p in paths] == list(FILES) and "length_score.png" in FILES
    for p in paths:
        head = p.read_bytes()[:8]
        assert p.stat().st_size > 1000 or p.suffix == ".csv", p
        if p.suffix == ".png":
            assert head == b"\x89PNG\r\n\x1a\n"


def test_pictures_of_a_study_with_no_scored_trial(tmp_path):
    """Every trial failed: the pictures are still written (empty), not a crash at the end of a search."""
    bad = [rec(0, 8, 0.01, "failed", math.nan, 5), rec(1, 16, 0.02, "diverged", None, 9)]
    paths = write_artifacts(bad, tmp_path, "dev_score", "max", "t", lengths=(8, 16))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES) and all(p.is_file() for p in paths)
    assert all((tmp_path / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in FILES if f.endswith(".png"))
    assert (tmp_path / "trials.csv").read_text().count("\n") == 3  # a header and both trials


def test_interactive_map_ticks_every_length(tmp_path):
    write_artifacts(RECORDS, tmp_path, "dev_score", "max", "rt / minilm", lengths=(4, 8, 16, 32))
    html = (tmp_path / "length_lr.html").read_text()
    assert '"tickvals":[4,8,16,32]' in html and '"ticktext":["4","8","16","32"]' in html


@pytest.mark.parametrize("mode", ["max", "min"])
def test_best_so_far_over_time_is_the_best_completed_trial(mode):
    """The step line follows the trial the search would pick: a pruned trial's score (after fewer
    epochs) leads only until the first trial completes, and never beats a completed one."""
    import matplotlib.pyplot as plt

    sign = 1 if mode == "max" else -1
    trials = [rec(0, 4, 0.01, "pruned", sign * 0.9, 10), rec(1, 4, 0.02, "completed", sign * 0.6, 20),
              rec(2, 8, 0.01, "pruned", sign * 0.95, 30), rec(3, 8, 0.02, "completed", sign * 0.7, 40),
              rec(4, 8, 0.03, "completed", sign * 0.65, 50)]
    fig = over_time_figure(trials, "dev_score", mode, "t")
    try:
        (line,) = fig.axes[0].lines
        assert list(line.get_ydata()) == pytest.approx([sign * y for y in (0.9, 0.6, 0.6, 0.7, 0.7)])
    finally:
        plt.close(fig)


def test_best_so_far_over_time_follows_the_searchs_own_pick():
    """A scored trial without an adapter is none the search can pick (records.best_record): the step
    line went up to its score, above the star on the trial best.json names."""
    import matplotlib.pyplot as plt

    trials = [rec(0, 4, 0.01, "completed", 0.6, 10), rec(1, 8, 0.02, "completed", 0.9, 20) | {"adapter": None}]
    fig = over_time_figure(trials, "dev_score", "max", "t")
    try:
        ax = fig.axes[0]
        (line,) = ax.lines
        assert list(line.get_ydata()) == pytest.approx([0.6, 0.6])
        (star,) = [c for c in ax.collections if c.get_label().startswith("best: ")]
        assert star.get_label() == "best: trial 0"
    finally:
        plt.close(fig)


def star_path():
    """The outline matplotlib's scatter draws for ``marker="*"``."""
    from matplotlib.markers import MarkerStyle

    star = MarkerStyle("*")
    return star.get_path().transformed(star.get_transform())


@pytest.mark.parametrize("mode, number", [("max", 0), ("min", 3)])
def test_the_best_trial_is_starred_on_the_map_and_over_time(mode, number, tmp_path):
    """The trial best.json names (the best completed one: pruned trial 4's 0.99 after fewer epochs
    is not it) gets a star at its own coordinates, in the PNG map, the HTML map, score by length
    and over time."""
    import matplotlib.pyplot as plt
    import numpy as np

    best = next(r for r in RECORDS if r["number"] == number)
    minutes = (best["ended"] - min(r["started"] for r in RECORDS)) / 60
    pictures = ((length_lr_figure(RECORDS, "dev_score", mode, "t", (4, 8, 16, 32)), (best["lr"], best["prompt_len"])),
                (length_score_figure(RECORDS, "dev_score", mode, "t", (4, 8, 16, 32)),
                 (best["prompt_len"], best["best_score"])),
                (over_time_figure(RECORDS, "dev_score", mode, "t"), (minutes, best["best_score"])))
    for fig, xy in pictures:
        try:
            ax = fig.axes[0]
            stars = [c for c in ax.collections if c.get_label() == f"best: trial {number}"]
            assert len(stars) == 1 and stars[0].get_offsets().tolist() == [list(xy)]
            assert np.allclose(stars[0].get_paths()[0].vertices, star_path().vertices)
            assert f"best: trial {number}" in [t.get_text() for t in ax.get_legend().get_texts()]
        finally:
            plt.close(fig)
    html = length_lr_html_figure(RECORDS, "dev_score", mode, "t", (4, 8, 16, 32))
    stars = [t for t in html.data if t.name == f"best: trial {number}"]
    assert len(stars) == 1 and stars[0].marker.symbol == "star"
    assert (list(stars[0].x), list(stars[0].y)) == ([best["lr"]], [best["prompt_len"]])
    write_artifacts(RECORDS, tmp_path, "dev_score", mode, "t", lengths=(4, 8, 16, 32))
    assert f'"name":"best: trial {number}"' in (tmp_path / "length_lr.html").read_text()


def test_the_star_is_on_the_best_pruned_trial_only_when_none_completed():
    import matplotlib.pyplot as plt

    pruned = [rec(0, 4, 0.01, "pruned", 0.5, 10), rec(1, 8, 0.02, "pruned", 0.7, 20),
              rec(2, 8, 0.03, "failed", None, 30)]
    fig = length_lr_figure(pruned, "dev_score", "max", "t")
    try:
        (star,) = [c for c in fig.axes[0].collections if c.get_label().startswith("best: ")]
        assert star.get_label() == "best: trial 1" and star.get_offsets().tolist() == [[0.02, 8]]
    finally:
        plt.close(fig)
    nothing = [rec(0, 8, 0.01, "failed", math.nan, 5)]  # no score: no star
    assert not [t for t in length_lr_html_figure(nothing, "dev_score", "max", "t").data if t.name.startswith("best")]
    fig = over_time_figure(nothing, "dev_score", "max", "t")
    try:
        assert not fig.axes[0].collections
    finally:
        plt.close(fig)
