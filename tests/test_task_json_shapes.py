"""A .json data file in each of pandas' to_json shapes: the two it reads load; the others are
refused in one short line (one listed all 60 row numbers as columns; one said 'Mixing dicts with
non-Series may lead to ambiguous ordering')."""
from __future__ import annotations

import pandas as pd
import pytest

from ptv2_core.tasks import load_task
from task_files import refused, write_task

FRAME = pd.DataFrame([(f"hello there {i}", "greet") for i in range(30)] + [(f"see you {i}", "bye") for i in range(30)],
                     columns=["text", "label"])


def task(tmp_path, orient: str):
    return write_task(tmp_path, FRAME.to_json(orient=orient), "train.json")


@pytest.mark.parametrize("orient", ["records", "columns"])
def test_records_and_columns_load(tmp_path, orient):
    spec, dd = load_task(str(task(tmp_path, orient)))
    assert spec.labels == ("bye", "greet") and sum(len(dd[s]) for s in dd) == 60


@pytest.mark.parametrize("orient", ["index", "split", "table", "values"])
def test_other_shapes_are_refused_in_one_short_line(tmp_path, orient):
    msg = refused(task(tmp_path, orient))
    assert msg.startswith(f"could not read data file {tmp_path / 'train.json'}: it must hold a list of objects (one a "
                          "row), [{\"text\": ..., \"label\": ...}, ...], or columns (pandas' to_json(orient=\"records\")"
                          " or its default)"), msg
    assert len(msg) < 400 and "\n" not in msg


def test_a_long_list_of_columns_found_is_cut_short(tmp_path):
    wide = pd.DataFrame([[f"v{k}" for k in range(40)]], columns=[f"c{i}" for i in range(40)])
    msg = refused(write_task(tmp_path, wide.to_csv(index=False), extra="text_column: c1\n"))
    assert msg.endswith("column 'label' not found; columns found: ['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', "
                        "'c7', 'c8', 'c9', 'c10', 'c11', 'c12', 'c13', 'c14', 'c15', 'c16', 'c17', 'c18', "
                        "'c19'] and 20 more (set label_column: in the task file to a column of this file)"), msg
