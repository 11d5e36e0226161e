"""A NUL byte in a text file is refused naming its file and line: UTF-16 without a byte order mark
reads as valid UTF-8 with a NUL between characters, and its texts were trained on (or labelled)
NULs and all, without a word."""
from __future__ import annotations

import json
import re

import pytest

from pipelines.cli.lines import open_lines
from pipelines.cli.predict_table_source import open_table
from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks.text_file import NUL_HINT
from task_files import ROWS, csv_rows, refused, write_task

UTF16 = "utf-16-le"  # no byte order mark: Python writes one for "utf-16" only


@pytest.mark.parametrize("name,text", [("train.csv", "text,label\n" + csv_rows(ROWS)),
                                       ("train.jsonl", "".join(json.dumps({"text": t, "label": y}) + "\n"
                                                               for t, y in ROWS)),
                                       ("train.json", json.dumps([{"text": t, "label": y} for t, y in ROWS]))])
def test_a_utf16_train_file_without_a_byte_order_mark_is_refused(tmp_path, name, text):
    msg = refused(write_task(tmp_path, text.encode(UTF16), name=name))
    assert msg == f"data file {tmp_path / name} holds a NUL byte on line 1: {NUL_HINT}"


def test_a_nul_in_a_later_row_names_its_line(tmp_path):
    data = ("text,label\n" + csv_rows(ROWS[:3]) + "he\x00llo,greet\n" + csv_rows(ROWS[3:])).encode()
    assert refused(write_task(tmp_path, data)).endswith(f"holds a NUL byte on line 5: {NUL_HINT}")


def test_a_utf16_task_file_without_a_byte_order_mark_is_refused(tmp_path):
    path = write_task(tmp_path, "text,label\n" + csv_rows(ROWS))
    path.write_bytes(path.read_text().encode(UTF16))
    assert refused(path) == f"task file {path} holds a NUL byte on line 1: {NUL_HINT}"


@pytest.mark.parametrize("stdin", [False, True])
def test_predict_text_lines_with_a_nul_are_refused_naming_the_line(tmp_path, monkeypatch, stdin):
    from tests.test_predict_lines import _stdin

    data = "Who wrote Hamlet ?\nWhat is a NUL ?\n".encode(UTF16)
    (tmp_path / "in.txt").write_bytes(data)
    if stdin:
        _stdin(monkeypatch, data)
    with pytest.raises(Ptv2Error) as e:
        [*open_lines("-" if stdin else str(tmp_path / "in.txt"), 4).chunks()]
    name = "standard input" if stdin else f"--file '{tmp_path / 'in.txt'}'"
    assert str(e.value) == f"{name} holds a NUL byte on line 1: {NUL_HINT}"


def test_a_utf16_later_line_names_its_line_and_the_lines_before_it_are_fine(tmp_path):
    (tmp_path / "in.txt").write_bytes(b"one\ntwo\nth\x00ree\n")
    with pytest.raises(Ptv2Error, match=f"^--file '.*in.txt' holds a NUL byte on line 3: "):
        open_lines(str(tmp_path / "in.txt"), 4)


@pytest.mark.parametrize("name,rows", [("d.csv", b"text,id\n" + "Who wrote Hamlet ?,1\n".encode(UTF16)),
                                       ("d.jsonl", b'{"text": "a"}\n{"text": "b\x00c"}\n'),
                                       ("d.json", b'[{"text": "a"},\n {"text": "b\x00c"}]')])
def test_a_predict_table_whose_rows_hold_a_nul_is_refused(tmp_path, name, rows):
    # the header is plain ASCII: its text column is found, and the rows were labelled NULs and all
    path = tmp_path / name
    path.write_bytes(rows)
    with pytest.raises(Ptv2Error) as e:
        open_table(path, path.suffix, str(path))
    assert str(e.value) == f"data file {path} holds a NUL byte on line 2: {NUL_HINT}"


def test_a_nul_past_the_first_read_chunk_names_its_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"text\n" + b"hello there\n" * 5000 + b"he\x00llo\n")
    with pytest.raises(Ptv2Error, match=re.escape(f"line 5002: {NUL_HINT}")):
        open_table(path, ".csv", str(path))
