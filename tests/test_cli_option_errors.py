"""Bad option values of ``ptv2 pretrain`` and ``ptv2 train`` are refused naming the flag typed
(the core's checks name a setting; the CLI names it as its option), and a comma list with an
empty item is refused rather than read without it."""
from __future__ import annotations

import pytest

from tests.conftest import run_cli

PRETRAIN_BAD = [
    (["--temperature", "0"], "--temperature"),
    (["--lr", "-1"], "--lr"),
    (["--epochs", "0"], "--epochs"),
    (["--batch-size", "0"], "--batch-size"),
    (["--eval-batch-size", "0"], "--eval-batch-size"),
    (["--max-train", "0"], "--max-train"),
    (["--max-eval", "0"], "--max-eval"),
    (["--seed", "-1"], "--seed"),
    (["--max-prompt-len", "0"], "--max-prompt-len"),
    (["--lengths", "4,8"], "--lengths"),
    (["--lengths", "0,64"], "--lengths"),
    (["--lengths", "x"], "--lengths"),
    (["--lengths", "8,8,64"], "--lengths"),
    (["--lengths", "4,,64"], "--lengths"),
]


def _error_line(r) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


@pytest.mark.parametrize("args,flag", PRETRAIN_BAD)
def test_a_bad_pretrain_option_is_named_as_its_flag(tmp_path, args, flag):
    line = _error_line(run_cli("pretrain", "--tasks", "trec,rt", "--out", str(tmp_path / "o"), "--no-track", *args))
    assert flag in line
    assert not (tmp_path / "o").exists()


def test_the_longest_length_error_names_both_flags(tmp_path):
    line = _error_line(run_cli("pretrain", "--tasks", "trec", "--out", str(tmp_path / "o"), "--no-track",
                               "--lengths", "4,8", "--max-prompt-len", "16"))
    assert "--lengths" in line and "--max-prompt-len" in line


@pytest.mark.parametrize("tasks", ["trec,,rt", "trec, ,rt", "trec,rt,", ",trec"])
def test_an_empty_item_in_tasks_is_refused(tmp_path, tasks):
    line = _error_line(run_cli("pretrain", "--tasks", tasks, "--out", str(tmp_path / "o"), "--no-track"))
    assert "--tasks" in line and "empty" in line
    assert not (tmp_path / "o").exists()


def test_a_task_listed_twice_names_tasks(tmp_path):
    line = _error_line(run_cli("pretrain", "--tasks", "trec,trec", "--out", str(tmp_path / "o"), "--no-track"))
    assert "--tasks" in line


TRAIN_BAD = [
    (["--lr", "0"], "--lr"),
    (["--epochs", "0"], "--epochs"),
    (["--batch-size", "0"], "--batch-size"),
    (["--eval-batch-size", "0"], "--eval-batch-size"),
    (["--max-train", "0"], "--max-train"),
    (["--max-eval", "0"], "--max-eval"),
    (["--prompt-len", "0"], "--prompt-len"),
    (["--patience", "0"], "--patience"),
    (["--seed", "-1"], "--seed"),
    (["--data-seed", "-1"], "--data-seed"),
]


@pytest.mark.parametrize("args,flag", TRAIN_BAD)
def test_a_bad_train_option_is_named_as_its_flag(tmp_path, args, flag):
    line = _error_line(run_cli("train", "--task", "trec", "--out", str(tmp_path / "o"), *args))
    assert flag in line


def test_python_callers_keep_the_setting_words():
    from ptv2_core.errors import Ptv2Error
    from ptv2_core.multitask import PretrainConfig

    with pytest.raises(Ptv2Error, match=r"^mixing temperature must be a positive number"):
        PretrainConfig(tasks=("trec",), max_prompt_len=4, lengths=(4,), temperature=0).check()


def test_an_empty_item_in_the_pipelines_tasks_is_refused(tmp_path):
    """`ptv2 run --tasks trec,,rt` ran the pipeline on trec and rt alone, as pretrain did (here the
    --trials 0 after it is refused otherwise: the pipeline's parameters are checked next)."""
    line = _error_line(run_cli("run", "--tasks", "trec,,rt", "--trials", "0"))
    assert "--tasks" in line and "empty" in line, line
