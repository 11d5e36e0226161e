"""bench/search_cost.py's picture: the "not reached" notes of neighbouring searches do not run
into each other (the committed picture read "reachedreached")."""
from __future__ import annotations

from bench.search_cost import figure


def search(seed, to_target, compute=40):
    return {"seed": seed, "to_target": to_target, "compute": compute}


def test_not_reached_notes_of_neighbouring_bars_do_not_overlap():
    import matplotlib.pyplot as plt

    rows = [{"task": t, "start": "fresh", "grid": {"compute": 100},
             "searches": [search(0, 25), search(1, None), search(2, None)]} for t in ("trec", "trec", "rt", "rt", "wnut16", "wnut16")]
    fig = figure({"rows": rows})
    try:
        ax = fig.axes[0]
        fig.canvas.draw()
        notes = [t for t in ax.texts if "not" in t.get_text()]
        assert len(notes) == 12
        boxes = [t.get_window_extent(fig.canvas.get_renderer()) for t in notes]
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
        # each note stays above its own bar slot, inside the axes
        assert all(ax.get_window_extent().contains(*b.get_points().mean(axis=0)) for b in boxes)
    finally:
        plt.close(fig)
