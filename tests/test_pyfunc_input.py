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
