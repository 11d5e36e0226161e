"""`ptv2 eval`'s own options checked before anything loads, through the real command line in this process."""
from __future__ import annotations

import pytest

from conftest import run_cli


@pytest.mark.parametrize("source", ["--adapter", "--pretrained"])
@pytest.mark.parametrize("value", ["0", "-3"])
def test_a_max_eval_below_one_is_refused_by_its_option_name_before_anything_loads(tmp_path, source, value):
    """`eval --max-eval 0` loaded the adapter and its base model, then failed deep in the data
    loading with `max_eval must be a positive integer or None` (Python's word, not the option's).
    The folder here does not exist: only a check made before any loading can name --max-eval."""
    res = run_cli("eval", source, str(tmp_path / "missing"), "--max-eval", value)
    assert res.returncode == 2, res.stderr
    assert res.stderr.splitlines() == [
        f"error: --max-eval must be a positive integer (or left out: all rows), got {value}"], res.stderr
    assert res.stdout == "" and list(tmp_path.iterdir()) == []
