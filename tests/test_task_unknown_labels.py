"""A label (or tag) outside the task's label list is named with the data row it is first on, and a
train file's is named as the train file (it was "train split carved from train.csv", with no row)."""
from __future__ import annotations

import json

import pytest

from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks import load_task

ROWS = [(f"hello there {i}", "greet") for i in range(6)] + [(f"see you {i}", "bye") for i in range(6)]


def csv_file(path, rows):
    path.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows))


def refused(path) -> str:
    with pytest.raises(Ptv2Error) as e:
        load_task(str(path))
    return str(e.value)


def test_a_dev_label_never_seen_in_train_is_named_with_its_row(tmp_path):
    csv_file(tmp_path / "train.csv", ROWS)
    csv_file(tmp_path / "dev.csv", [("hi dev", "greet"), ("what?", "ask"), ("why?", "ask"), ("ta", "thanks")])
    path = tmp_path / "task.yaml"
    path.write_text("name: t\ntype: sequence\ndata: {train: train.csv, dev: dev.csv}\n")
    assert refused(path) == (f"data file {tmp_path / 'dev.csv'} (dev): labels outside the label list of task 't': "
                             "'ask' (first at row 2), 'thanks' (first at row 4); label list: ['bye', 'greet'] "
                             "(inferred from train: a label no train row has is outside it)")


def test_a_train_label_outside_a_given_list_is_named_as_the_train_file_and_row(tmp_path):
    csv_file(tmp_path / "train.csv", ROWS[:3] + [("bye bye", "Bye")] + ROWS[3:])
    path = tmp_path / "task.yaml"
    path.write_text("name: t\ntype: sequence\nlabels: [greet, bye]\ndata: {train: train.csv}\n")
    assert refused(path) == (f"data file {tmp_path / 'train.csv'} (train): labels outside the label list of task 't': "
                             "'Bye' (first at row 4); label list: ['greet', 'bye']")


def test_a_tag_outside_the_list_names_its_row(tmp_path):
    rows = [{"tokens": ["Ada", str(i)], "tags": ["B-per", "O"]} for i in range(10)]
    rows[6]["tags"] = ["B-org", "O"]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = tmp_path / "task.yaml"
    path.write_text("name: t\ntype: token\nlabels: [O, B-per]\ndata: {train: train.jsonl}\n")
    assert refused(path) == (f"data file {tmp_path / 'train.jsonl'} (train): labels outside the label list of task "
                             "'t': 'B-org' (first at row 7); label list: ['O', 'B-per']")
