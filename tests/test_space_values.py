"""A search space file's counts and fixed settings: nonsense is one error naming the key and the
file; a fixed learning rate (``lr: {low: x, high: x}``) is accepted on purpose."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from optuna_studies.space import MAX_COUNT, load_space
from ptv2_core.errors import Ptv2Error

BASE = "prompt_len: [4, 8]\nlr: {low: 1.0e-3, high: 1.0e-2}\n"
ROOT = Path(__file__).resolve().parents[1]


def space_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("extra, key, said", [
    ("sampler: {n_startup_trials: 1000000000000}", "sampler.n_startup_trials", "got 1000000000000"),
    ("sampler: {n_startup_trials: 1e12}", "sampler.n_startup_trials", "got '1e12' (YAML read text"),
    ("trials: 10000000000000", "trials", "got 10000000000000"),
    ("trials: 1.0e12", "trials", "(YAML read text"),  # no sign in the exponent: text to YAML
    ("epochs: 4.0", "epochs", "got 4.0 (a float: write an integer)"),
    ("epochs: '4'", "epochs", "got '4' (YAML read text"),
    ("pruning: {reduction_factor: 1000000000}", "pruning.reduction_factor", "got 1000000000"),
    ("pruning: {grace_period: 2.0e+12}", "pruning.grace_period", "(a float"),
])
def test_a_count_that_is_not_a_sane_integer_is_refused_naming_key_and_file(tmp_path, extra, key, said):
    path = space_file(tmp_path, BASE + extra + "\n")
    with pytest.raises(Ptv2Error) as e:
        load_space("trec", path)
    text = str(e.value)
    assert text.startswith(f"search space {path}: {key} must be an integer from "), text
    assert f"to {MAX_COUNT}" in text and said in text


def test_a_count_up_to_the_limit_is_taken(tmp_path):
    space = load_space("trec", space_file(tmp_path, BASE + f"trials: {MAX_COUNT}\nsampler: {{n_startup_trials: 0}}\n"))
    assert (space.trials, space.n_startup_trials) == (MAX_COUNT, 0)


@pytest.mark.parametrize("value", ["2", "0", "8.0", "'64'", "true"])
def test_a_fixed_max_length_below_a_tasks_least_is_refused_by_the_space_not_blamed_on_the_task(tmp_path, value):
    """It passed, and every trial then failed with "task 'trec': max_length must be ...": the
    task, not the space that set it, was named."""
    path = space_file(tmp_path, BASE + f"fixed: {{max_length: {value}}}\n")
    with pytest.raises(Ptv2Error, match=r"^search space .*space\.yaml: fixed: max_length must be an integer >= 4 "
                                        r"\(tokens each text is cut to; leave it out for the task's own\), got "):
        load_space("trec", path)
    assert load_space("trec", space_file(tmp_path, BASE + "fixed: {max_length: 64}\n")).fixed == {"max_length": 64}


def test_a_fixed_learning_rate_is_taken_on_purpose(tmp_path):
    """low == high: only the prompt length is searched (Optuna samples the one value)."""
    space = load_space("trec", space_file(tmp_path, "prompt_len: [4, 8]\nlr: {low: 1.0e-2, high: 1.0e-2}\n"))
    assert (space.lr_low, space.lr_high) == (0.01, 0.01)
    with pytest.raises(Ptv2Error, match="lr needs 0 < low <= high"):
        load_space("trec", space_file(tmp_path, "prompt_len: [4]\nlr: {low: 2.0e-2, high: 1.0e-2}\n"))


def test_the_search_command_says_it_in_one_error_line_and_makes_nothing(tmp_path):
    path = space_file(tmp_path, BASE + "sampler: {n_startup_trials: 1000000000000}\n")
    out = tmp_path / "out"
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), PTV2_HOME=str(tmp_path / "home"))
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "search", "--task", "trec", "--space", str(path),
                           "--trials", "1", "--out", str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: search space {path}: sampler.n_startup_trials must be an integer from 0 to {MAX_COUNT}, "
        "got 1000000000000"]
    assert not out.exists()
