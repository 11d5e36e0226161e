"""A CSV or JSON Lines table `ptv2 predict --file` labels is read a chunk at a time: memory stays
flat however long the file (it was read whole first, several times its size held), and the output
is byte for byte what reading it whole gave."""
from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from pipelines.cli import predict_table, predict_table_input, predict_table_source
from pipelines.cli.predict_table_source import Table, open_table
from tests.conftest import run_cli as run

# keys in another order from row to row, keys missing, nulls, numbers and booleans as written,
# lists, a blank line, CRLF line ends, a byte order mark, text outside ASCII
JSONL = ("\ufeff" + '{"id": 1, "text": "Who wrote Hamlet ?", "n": 1.50}\r\n'
         '{"text": "How far is the moon ?", "id": 2, "tags": [true, null, 1e400]}\r\n'
         '\r\n'
         '{"extra": {"a": 1}, "id": 3, "text": null}\n'
         '{"id": 4, "text": "Où est la tour Eiffel ?", "n": -0}\n'
         '{"id": 5}\n'
         '{"id": 6, "text": "What is CPU ?", "flag": false}\n')
# a BOM, CRLF, a quoted field with a comma and a line feed, blank and separator-only rows, a short
# row, empty fields after the data
CSV = ("\ufeffid,text,source\r\n1,\"Who wrote Hamlet, the play?\",web\r\n,,\r\n2,\"How far is the moon?\nAsked "
       "twice\",forum\r\n\r\n3\r\n4,What is CPU ?,web,,\r\n5,Où est la tour Eiffel ?,web\r\n")


# JSONL and CSV above labelled (no --scores) by the code before tables were streamed (2e426a5^,
# whole frames through read_table), generated once; its labels (an untrained prompt's, arbitrary)
# masked as LABEL: the table around them is what is compared, byte for byte
GOLDEN = {
    "d.jsonl": b'{"id": 1, "text": "Who wrote Hamlet ?", "n": 1.50, "pred_label": "LABEL"}\n'
               b'{"id": 2, "text": "How far is the moon ?", "tags": [true, null, 1e400], "pred_label": "LABEL"}\n'
               b'{"id": 3, "text": null, "extra": {"a": 1}, "pred_label": null}\n'
               b'{"id": 4, "text": "O\xc3\xb9 est la tour Eiffel ?", "n": -0, "pred_label": "LABEL"}\n'
               b'{"id": 5, "pred_label": null}\n'
               b'{"id": 6, "text": "What is CPU ?", "flag": false, "pred_label": "LABEL"}\n',
    "d.csv": b'id,text,source,pred_label\n1,"Who wrote Hamlet, the play?",web,LABEL\n'
             b'2,"How far is the moon?\nAsked twice",forum,LABEL\n3,,,\n4,What is CPU ?,web,LABEL\n'
             b'5,O\xc3\xb9 est la tour Eiffel ?,web,LABEL\n',
}


def _whole(path: Path, suffix: str, shown: str) -> Table:
    """The table as it was read before: the task data reader's whole frame, sliced into chunks."""
    from ptv2_core.tasks.files import read_table

    df = read_table(path)
    return Table(shown, path, suffix, [str(c) for c in df.columns], len(df), whole=df)


@pytest.fixture(scope="module")
def trec(tmp_path_factory, minilm_path, one_torch_thread) -> Path:
    from tests.test_predict_table import _adapter

    return _adapter(tmp_path_factory.mktemp("trec"), "trec")


@pytest.mark.parametrize("name,content", [("d.jsonl", JSONL), ("d.csv", CSV)])
def test_read_a_chunk_at_a_time_the_output_is_byte_for_byte_the_whole_files(trec, tmp_path, monkeypatch, name,
                                                                           content):
    (tmp_path / name).write_bytes(content.encode("utf-8"))
    monkeypatch.setattr(predict_table, "CHUNK", 2)  # chunk boundaries inside the table, after the blank lines
    outs = {}
    for how in ("streamed", "whole"):
        if how == "whole":
            monkeypatch.setattr(predict_table_input, "open_table", _whole)
        out = tmp_path / f"{how}{Path(name).suffix}"
        res = run("predict", "--adapter", str(trec), "--file", str(tmp_path / name), "--scores", "--out", str(out))
        assert res.returncode == 0, res.stderr
        outs[how] = out.read_bytes()
    assert outs["streamed"] == outs["whole"]
    assert outs["streamed"].count(b"\n") == (7 if name == "d.csv" else 6)  # a CSV's quoted line feed, its header


