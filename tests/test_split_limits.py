"""max_train / max_eval refused by the Python API (``load_task``, ``TrainConfig`` users) in words a
user of either the API or the CLI reads: it said "a positive integer or None", None being Python's
word for leaving the limit out."""
from __future__ import annotations

import pytest

from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks import load_task


@pytest.mark.parametrize("name", ["max_train", "max_eval"])
@pytest.mark.parametrize("value", [0, -3, True, 2.5])
def test_a_bad_row_limit_says_leave_it_out_for_all_rows(name, value):
    with pytest.raises(Ptv2Error) as e:
        load_task("trec", **{name: value})
    assert str(e.value) == f"{name} must be a positive integer (or left out: all rows), got {value!r}"
