"""The pictures of the bench scripts that wrote only numbers (pruning, start-up and sampler replay,
throughput, inference batching): each draws the recorded JSON in bench/results, and ``--replot`` writes
the PNG beside it from that JSON alone, running nothing."""
from __future__ import annotations

import importlib
import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "bench"))  # the scripts import each other by their own names, as when run

# script, recorded JSON, words in the title, y label, x tick labels (first), bars' series (legend)
CASES = [
    ("pruning_replay", RESULTS / "pruning_replay.json", ["Pruning replay", "2000 replays", "35 %"],
     "% of replayed random searches", "trec\nfresh", ["grace 1, factor 3", "grace 2, factor 2"]),
    ("startup_replay", RESULTS / "lr3e-3" / "startup_replay.json", ["Start-up replay", "500 TPE seeds", "35 %"],
     "% of TPE seeds", "trec\nfresh", ["random start-up, length a category (default)", "Latin hypercube"]),
    ("sampler_replay", RESULTS / "sampler_replay.json", ["Sampler replay", "18 of 18 searches"],
     "% of recorded trials\nproposed as recorded", "trec\nfresh", ["TPE seed 0", "TPE seed 2"]),
    ("throughput", RESULTS / "throughput.json", ["Training throughput", "fp32", "6 samples"],
     "training examples/s (wall)", "minilm\nfull fine-tuning", ["eager", "attention recompute"]),
    ("inference_batching", RESULTS / "inference_batching.json", ["Inference batching", "batch 64"],
     "seconds per pass (dev + test)", "trec, 1078 texts\n1.47x faster", ["given order", "shortest first"]),
]


@pytest.mark.parametrize("script, path, title, ylabel, first_tick, series", CASES, ids=[c[0] for c in CASES])
def test_the_recorded_report_is_drawn(script, path, title, ylabel, first_tick, series):
    import matplotlib.pyplot as plt

    fig = importlib.import_module(script).figure(json.loads(path.read_text()))
    try:
        (ax,) = fig.axes
        text = ax.get_title().replace("\n", " ")
        assert all(w in text for w in title), text
        assert ax.get_ylabel() == ylabel
        assert ax.get_xticklabels()[0].get_text() == first_tick
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert all(s in legend for s in series), legend
        # a bar (or, for a configuration that failed, its upright note) in every slot: not an empty frame
        notes = [t.get_text() for t in ax.texts]
        assert len(ax.patches) + len(notes) >= 2 * len(ax.get_xticklabels()) > 0
        assert notes == (["fails", "fails"] if script == "throughput" else [])  # PEFT fails on MiniLM
    finally:
        plt.close(fig)


@pytest.mark.parametrize("script, path", [(c[0], c[1]) for c in CASES], ids=[c[0] for c in CASES])
def test_replot_writes_the_png_beside_the_json(script, path, tmp_path, capsys):
    shutil.copy(path, tmp_path / path.name)
    importlib.import_module(script).main(["--replot", "--out", str(tmp_path)])
    png = (tmp_path / f"{script}.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, f"{script}.png"])  # nothing else touched
    assert (tmp_path / path.name).read_bytes() == path.read_bytes()