@pytest.mark.parametrize("name,content", [("d.jsonl", JSONL), ("d.csv", CSV)])
def test_read_a_chunk_at_a_time_the_output_is_the_old_codes(trec, tmp_path, monkeypatch, name, content):
    """A control outside the new code: the test above compares two runs through the same writer."""
    import re

    (tmp_path / name).write_bytes(content.encode("utf-8"))
    monkeypatch.setattr(predict_table, "CHUNK", 2)
    out = tmp_path / f"out{Path(name).suffix}"
    res = run("predict", "--adapter", str(trec), "--file", str(tmp_path / name), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert re.sub(rb"\b(ABBR|DESC|ENTY|HUM|LOC|NUM)\b", b"LABEL", out.read_bytes()) == GOLDEN[name]


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_memory_does_not_grow_with_the_table(tmp_path, suffix):
    rows = [{"id": i, "text": f"How far is it from Paris to Berlin by train ; question {i} ?", "source": "web"}
            for i in range(20_000)]
    path = tmp_path / f"big{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        path.write_text("id,text,source\n" + "".join(f"{r['id']},{r['text']},{r['source']}\n" for r in rows))
    del rows
    size = path.stat().st_size  # about 2 MB

    def streamed():
        table = open_table(path, suffix, str(path))
        assert table.rows == 20_000 and table.columns == ["id", "text", "source"]
        assert sum(len(part) for _, part in table.chunks(250)) == 20_000

    def whole():  # as it was read before: the whole frame, then its chunks
        table = _whole(path, suffix, str(path))
        assert sum(len(part) for _, part in table.chunks(250)) == 20_000

    held, before = _peak(streamed), _peak(whole)
    assert before > 3 * size  # the control: reading it whole holds several times the file
    assert held < size / 4, f"{held / 1e6:.1f} MB held for a {size / 1e6:.1f} MB table"


def test_a_bad_row_late_in_the_file_is_found_before_the_model_loads(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"text": f"q {i}"}) + "\n" for i in range(10)) + "{oops\n")
    with pytest.raises(Exception, match=r"line 11 is not JSON"):
        open_table(path, ".jsonl", str(path))
    path.write_bytes(b"text\n" + b"ok\n" * 5 + b"caf\xe9\n")
    with pytest.raises(Exception, match=r"is not UTF-8 text: byte 0xe9 on line 7"):
        open_table(path, ".jsonl", str(path))


def test_a_stray_quote_reads_the_csv_leniently_as_training_reads_it(tmp_path):
    from ptv2_core.tasks.files import read_table

    path = tmp_path / "d.csv"
    path.write_text('text,n\n"hi" he said,1\nok,2\n')
    table = open_table(path, ".csv", str(path))
    assert not table.strict
    got = [r for _, part in table.chunks(1) for r in part.values.tolist()]
    assert got == read_table(path).values.tolist()


def _stdin(monkeypatch, data: bytes) -> None:
    """Standard input as a real pipe holding ``data``, then its end."""
    import os
    import sys

    r, w = os.pipe()
    os.write(w, data)  # under the pipe's 64 KiB: no reader needed
    os.close(w)
    monkeypatch.setattr(sys, "stdin", os.fdopen(r, "r"))


@pytest.mark.parametrize("name,content", [("d.jsonl", JSONL), ("d.csv", CSV)])
def test_a_table_on_standard_input_with_format_is_labelled_as_the_file_is(trec, tmp_path, monkeypatch, name, content):
    """`cat d.csv | ptv2 predict --file - --format csv`: standard input was only ever text lines, the
    header and JSON syntax each labelled as a text."""
    (tmp_path / name).write_bytes(content.encode("utf-8"))
    from_file = run("predict", "--adapter", str(trec), "--file", str(tmp_path / name), "--scores")
    assert from_file.returncode == 0, from_file.stderr
    _stdin(monkeypatch, content.encode("utf-8"))
    fmt = Path(name).suffix[1:]
    from_stdin = run("predict", "--adapter", str(trec), "--file", "-", "--format", fmt, "--scores")
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert from_stdin.stdout == from_file.stdout
    _stdin(monkeypatch, content.encode("utf-8"))  # `-` as the text argument, and --out
    out = tmp_path / f"o.{fmt}"
    res = run("predict", "--adapter", str(trec), "-", "--format", fmt, "--scores", "--out", str(out))
    assert res.returncode == 0 and out.read_text(encoding="utf-8") == from_file.stdout, res.stderr


