"""How the pyfunc model reads the texts it is handed (no model loaded: fast)."""
from __future__ import annotations

import pandas as pd
import pytest

from components.registry.pyfunc_model import _texts


@pytest.mark.parametrize("cell, count", [(["a"], "1 item"), (["a", "b"], "2 items")])
def test_a_list_where_a_text_belongs_is_refused_with_its_size(cell, count):
    """A list in a frame of several rows said '(1 items)'."""
    with pytest.raises(ValueError) as e:
        _texts(pd.DataFrame({"text": [cell, "c"]}))
    assert str(e.value) == (f"a text must be a string, not a list ({count}): give one text per row of the "
                            "'text' column")


def test_a_mapping_where_a_text_belongs_is_refused_not_labelled_as_its_repr():
    """`{"dataframe_records": [{"text": {"a": 1}}]}` reaches the model as a dict in the cell (MLflow's
    REST parser keeps it) and was labelled as the text "{'a': 1}": an answer that looks right."""
    with pytest.raises(ValueError) as e:
        _texts(pd.DataFrame({"text": [{"a": 1}, "c"]}))
    assert str(e.value) == "a text must be a string, not a dict (1 key): give one text per row of the 'text' column"


def test_numbers_and_missing_values_are_read_as_mlflow_reads_them():
    """A number is its text (MLflow's REST parser makes `{"inputs": [1]}` the string "1" before the
    model sees it, so a frame's number is read the same way); a missing value is an empty text."""
    assert _texts(pd.DataFrame({"text": [1, True, None, "x"]}, dtype=object)) == ["1", "True", "", "x"]
