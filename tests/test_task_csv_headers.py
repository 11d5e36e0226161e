"""A CSV whose header names other columns than the task's, or none at all, or is not comma-separated:
each says what to do about it, and a spreadsheet's trailing empty fields are no comma slip."""
from __future__ import annotations

import pytest

from ptv2_core.tasks import load_task
from task_files import ROWS, csv_rows, refused, write_task


def test_a_proper_header_of_other_names_says_to_set_the_columns_not_that_the_header_is_missing(tmp_path):
    """A task left on the defaults (text, label) for a file headed `sentence,intent` was asked
    "no header line?" about a header that is fine."""
    path = write_task(tmp_path, "sentence,intent\n" + csv_rows(ROWS))
    assert refused(path) == (f"data file {tmp_path / 'train.csv'}: column 'text' not found; columns found: "
                             "['sentence', 'intent'] (set text_column: and label_column: in the task file to "
                             "columns of this file)")


def test_one_column_of_the_two_missing_says_to_set_that_one(tmp_path):
    path = write_task(tmp_path, "text,intent\n" + csv_rows(ROWS))
    assert refused(path) == (f"data file {tmp_path / 'train.csv'}: column 'label' not found; columns found: "
                             "['text', 'intent'] (set label_column: in the task file to a column of this file)")


def test_a_first_line_that_is_data_still_asks_for_the_header_line(tmp_path):
    """A header cell that is a value of its own column below (a label) or a sentence is data."""
    path = write_task(tmp_path, csv_rows(ROWS))
    assert refused(path) == (f"data file {tmp_path / 'train.csv'}: column 'text' not found; columns found: "
                             "['hello there 0', 'greet'] (no header line? a CSV's first line names its columns: "
                             "text,label)")
    path = write_task(tmp_path, "".join(f"{t} and more words,{i}\n" for i, (t, y) in enumerate(ROWS)))
    assert "(no header line? a CSV's first line names its columns: text,label)" in refused(path)


@pytest.mark.parametrize("sep, shown", [(";", "';'"), ("\t", "a tab"), ("|", "'|'")])
def test_a_file_separated_by_semicolons_or_tabs_says_so_and_to_save_it_with_commas(tmp_path, sep, shown):
    """European Excel saves `text;label`: it was asked whether its header line was missing."""
    path = write_task(tmp_path, f"text{sep}label\n" + csv_rows(ROWS, sep))
    assert refused(path) == (f"data file {tmp_path / 'train.csv'}: column 'text' not found; columns found: "
                             f"[{f'text{sep}label'!r}] (its fields look separated by {shown}: ptv2 reads a CSV's "
                             "fields separated by commas; save it with commas)")


def test_a_semicolon_file_whose_text_holds_a_comma_says_so_not_to_quote_the_comma(tmp_path):
    path = write_task(tmp_path, "text;label\nhello, you;greet\n" + csv_rows(ROWS, ";"))
    assert refused(path) == (f"data file {tmp_path / 'train.csv'}: row 1 (line 2) has 2 fields but the header has 1 "
                             "('text;label'): its fields look separated by ';': ptv2 reads a CSV's fields separated "
                             "by commas; save it with commas")


def test_trailing_empty_fields_of_a_spreadsheet_export_are_dropped(tmp_path):
    """`hello,greet,` (a spreadsheet's empty columns) was refused: "a text that holds a comma must be in
    double quotes"."""
    body = "".join(f"{t},{y},{' ,' * (i % 3)}\n" for i, (t, y) in enumerate(ROWS))
    spec, dd = load_task(str(write_task(tmp_path, "text,label\n" + body)))
    texts = sorted(x for s in dd for x in dd[s]["text"])
    assert spec.labels == ("bye", "greet") and texts == sorted(t for t, _ in ROWS)
    path = write_task(tmp_path, "text,label\n" + body + "hi,greet,,oops\n")
    assert refused(path) == (f"data file {tmp_path / 'train.csv'}: row 13 (line 14) has 4 fields but the header has 2 "
                             "('text', 'label'): a text that holds a comma must be in double quotes, as in "
                             "\"hello, world\"")


def test_every_label_different_says_to_list_labels_if_meant_and_a_label_list_lets_it_load(tmp_path):
    rows = [(f"text {i}", f"id{i}") for i in range(10)]
    body = "text,label\n" + csv_rows(rows)
    assert refused(write_task(tmp_path, body)) == (
        f"data file {tmp_path / 'train.csv'}: column 'label' holds a different label in each of its 10 rows, so no "
        "label has two examples to learn from: is it the text column? (the task file's text_column: is 'text', "
        "label_column: 'label'); if each label is meant to be different, list them under labels: in the task file")
    labels = "labels: [" + ", ".join(y for _, y in rows) + "]\n"
    # labels given: nothing inferred, nothing refused
    spec, dd = load_task(str(write_task(tmp_path, body, extra=labels)))
    assert spec.labels == tuple(y for _, y in rows) and sum(len(dd[s]) for s in dd) == 10