def _user_error(res, needle: str) -> None:
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert needle in lines[0], lines[0]


@pytest.mark.parametrize("args,stdin,needle", [
    (["hello", "--format", "csv"], None, "--format applies to --file"),
    (["--file", "{d.csv}", "--format", "jsonl"], None, "--format jsonl does not match --file"),
    (["--file", "-", "--format", "xlsx"], b"", "--format must be one of text, csv, jsonl, json, parquet"),
    (["--file", "-", "--format", "parquet"], b"", "a Parquet --file is written to --out PATH only"),
    (["--file", "-", "--format", "csv"], b"", "standard input holds no rows to label"),
    (["--file", "-", "--format", "csv"], b"text,x\nhi,1,2\n",
     "data file '-' (standard input): row 1 (line 2) has 3 fields"),
    (["--file", "-", "--format", "jsonl"], b'{"text": "hi"}\n{"text": ["a"]}\n',
     "standard input: row 2 of column 'text' holds a list"),
    (["--file", "-", "--format", "csv"], b"text\ncaf\xe9\n", "'-' (standard input) is not UTF-8 text: byte 0xe9 on line 2"),
    (["--file", "-", "--text-column", "text"], b"hi\n", "--text-column applies to a table --file"),
    (["--file", "-", "--format", "json"], b'{"text": "hi"}\n{"text": "ho"}\n',
     "'-' (standard input): it holds one JSON object a line (JSON Lines): give --format jsonl"),
])
def test_bad_format_combinations_are_one_error_line(trec, tmp_path, monkeypatch, args, stdin, needle):
    (tmp_path / "d.csv").write_text("text\nhi\n")
    if stdin is not None:
        _stdin(monkeypatch, stdin)
    args = [str(tmp_path / a[1:-1]) if a.startswith("{") else a for a in args]
    _user_error(run("predict", "--adapter", str(trec), *args), needle)


def test_format_text_labels_the_lines_of_a_table_ptv2_does_not_read(trec, tmp_path):
    (tmp_path / "d.tsv").write_text("Who wrote Hamlet ?\tx\nWhat is CPU ?\ty\n")
    _user_error(run("predict", "--adapter", str(trec), "--file", str(tmp_path / "d.tsv")), "--format text")
    res = run("predict", "--adapter", str(trec), "--file", str(tmp_path / "d.tsv"), "--format", "text")
    assert res.returncode == 0 and len(res.stdout.splitlines()) == 2, res.stderr


def test_a_fifo_table_is_read_once(trec, tmp_path):
    """A FIFO named d.csv was read twice (its rows, then its header line again): the second open
    waited for a writer that never came."""
    import os
    import threading

    fifo = tmp_path / "d.csv"
    os.mkfifo(fifo)

    def write():
        with open(fifo, "w") as w:
            w.write("text\nWho wrote Hamlet ?\n")

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    res = run("predict", "--adapter", str(trec), "--file", str(fifo))
    writer.join(10)
    assert res.returncode == 0 and res.stdout.splitlines()[0] == "text,pred_label", res.stderr
    assert len(res.stdout.splitlines()) == 2


def test_a_missing_table_and_a_folder_are_named_as_a_text_file_is(tmp_path):
    # read_table said "data file not found" of both
    (tmp_path / "dir.csv").mkdir()
    for name, said in (("dir.csv", "is a folder, not a table"), ("missing.jsonl", "does not exist"),
                       ("missing.parquet", "does not exist")):
        with pytest.raises(Exception, match=f"^--file '.*{name}' {said}$"):
            open_table(tmp_path / name, Path(name).suffix, str(tmp_path / name))


@pytest.mark.parametrize("header,hint", [("Text", "'Text' differs only in case or spaces: pass --text-column Text"),
                                         ("text ", "'text ' differs only in case or spaces: pass --text-column 'text '")])
def test_a_column_named_almost_as_the_text_column_is_pointed_at(trec, tmp_path, header, hint):
    # "its columns: text , id: pass --text-column NAME" left the trailing space to be spotted
    (tmp_path / "d.csv").write_text(f"{header},id\nhi,1\n")
    _user_error(run("predict", "--adapter", str(trec), "--file", str(tmp_path / "d.csv")), hint)


