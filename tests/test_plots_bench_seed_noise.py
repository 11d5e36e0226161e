"""bench/seed_noise.py's picture: each panel's configuration ticks ("32 / 0.026") say what they are."""
from __future__ import annotations

from bench.seed_noise import figure


def test_configuration_ticks_are_labelled_as_length_and_learning_rate():
    import matplotlib.pyplot as plt

    configs = [{"prompt_len": 32, "lr": 0.0261, "seed0": 0.84, "scores": {"0": 0.84, "1": 0.81}},
               {"prompt_len": 16, "lr": 0.0431, "seed0": 0.69, "scores": {"0": 0.69, "1": 0.72}}]
    doc = {"rows": [{"task": "rt", "start": "fresh", "target": 0.705, "configs": configs}]}
    fig = figure(doc)
    try:
        (ax,) = fig.axes
        assert [t.get_text() for t in ax.get_xticklabels()] == ["32\n0.026", "16\n0.043"]
        assert ax.get_xlabel() == "prompt length\nlearning rate"
        assert fig.get_suptitle().startswith("blue: the grid's best configuration")
        assert fig._suptitle.get_fontsize() >= 9
    finally:
        plt.close(fig)
