"""Bench scripts meeting a report they cannot use, or a failed check: one ``error:`` line, no traceback,
nothing written. multitask_null: a report with ``per_seed`` but no ``runs`` (bad input, exit 2);
inference_batching: the two batching orders answering differently (a failed check, exit 1); --replot
on a folder without the script's JSON (exit 2). In-process, nothing trained."""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))  # the scripts import each other by their own names, as when run


def stopped(fn, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as stop:
        fn()
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return stop.value.code, lines[0]


def test_multitask_null_refuses_a_report_without_runs(tmp_path, capsys):
    report = tmp_path / "multitask.json"
    report.write_text(json.dumps({"per_seed": [{"meta": {"settings": {"seed": 13, "threads": 1}}}]}))
    out, work = tmp_path / "out", tmp_path / "work"
    main = importlib.import_module("multitask_null").main
    code, line = stopped(lambda: main(["--report", str(report), "--cells", "rt:16", "--work", str(work),
                                       "--out", str(out)]), capsys)
    assert code == 2 and "--report" in line and "runs" in line, line
    assert not out.exists() and not work.exists()


def test_inference_batching_stops_when_the_orders_answer_differently(capsys):
    check_same = importlib.import_module("inference_batching").check_same
    given = [{"label": "a"}, {"label": "b"}, {"tags": ["O", "B-x"]}]
    check_same("trec", given, [dict(r) for r in given])  # the same answers: no stop
    code, line = stopped(lambda: check_same("trec", given, [{"label": "a"}, {"label": "a"}, {"tags": ["O", "O"]}]),
                         capsys)
    assert code == 1 and "trec" in line and "2 of 3 texts" in line and "text 1" in line, line


@pytest.mark.parametrize("script", ["pruning_replay", "startup_replay", "sampler_replay", "throughput",
                                    "inference_batching"])
def test_replot_without_the_json_is_refused(script, tmp_path, capsys):
    main = importlib.import_module(script).main
    code, line = stopped(lambda: main(["--replot", "--out", str(tmp_path)]), capsys)
    assert code == 2 and f"no {script}.json" in line, line
    assert list(tmp_path.iterdir()) == []
