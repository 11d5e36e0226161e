"""A label the task file lists under labels: that no train row has cannot be learnt (the model never
sees it; only dev or test hold it): loading says so once, on stderr, instead of training silently."""
from __future__ import annotations

from ptv2_core.tasks import load_task
from task_files import ROWS, csv_rows, jsonl_rows, write_task


def test_a_listed_label_no_train_row_has_is_noted(tmp_path, capsys):
    path = write_task(tmp_path, "text,label\n" + csv_rows(ROWS), extra="labels: [greet, bye, ask]\n")
    path.write_text(path.read_text().replace("name: t\n", "name: t-unseen\n"))
    spec, data = load_task(str(path), label_notes=True)
    assert spec.labels == ("greet", "bye", "ask")
    err = capsys.readouterr().err
    assert err.count("note:") == 1
    assert ("note: task 't-unseen': label 'ask' (listed under labels:) has no train row, so the model cannot learn to "
            "predict it") in err


def test_several_unseen_labels_are_named_in_one_note(tmp_path, capsys):
    path = write_task(tmp_path, "text,label\n" + csv_rows(ROWS), extra="labels: [greet, ask, bye, thanks]\n")
    path.write_text(path.read_text().replace("name: t\n", "name: t-unseen-2\n"))
    load_task(str(path), label_notes=True)
    assert ("note: task 't-unseen-2': labels 'ask', 'thanks' (listed under labels:) have no train row, so the model "
            "cannot learn to predict them") in capsys.readouterr().err


def test_every_label_in_train_and_inferred_labels_give_no_note(tmp_path, capsys):
    path = write_task(tmp_path, "text,label\n" + csv_rows(ROWS), extra="labels: [greet, bye]\n")
    load_task(str(path), label_notes=True)
    load_task(str(write_task(tmp_path, "text,label\n" + csv_rows(ROWS))), label_notes=True)
    assert "note:" not in capsys.readouterr().err


def test_an_entity_type_no_train_row_tags_is_noted_and_a_missing_i_tag_is_not(tmp_path, capsys):
    rows = [{"tokens": ["Ada", "Lovelace", f"w{i}"], "tags": ["B-per", "I-per", "O"]} for i in range(8)]
    rows += [{"tokens": ["Paris", f"v{i}"], "tags": ["B-loc", "O"]} for i in range(8)]  # no I-loc: fine
    path = write_task(tmp_path, jsonl_rows(rows), name="train.jsonl", kind="token",
                      extra="labels: [O, B-per, I-per, B-loc, I-loc, B-org, I-org]\n")
    path.write_text(path.read_text().replace("name: t\n", "name: t-unseen-ner\n"))
    load_task(str(path), label_notes=True)
    err = capsys.readouterr().err
    assert err.count("note:") == 1
    assert ("note: task 't-unseen-ner': entity type 'org' (listed under labels:) has no train row, so the model "
            "cannot learn to predict it") in err


def test_number_labels_against_a_list_of_names_ask_whether_they_are_label_ids(tmp_path):
    """A data set exported with label ids (0, 1) and a task file naming the labels: the error said only
    that '0' and '1' are outside the list."""
    from task_files import refused

    rows = [{"text": f"text {i}", "label": i % 2} for i in range(12)]
    path = write_task(tmp_path, jsonl_rows(rows), name="train.jsonl", extra="labels: [neg, pos]\n")
    assert refused(path) == (
        f"data file {tmp_path / 'train.jsonl'} (train): labels outside the label list of task 't': '0' (first at row 1), "
        "'1' (first at row 2); label list: ['neg', 'pos'] (the file's labels are numbers: label ids? a sequence task's "
        "labels are read as the text they are written as, never as ids: write each row's label name in the file, "
        "or list the numbers, labels: [\"0\", \"1\"])")


def test_a_label_that_is_a_digit_but_no_number_is_refused_without_a_traceback(tmp_path):
    """'²' is a digit to str.isdigit but int() refuses it: the label-ids hint sorted the outside
    labels with int and raised ValueError (a traceback, exit 1, from ptv2 train)."""
    from task_files import refused

    rows = [{"text": f"text {i}", "label": ["²", "1"][i % 2]} for i in range(12)]
    path = write_task(tmp_path, jsonl_rows(rows), name="train.jsonl", extra="labels: [neg, pos]\n")
    assert refused(path) == (
        f"data file {tmp_path / 'train.jsonl'} (train): labels outside the label list of task 't': '1' (first at row 2), "
        "'²' (first at row 1); label list: ['neg', 'pos']")
