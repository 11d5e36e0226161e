"""A label (or tag) outside the task's label list is named with the data row it is first on, and a
train file's is named as the train file (it was "train split carved from train.csv", with no row)."""
from __future__ import annotations

import pytest

from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks import load_task
from task_files import ROWS, csv_rows, jsonl_rows, refused, write_task


def csv_file(path, rows):
    path.write_text("text,label\n" + csv_rows(rows))


def test_a_dev_label_never_seen_in_train_is_named_with_its_row(tmp_path):
    csv_file(tmp_path / "train.csv", ROWS)
    csv_file(tmp_path / "dev.csv", [("hi dev", "greet"), ("what?", "ask"), ("why?", "ask"), ("ta", "thanks")])
    path = tmp_path / "task.yaml"
    path.write_text("name: t\ntype: sequence\ndata: {train: train.csv, dev: dev.csv}\n")
    assert refused(path) == (f"data file {tmp_path / 'dev.csv'} (dev): labels outside the label list of task 't': "
                             "'ask' (first at row 2), 'thanks' (first at row 4); label list: ['bye', 'greet'] "
                             "(inferred from train: a label no train row has is outside it)")


def test_a_train_label_outside_a_given_list_is_named_as_the_train_file_and_row(tmp_path):
    path = write_task(tmp_path, "text,label\n" + csv_rows(ROWS[:3] + [("bye bye", "Bye")] + ROWS[3:]),
                      extra="labels: [greet, bye]\n")
    assert refused(path) == (f"data file {tmp_path / 'train.csv'} (train): labels outside the label list of task 't': "
                             "'Bye' (first at row 4); label list: ['greet', 'bye']")


def test_a_tag_outside_the_list_names_its_row(tmp_path):
    rows = [{"tokens": ["Ada", str(i)], "tags": ["B-per", "O"]} for i in range(10)]
    rows[6]["tags"] = ["B-org", "O"]
    path = write_task(tmp_path, jsonl_rows(rows), "train.jsonl", "token", "labels: [O, B-per]\n")
    assert refused(path) == (f"data file {tmp_path / 'train.jsonl'} (train): labels outside the label list of task "
                             "'t': 'B-org' (first at row 7); label list: ['O', 'B-per']")


def test_a_split_built_from_rows_names_an_unknown_label_or_tag_with_its_row_as_a_file_does():
    """make_dataset (a packaged task's or a hub data set's splits) said the same thing in another
    format, without the row: one check, one message."""
    from ptv2_core.tasks.rows import make_dataset
    from ptv2_core.tasks.spec import TaskSpec

    spec = TaskSpec(name="t", type="sequence", labels=("bye", "greet"), metric="accuracy")
    with pytest.raises(Ptv2Error) as e:
        make_dataset(spec, ["hi", "so?", "ta"], ["greet", "ask", "thanks"], "dev split of packaged task 't'")
    assert str(e.value) == ("dev split of packaged task 't': labels outside the label list of task 't': 'ask' (first "
                            "at row 2), 'thanks' (first at row 3); label list: ['bye', 'greet']")
    spec = TaskSpec(name="t", type="token", labels=("O", "B-per"), metric="span_f1")
    with pytest.raises(Ptv2Error) as e:
        make_dataset(spec, [["Ada"], ["Bob", "ran"]], [["B-per"], ["O", "B-loc"]], "test split of hub dataset 'x'")
    assert str(e.value) == ("test split of hub dataset 'x': labels outside the label list of task 't': 'B-loc' "
                            "(first at row 2); label list: ['O', 'B-per']")


@pytest.mark.parametrize("tag, bio", [("O", True), ("B-per", True), ("I-loc", True), ("B-", False), ("I-", False),
                                      ("S-per", False), ("o", False), ("B_per", False), ("", False)])
def test_one_bio_rule_for_a_label_list_and_a_train_files_tags(tag, bio, tmp_path):
    from ptv2_core.tasks.spec import TaskSpec, is_bio_tag

    assert is_bio_tag(tag) is bio
    labels = ("O", "B-per") if tag in ("O", "B-per") else ("O", "B-per", tag)
    rows = [{"tokens": ["Ada", str(i)], "tags": ["B-per", tag]} for i in range(10)]
    path = write_task(tmp_path, jsonl_rows(rows), "train.jsonl", "token")
    if bio:
        TaskSpec(name="t", type="token", labels=labels, metric="span_f1")
        load_task(str(path))
    else:
        with pytest.raises(Ptv2Error, match="not BIO"):
            TaskSpec(name="t", type="token", labels=labels, metric="span_f1")
        assert "which is not BIO" in refused(path)
