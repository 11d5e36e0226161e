"""The pre-training picture (dev score per epoch at each prompt length), checked on the real
matplotlib figure: the legend covers no data, every length's line stays visible where lengths
score the same, and the x axis says what epoch 0 is."""
from __future__ import annotations

import pytest

from ptv2_core.multitask.curves import curves_figure, curves_png


def history():
    """Two tasks, three lengths; on trec lengths 8 and 16 score exactly the same (a run saw that)."""
    trec = {0: (0.146, 0.1875, 0.208), 1: (0.542, 0.583, 0.583), 2: (0.542, 0.604, 0.604)}
    rt = {0: (0.667, 0.625, 0.5625), 1: (0.417, 0.417, 0.396), 2: (0.5625, 0.542, 0.375)}
    return [{"epoch": e, "dev": {t: {str(n): {"score": s[e][i]} for i, n in enumerate((4, 8, 16))}
                                 for t, s in (("trec", trec), ("rt", rt))}} for e in range(3)]


@pytest.fixture
def fig():
    import matplotlib.pyplot as plt

    figure = curves_figure(history(), {"trec": "accuracy", "rt": "accuracy"}, "pre-training on trec, rt (minilm)")
    yield figure
    plt.close(figure)


def test_the_legend_sits_outside_every_panel(fig):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert all(ax.get_legend() is None for ax in fig.axes)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["L=4", "L=8", "L=16"]
    box = legend.get_window_extent(renderer)
    for ax in fig.axes:
        assert not box.overlaps(ax.get_window_extent(renderer)), ax.get_title()


def test_each_length_has_its_own_marker_and_line_style(fig):
    for ax in fig.axes:
        styles = [(line.get_marker(), line.get_linestyle()) for line in ax.get_lines()]
        assert len(styles) == 3 and len({m for m, _ in styles}) == 3 and len({s for _, s in styles}) == 3
    # the values plotted are the history's, epoch by epoch
    trec = fig.axes[0]
    assert trec.get_title() == "trec" and list(trec.get_lines()[1].get_ydata()) == [0.1875, 0.583, 0.604]


def test_axes_say_what_they_show(fig):
    for ax in fig.axes:
        assert ax.get_xlabel() == "epoch (0 = before training)" and ax.get_ylabel() == "dev accuracy"
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]
    assert fig.get_suptitle() == "pre-training on trec, rt (minilm)"


def test_png_bytes_are_the_figure():
    data = curves_png(history(), {"trec": "accuracy", "rt": "accuracy"})
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
