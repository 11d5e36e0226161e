"""CSV and JSON Lines files as people save them: a comma in an unquoted text, rows of only commas,
Windows-1252 or UTF-16 text, an unclosed quote; each one error line naming the file and row (or line)."""
from __future__ import annotations

import json

import pytest

from ptv2_core.tasks import load_task
from task_files import ROWS, csv_rows, refused, write_task

BODY = csv_rows(ROWS)


def test_an_unquoted_comma_in_the_first_row_is_named_not_taken_for_an_index_column(tmp_path):
    """pandas took a first row with one field more than the header as an index column: text 'hello'
    became the index, ' world' the text and 'greet' the label; the error then blamed every other row's
    empty label."""
    path = write_task(tmp_path, f"text,label\nhello, world,greet\n{BODY}".encode())
    assert refused(path) == (f"data file {tmp_path / 'train.csv'}: row 1 (line 2) has 3 fields but the header has 2 "
                             "('text', 'label'): a text that holds a comma must be in double quotes, as in "
                             "\"hello, world\"")


def test_a_comma_in_every_row_is_refused_not_read_with_the_first_field_dropped(tmp_path):
    """Every row one field longer than the header: pandas dropped the first field of every row, silently."""
    body = "".join(f"x, {t},{y}\n" for t, y in ROWS)
    assert refused(write_task(tmp_path, f"text,label\n{body}".encode())).startswith(
        f"data file {tmp_path / 'train.csv'}: row 1 (line 2) has 3 fields but the header has 2")


def test_a_long_row_further_down_is_named_by_row_and_line_and_a_short_one_by_its_empty_cell(tmp_path):
    path = write_task(tmp_path, f"text,label\n{BODY}\nhi, you,greet\n".encode())
    assert refused(path).startswith(f"data file {tmp_path / 'train.csv'}: row 13 (line 15) has 3 fields but the "
                                    "header has 2 ('text', 'label'): a text that holds a comma")
    path = write_task(tmp_path, f"text,label\n{BODY}\nonly a text\n".encode())
    assert refused(path) == f"data file {tmp_path / 'train.csv'}: 1 row with an empty 'label' (first at row 13)"


def test_a_column_left_off_the_end_of_some_rows_is_empty_there_as_pandas_read_it(tmp_path):
    body = "".join(f"{t},{y},note\n" if i % 2 else f"{t},{y}\n" for i, (t, y) in enumerate(ROWS))
    spec, dd = load_task(str(write_task(tmp_path, f"text,label,notes\n{body}".encode())))
    assert spec.labels == ("bye", "greet") and sum(len(dd[s]) for s in dd) == len(ROWS)


def test_an_unclosed_quote_names_the_line_it_opens_on(tmp_path):
    path = write_task(tmp_path, f"text,label\n{BODY}\"hello,greet\nbye,bye\n".encode())
    assert refused(path) == (f"data file {tmp_path / 'train.csv'}: row 13 (line 14) opens a double quote that is "
                             "never closed")


@pytest.mark.parametrize("name", ["train.csv", "train.jsonl"])
def test_a_windows_1252_file_names_its_line_and_says_to_save_it_as_utf8(tmp_path, name):
    rows = (f"text,label\n{BODY}café,greet\n" if name.endswith(".csv")
            else "".join(json.dumps({"text": t, "label": y}, ensure_ascii=False) + "\n" for t, y in ROWS + [("café", "greet")]))
    path = write_task(tmp_path, rows.encode("cp1252"), name)
    line = 14 if name.endswith(".csv") else 13
    assert refused(path) == (f"data file {tmp_path / name} is not UTF-8 text: byte 0xe9 on line {line} (Windows-1252 "
                             "or Latin-1?); save it as UTF-8")


def test_a_utf16_file_says_so(tmp_path):
    path = write_task(tmp_path, f"text,label\n{BODY}".encode("utf-16"))
    assert refused(path) == f"data file {tmp_path / 'train.csv'} is UTF-16 text; save it as UTF-8"


def test_blank_rows_and_rows_of_only_commas_are_skipped_and_not_counted(tmp_path):
    """A spreadsheet saves its empty rows as ',': they were rows with an empty text, refused."""
    path = write_task(tmp_path, f"text,label\n,\n{BODY}\n , \n,\n\nstray,\n".encode())
    assert refused(path) == f"data file {tmp_path / 'train.csv'}: 1 row with an empty 'label' (first at row 13)"
    path = write_task(tmp_path, f"text,label\n,\n{BODY}\n , \n,\n".encode())
    spec, dd = load_task(str(path))
    assert sum(len(dd[s]) for s in dd) == len(ROWS) and spec.labels == ("bye", "greet")


def test_a_bom_crlf_quoted_commas_and_newlines_and_emoji_load_as_written(tmp_path):
    body = BODY.replace("\n", "\r\n")
    data = "\ufefftext,label\r\n\"hi, you 👋\",greet\r\n\"bye\r\nnow\",bye\r\n\"say \"\"hi\"\"\",greet\r\n" + body
    spec, dd = load_task(str(write_task(tmp_path, data.encode())))
    texts = {t for s in dd for t in dd[s]["text"]}
    assert {"hi, you 👋", "bye\r\nnow", 'say "hi"'} <= texts and len(texts) == len(ROWS) + 3
    assert spec.labels == ("bye", "greet")


def test_a_repeated_or_empty_header_name_is_kept_apart(tmp_path):
    body = "".join(f"{i},{t},{y},x\n" for i, (t, y) in enumerate(ROWS))
    path = write_task(tmp_path, f",text,label,label\n{body}".encode())
    spec, dd = load_task(str(path))
    assert spec.labels == ("bye", "greet")
    path.write_text("name: t\ntype: sequence\nlabel_column: nope\ndata: {train: train.csv}\n")
    assert refused(path).endswith("columns found: ['Unnamed: 0', 'text', 'label', 'label.1'] (set label_column: "
                                 "in the task file to a column of this file)")


def test_a_quote_inside_an_unquoted_text_is_read_as_pandas_read_it(tmp_path):
    spec, dd = load_task(str(write_task(tmp_path, f"text,label\n\"He\" said it,greet\n{BODY}".encode())))
    assert "He said it" in {t for s in dd for t in dd[s]["text"]}


def test_a_text_longer_than_the_csv_modules_default_field_limit_loads(tmp_path):
    """The csv module stops at 131,072 characters a field by default; pandas had no such limit."""
    long = "word " * 60_000
    spec, dd = load_task(str(write_task(tmp_path, f"text,label\n\"{long}\",greet\n{BODY}".encode())))
    assert max(len(t) for s in dd for t in dd[s]["text"]) == len(long)
