"""A task YAML's column names, metric and max length: refused naming the task file (a list of text
columns, a sentence-pair attempt, ended in a traceback; a bad metric named no file)."""
from __future__ import annotations

import pandas as pd
import pytest

from ptv2_core.tasks import load_task
from task_files import refused, write_task

ROWS = [("hello there", "greet"), ("hi", "greet"), ("bye now", "bye"), ("see you", "bye")] * 3


def task_file(tmp_path, extra: str):
    frame = pd.DataFrame([(f"{t} {i}", y) for i, (t, y) in enumerate(ROWS)], columns=["text", "label"])
    return write_task(tmp_path, frame.to_csv(index=False), extra=f"{extra}\n")


@pytest.mark.parametrize("extra, says", [
    ("text_column: [premise, hypothesis]",
     "text_column must be one column's name, got a list ['premise', 'hypothesis']: one text per row (sentence-pair "
     "tasks, two text columns, are not supported: join the two texts into one column)"),
    ("label_column: [a, b]", "label_column must be one column's name, got a list ['a', 'b']"),
    ("text_column: 5", "text_column must be one column's name, got a number 5: put it in quotes, text_column: \"5\""),
    ("label_column: {x: 1}", "label_column must be one column's name, got a mapping {'x': 1}"),
    ("text_column: ''", "text_column must be one column's name, got an empty text"),
    ("metric: f1", "metric 'f1' is not one of accuracy, macro_f1 for sequence tasks"),
    ("max_length: '64'", "max_length must be an integer >= 4, got '64'"),
])
def test_a_bad_column_metric_or_max_length_is_refused_naming_the_task_file(tmp_path, extra, says):
    path = task_file(tmp_path, extra)
    msg = refused(path)
    assert msg.startswith(f"task file {path}: {says}"), msg


def test_the_same_values_well_formed_load(tmp_path):
    spec, dd = load_task(str(task_file(tmp_path, "text_column: text\nlabel_column: label\nmetric: macro_f1\n"
                                                 "max_length: 16")))
    assert (spec.metric, spec.max_length, spec.labels) == ("macro_f1", 16, ("bye", "greet"))
    assert sum(len(dd[s]) for s in dd) == len(ROWS)


def test_a_task_file_not_in_utf8_names_the_byte_and_line(tmp_path):
    path = task_file(tmp_path, "")
    path.write_bytes(b"type: sequence\nname: caf\xe9\ndata: {train: train.csv}\n")
    assert refused(path) == (f"task file {path} is not UTF-8 text: byte 0xe9 on line 2 (Windows-1252 or Latin-1?); "
                             "save it as UTF-8")
