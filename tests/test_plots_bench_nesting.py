"""bench/nesting.py's picture: the zero-shot panel's prompt-length axis reads as plain lengths
(1, 2, 4 … 64), not as powers of two (2⁰ … 2⁶)."""
from __future__ import annotations

from bench.nesting import figure

LENGTHS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64)


def run(score):
    return {"pretrained_zero_shot_dev": {"trec": {"4": {"score": score}}},
            "runs": {"trec": {"4": {"pretrained": {"dev_by_epoch": [score, score + 0.1]},
                                    "random": {"dev_by_epoch": [0.2, 0.3]}}}}}


def test_zero_shot_panel_ticks_plain_prompt_lengths():
    import matplotlib.pyplot as plt

    rows = [{"task": "trec", "length": 4, "seeds": [0]}]
    sl = {"trec": {str(n): {"nested": 0.5 + n / 1000, "flat": 0.4 + n / 1000} for n in LENGTHS}}
    fig = figure(rows, {0: run(0.6)}, {0: run(0.5)}, sl)
    try:
        ax = fig.axes[0]
        fig.canvas.draw()
        assert ax.get_xscale() == "log"
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4", "8", "16", "32", "64"]
        assert not [t for t in ax.get_xticklabels(minor=True) if t.get_text()]
        nested = ax.get_lines()[0]
        assert list(nested.get_xdata()) == list(LENGTHS)
    finally:
        plt.close(fig)


def zero_shot_tick_labels(lengths) -> list[str]:
    import matplotlib.pyplot as plt

    rows = [{"task": "trec", "length": 4, "seeds": [0]}]
    sl = {"trec": {str(n): {"nested": 0.5 + n / 1000, "flat": 0.4 + n / 1000} for n in lengths}}
    fig = figure(rows, {0: run(0.6)}, {0: run(0.5)}, sl)
    try:
        fig.canvas.draw()
        return [t.get_text() for t in fig.axes[0].get_xticklabels() if t.get_text()]
    finally:
        plt.close(fig)


def test_lengths_with_no_power_of_two_between_them_are_ticked_themselves():
    """[3]: no power of two within it gave no tick at all; [3, 5]: only 4, not a length scored."""
    assert zero_shot_tick_labels([3]) == ["3"]
    assert zero_shot_tick_labels([3, 5]) == ["3", "5"]
    assert zero_shot_tick_labels([3, 5, 6, 7]) == ["3", "5", "6", "7"]


def test_no_slice_lengths_draw_an_empty_panel():
    assert zero_shot_tick_labels([]) == []
