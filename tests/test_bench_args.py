"""The bench scripts as a user meets them (bench/_args.py): ``--help`` says what a run writes and how
long it takes; bad input answers one ``error:`` line on stderr with exit 2 before anything is trained
or written; results are written whole or not at all. All in-process, nothing trained."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))  # the scripts import each other by their own names, as when run

SCRIPTS = ("multitask", "multitask_null", "nesting", "pruning_replay", "sampler_replay", "search_cost", "seed_noise",
           "startup_replay", "throughput", "inference_batching")


def run_main(script: str, argv: list[str], capsys) -> tuple[int, str, str]:
    module = importlib.import_module(script)
    with pytest.raises(SystemExit) as stop:
        module.main(argv)
    out, err = capsys.readouterr()
    return stop.value.code, out, err


def refused(script: str, argv: list[str], capsys, *words: str) -> str:
    code, _, err = run_main(script, argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_says_what_it_writes_and_how_long_it_takes(script, capsys):
    code, out, _ = run_main(script, ["--help"], capsys)
    assert code == 0
    assert "Writes: " in out and "Takes: " in out, out[-600:]
    assert "--worker-timing" not in out  # throughput's own worker processes are no user option


@pytest.mark.parametrize("script, argv, words", [
    ("multitask", ["--lengths", "4,x"], ["--lengths", "4,x"]),
    ("multitask", ["--lengths", "0,16"], ["--lengths", "at least 1"]),
    ("multitask", ["--epochs", "-1"], ["--epochs", "-1"]),
    ("multitask", ["--tasks", "trec,nope"], ["--tasks", "nope"]),
    ("multitask", ["--lr", "0"], ["--lr"]),
    ("multitask", ["--max-prompt-len", "2", "--lengths", "4,16"], ["--max-prompt-len"]),
    ("inference_batching", ["--tasks", "nope"], ["--tasks", "nope"]),
    ("inference_batching", ["--repeats", "0"], ["--repeats"]),
    ("search_cost", ["--tasks", "nope"], ["--tasks", "nope"]),
    ("search_cost", ["--epochs", "-2"], ["--epochs"]),
    ("throughput", ["--steps", "-1"], ["--steps"]),
    ("throughput", ["--peft-site", "/nonexistent/peft"], ["--peft-site"]),
    ("pruning_replay", ["--replays", "0"], ["--replays"]),
    ("startup_replay", ["--seeds", "0"], ["--seeds"]),
    ("seed_noise", ["--seeds", "0"], ["--seeds"]),
    ("nesting", ["--slice-lengths", "1,two"], ["--slice-lengths"]),
])
def test_bad_values_are_refused_before_anything_runs(script, argv, words, tmp_path, capsys):
    out, work = tmp_path / "out", tmp_path / "work"
    extra = ["--out", str(out)] + (["--work", str(work)] if script in ("multitask", "search_cost") else [])
    refused(script, argv + extra, capsys, *words)
    assert not out.exists() and not work.exists()


@pytest.mark.parametrize("script", ["multitask", "inference_batching", "search_cost", "throughput", "pruning_replay",
                                    "sampler_replay", "startup_replay"])
def test_an_out_that_is_a_file_is_refused(script, tmp_path, capsys):
    out = tmp_path / "results.json"
    out.write_text("{}")
    extra = ["--work", str(tmp_path / "work")] if script in ("multitask", "search_cost") else []
    refused(script, ["--out", str(out)] + extra, capsys, str(out), "not a folder")
    assert out.read_text() == "{}" and not (tmp_path / "work").exists()


def test_an_out_that_cannot_be_written_is_refused(tmp_path, capsys):
    refused("pruning_replay", ["--out", "/proc/ptv2-bench/out"], capsys, "--out", "cannot write")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is here")
@pytest.mark.parametrize("script", ["multitask", "search_cost", "throughput"])
def test_device_cuda_without_a_gpu_is_one_line(script, tmp_path, capsys):
    extra = ["--work", str(tmp_path / "work")] if script in ("multitask", "search_cost") else []
    refused(script, ["--device", "cuda", "--out", str(tmp_path / "out")] + extra, capsys, "--device cuda", "no CUDA GPU")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("script, stem", [("search_cost", "search_cost"), ("seed_noise", "seed_noise")])
def test_a_report_whose_plot_fails_leaves_no_half_written_files(script, stem, tmp_path, monkeypatch):
    module = importlib.import_module(script)

    def broken(doc):
        raise RuntimeError("no plot")
    monkeypatch.setattr(module, "figure", broken)
    doc = {"model": "minilm", "max_train": 16, "max_eval": 16, "epochs": 1, "seeds": [0, 1], "rows": []}
    with pytest.raises(RuntimeError):
        module.write_reports(doc, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_docs_say_what_each_script_needs_beyond_torch():
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    section = text[text.index("## Running the bench scripts"):]
    for script in SCRIPTS:
        assert f"`{script}.py`" in section, script
    assert "bench/_args.py" in section


def test_the_pruning_replay_shows_its_progress_and_writes_its_table(tmp_path, capsys):
    module = importlib.import_module("pruning_replay")
    module.main(["--replays", "3", "--settings", "1:3", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert "report rows replayed" in err and "100%" in err, err[-500:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pruning_replay.json", "pruning_replay.md", "pruning_replay.png"]


@pytest.mark.parametrize("script", ["multitask", "search_cost", "seed_noise"])
def test_a_work_folder_that_is_a_file_is_refused(script, tmp_path, capsys):
    work = tmp_path / "work"
    work.write_text("not a folder")
    refused(script, ["--work", str(work), "--out", str(tmp_path / "out")], capsys, "--work", "not a folder")
    assert not (tmp_path / "out").exists()


def test_an_unreadable_reuse_report_leaves_no_work_folder(tmp_path, capsys):
    work = tmp_path / "work"
    refused("search_cost", ["--tasks", "trec", "--reuse", str(tmp_path / "none.json"), "--work", str(work),
                            "--out", str(tmp_path / "out")], capsys, "--reuse")
    assert not work.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("script", ["search_cost", "seed_noise"])
def test_a_truncated_settings_json_in_work_is_one_error_line(script, tmp_path, capsys):
    """A run stopped while writing --work's settings.json (written whole since, but older folders)."""
    import json

    work = tmp_path / "work"
    work.mkdir()
    (work / "settings.json").write_text('{"model": "min')
    argv = ["--work", str(work), "--out", str(tmp_path / "out")]
    if script == "seed_noise":
        report = tmp_path / "report.json"
        report.write_text(json.dumps({"model": "minilm", "max_train": 16, "max_eval": 16, "epochs": 1, "rows": []}))
        argv += ["--report", str(report)]
    else:
        argv += ["--tasks", "trec"]
    refused(script, argv, capsys, "settings.json", "--work")
    assert not (tmp_path / "out").exists()


def test_write_files_leaves_another_runs_temporary_files_alone(tmp_path):
    """Two runs writing into one --out: each its own temporary names, written as UTF-8."""
    from bench._args import write_file, write_files

    theirs = tmp_path / ".a.md.tmp"
    theirs.write_text("another run's, half written")
    write_files(tmp_path, {"a.md": "ours: é"})
    write_file(tmp_path / "b.json", "{}\n")
    assert theirs.read_text() == "another run's, half written"
    assert (tmp_path / "a.md").read_bytes() == "ours: é".encode() and (tmp_path / "b.json").read_text() == "{}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".a.md.tmp", "a.md", "b.json"]
