"""Slips a spreadsheet or an editor makes in a data file: spaces around a label, a column name in
other case, JSON Lines saved as .json."""
from __future__ import annotations

import pytest

from ptv2_core.tasks import load_task
from task_files import ROWS, csv_rows, jsonl_rows, refused, write_task


def test_spaces_around_a_label_or_tag_are_dropped_not_a_label_of_their_own(tmp_path):
    """'greet ' (a spreadsheet's trailing space) was a third label beside 'greet', silently."""
    body = "".join(f"{t},{y}{' ' if i % 2 else ''}\n" for i, (t, y) in enumerate(ROWS))
    spec, dd = load_task(str(write_task(tmp_path, "text,label\n" + body)))
    assert spec.labels == ("bye", "greet")
    rows = [{"tokens": ["Ada", str(i)], "tags": [" B-per" if i % 2 else "B-per", "O "]} for i in range(10)]
    spec, dd = load_task(str(write_task(tmp_path, jsonl_rows(rows), "train.jsonl", "token")))
    assert spec.labels == ("O", "B-per")


def test_a_column_named_in_other_case_or_with_spaces_is_pointed_at(tmp_path):
    path = write_task(tmp_path, "Text, label\n" + csv_rows(ROWS))
    assert refused(path) == (f"data file {tmp_path / 'train.csv'}: column 'text' not found; columns found: "
                             "['Text', ' label'] (is it 'Text'? set text_column: \"Text\" in the task file)")


def test_json_lines_saved_as_json_say_to_name_the_file_jsonl(tmp_path):
    path = write_task(tmp_path, jsonl_rows({"text": t, "label": y} for t, y in ROWS), "train.json")
    assert refused(path) == (f"could not read data file {tmp_path / 'train.json'}: it holds one JSON object a line "
                             "(JSON Lines): name it .jsonl")


def test_swapped_text_and_label_columns_are_refused_not_trained_as_one_label_a_row(tmp_path):
    """label_column naming the text column made every text a label of its own: a 12-class task with
    one example each, trained without a word."""
    path = write_task(tmp_path, "text,label\n" + csv_rows(ROWS), extra="text_column: label\nlabel_column: text\n")
    assert refused(path) == (f"data file {tmp_path / 'train.csv'}: column 'text' holds a different label in each of "
                             "its 12 rows, so no label has two examples to learn from: is it the text column? (the "
                             "task file's text_column: is 'label', label_column: 'text'); if each label is meant to "
                             "be different, list them under labels: in the task file")