@pytest.mark.parametrize("out", [True, False])
@pytest.mark.parametrize("after", ["open_table", "pick_column"])
def test_a_table_rewritten_between_its_passes_is_an_error_and_nothing_is_written(trec, tmp_path, monkeypatch, out,
                                                                                  after):
    """The columns and row count come from the first pass; a file rewritten before the labelling
    pass (`text,id`, 2 rows, then `label,text`, 3 rows) was labelled under the old columns, its
    first row skipped as a header, and the old count reported. The real reader; the rewrite is
    hooked in after its first pass (open_table) or its column picked (pick_column, just before labelling)."""
    path = tmp_path / "d.csv"
    path.write_text("text,id\nWho wrote Hamlet ?,1\nHow far is the moon ?,2\n", encoding="utf-8")
    module = predict_table_input if after == "open_table" else predict_table
    real = getattr(module, after)

    def then_rewrite(*args):
        got = real(*args)
        path.write_text("label,text\nHUM,What is CPU ?\nLOC,Where is Rome ?\nNUM,How old is Rome ?\n",
                        encoding="utf-8")
        return got

    monkeypatch.setattr(module, after, then_rewrite)
    dest = tmp_path / "out.csv"
    res = run("predict", "--adapter", str(trec), "--file", str(path), *(["--out", str(dest)] if out else []))
    assert res.returncode == 2 and res.stdout == "" and not dest.exists()
    assert res.stderr.startswith("error: ") and "changed while being read" in res.stderr, res.stderr
    assert "rows labelled" not in res.stderr
    assert list(tmp_path.iterdir()) == [path]


def test_a_table_rewritten_in_place_with_the_same_columns_is_caught_by_its_row_count(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a"}\n{"text": "b"}\n', encoding="utf-8")
    table = open_table(path, ".jsonl", str(path))
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"text": "c"}\n')
    with pytest.raises(predict_table_source.Ptv2Error, match="changed while being read"):
        list(table.chunks(2))


@pytest.mark.parametrize("encoding,said", [("utf-32", "UTF-32"), ("utf-16", "UTF-16")])
def test_a_table_with_another_byte_order_mark_is_named_by_it(tmp_path, encoding, said):
    # a UTF-32 table was called UTF-16 (its mark starts with UTF-16 LE's); lines.py named it right
    from ptv2_core.tasks.text_file import read_utf8

    path = tmp_path / "d.csv"
    path.write_text("text\nWho ?\n", encoding=encoding)
    for read in (lambda: read_utf8(path), lambda: open_table(path, ".csv", str(path))):
        with pytest.raises(predict_table_source.Ptv2Error) as e:
            read()
        assert f"is {said} text" in str(e.value)


def test_a_utf16_table_without_a_byte_order_mark_is_hinted_and_prints_no_nul(trec, tmp_path):
    # read as UTF-8, its column names hold NUL bytes: the error printed them raw, without a hint
    path = tmp_path / "d.csv"
    path.write_bytes("text,id\nWho wrote Hamlet ?,1\n".encode("utf-16-le"))
    res = run("predict", "--adapter", str(trec), "--file", str(path))
    assert res.returncode == 2 and res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, res.stderr
    assert "\x00" not in res.stderr
    assert "UTF-16 without a byte order mark?" in res.stderr


@pytest.mark.parametrize("out", [True, False])
def test_a_bad_cell_late_in_a_table_of_several_chunks_leaves_nothing_written(trec, tmp_path, out):
    """The text column is checked as each chunk is labelled (no pass of its own): a list in row
    8,690 of 8,692 (the third chunk of 4,096 rows; two chunks already labelled and written to the
    temporary output) is one error line naming the file and that row, exit 2, and nothing is
    published: no --out, no temporary file beside it, nothing on standard output."""
    from pipelines.cli.predict_table_input import CHUNK

    rows, bad = 2 * CHUNK + 500, 2 * CHUNK + 498
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"id": i, "text": f"question {i} ?" if i % 1000 == 0 else None}) + "\n"
                            for i in range(1, bad)) + json.dumps({"id": bad, "text": ["a", "list"]}) + "\n" +
                    "".join(json.dumps({"id": i, "text": None}) + "\n" for i in range(bad + 1, rows + 1)))
    dest = tmp_path / "new" / "sub" / "out.jsonl"  # --out's folders made for it are removed again
    res = run("predict", "--adapter", str(trec), "--file", str(path), *(["--out", str(dest)] if out else []))
    _user_error(res, f"--file '{path}': row {bad} of column 'text' holds a list, not one text")
    assert res.stdout == "" and not dest.exists() and list(tmp_path.iterdir()) == [path]
