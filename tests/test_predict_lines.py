"""The lines `ptv2 predict --file` labels: cut at line feeds only, UTF-8 checked per line,
standard input read a chunk at a time."""
from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator

import pytest

from pipelines.cli.lines import open_lines
from ptv2_core.errors import Ptv2Error


def _stdin(monkeypatch, data: bytes, close: bool = True) -> int:
    """Standard input as a real pipe holding ``data``; returns the pipe's write end (closed: the
    input ends after ``data``)."""
    r, w = os.pipe()
    os.write(w, data)  # under the pipe's 64 KiB: no reader needed
    if close:
        os.close(w)
    monkeypatch.setattr(sys, "stdin", os.fdopen(r, "r"))
    return w


def test_a_form_feed_or_line_separator_stays_inside_its_text(tmp_path):
    # str.splitlines cut these texts in two, and every later label landed on the wrong line
    data = "Who wrote\fHamlet ?\nHow far\u2028is the moon ?\r\n\nWhen ?"
    (tmp_path / "in.txt").write_text(data, encoding="utf-8", newline="")
    source = open_lines(str(tmp_path / "in.txt"), 2)
    assert [*source.chunks()] == [["Who wrote\fHamlet ?", "How far\u2028is the moon ?"], ["", "When ?"]]
    assert source.total == 4 == data.count("\n") + 1  # wc -l, plus the last line without its line feed


@pytest.mark.parametrize("data,lines", [(b"a\n", ["a"]), (b"a", ["a"]), (b"\n", [""]), (b"a\n\nb\n", ["a", "", "b"]),
                                        (b"a\r\nb\rc\n", ["a", "b\rc"]),
                                        # a UTF-8 byte order mark opens the input, not its first text
                                        # (it was labelled as "\ufeffhello"); later ones are text
                                        (b"\xef\xbb\xbfhello\r\n\xef\xbb\xbfb\r\n", ["hello", "\ufeffb"]),
                                        (b"\xef\xbb\xbf\n", [""])])
def test_lines_of_a_file_and_of_standard_input_are_the_same(tmp_path, monkeypatch, data, lines):
    (tmp_path / "in.txt").write_bytes(data)
    _stdin(monkeypatch, data)
    from_file, from_stdin = open_lines(str(tmp_path / "in.txt"), 3), open_lines("-", 3)
    assert [x for c in from_file.chunks() for x in c] == [x for c in from_stdin.chunks() for x in c] == lines
    assert (from_file.total, from_stdin.total) == (len(lines), None)


def test_standard_input_lines_are_taken_as_they_arrive(monkeypatch):
    """A chunk is what has arrived when the pipe runs dry, so a producer's lines are labelled
    while it still writes; a fast producer's fill chunks of the given size."""
    w = _stdin(monkeypatch, b"line 0\nline 1\nline 2\npart", close=False)
    watchdog = threading.Timer(30, os.close, [w])  # a reader that waits for the end returns then, with "part"
    watchdog.start()
    try:
        source = open_lines("-", 3)
        assert source.first == ["line 0", "line 1", "line 2"]  # the unfinished line waits
        os.write(w, b"ial\n" + b"".join(f"x{i}\n".encode() for i in range(5)) + b"last, no line feed")
    finally:
        watchdog.cancel()
    os.close(w)
    assert [*source.rest] == [["partial", "x0", "x1"], ["x2", "x3", "x4"], ["last, no line feed"]]


def test_standard_input_closed_is_an_error(monkeypatch):
    monkeypatch.setattr(sys, "stdin", None)  # what Python makes of `<&-`
    with pytest.raises(Ptv2Error, match="standard input is closed"):
        open_lines("-", 4)


def test_bad_utf8_names_its_line_and_the_lines_before_it_come_first(tmp_path, monkeypatch):
    data = b"one\ntwo\nthree\ncaf\xe9\nfive\n"
    (tmp_path / "in.txt").write_bytes(data)
    with pytest.raises(Ptv2Error, match=r"--file '.*in.txt' is not UTF-8 text: line 4, byte 4"):
        open_lines(str(tmp_path / "in.txt"), 2)  # a file: refused whole, before anything is labelled
    _stdin(monkeypatch, data)
    source = open_lines("-", 2)
    chunks = source.chunks()
    assert next(chunks) == ["one", "two"] and next(chunks) == ["three"]  # the good lines of the chunk first
    with pytest.raises(Ptv2Error, match="standard input is not UTF-8 text: line 4, byte 4"):
        next(chunks)


def test_empty_input_is_refused_before_anything_loads(tmp_path, monkeypatch):
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(Ptv2Error, match="holds no lines to label"):
        open_lines(str(tmp_path / "empty.txt"), 4)
    _stdin(monkeypatch, b"")  # `ptv2 predict -` or `--file -`: named as what it is, not as "--file '-'"
    with pytest.raises(Ptv2Error, match="^standard input holds no lines to label") as e:
        open_lines("-", 4)
    assert "--file" not in str(e.value)


def test_a_file_is_labelled_in_memory_that_does_not_grow_with_it(tmp_path):
    """A file is read a chunk at a time (it was read whole, then split: several times its size
    held at once); only its line count is kept from the check before labelling."""
    import tracemalloc

    path = tmp_path / "big.txt"
    line = "How far is it from Paris to Berlin by train , and how long does it take ?\n"
    path.write_text(line * 100_000)  # 7.5 MB
    tracemalloc.start()
    try:
        source = open_lines(str(path), 1000)
        count = sum(len(c) for c in source.chunks())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert source.total == count == 100_000
    assert peak < 1_000_000, f"{peak / 1e6:.1f} MB held for a {path.stat().st_size / 1e6:.1f} MB file"


def _fifo_writer(fifo, parts: list[bytes], between: threading.Event | None = None) -> threading.Thread:
    """A writer on ``fifo``: the parts in turn, waiting for ``between`` (at most 10 s) after the
    first; it closes the FIFO at the end."""
    def write():
        with open(fifo, "wb", buffering=0) as w:
            for i, part in enumerate(parts):
                if i and between is not None:
                    between.wait(10)
                w.write(part)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


@contextlib.contextmanager
def _unblocked(fifo, after: float) -> Iterator[None]:
    """From ``after`` seconds on, a reader left waiting in open() for a writer that never comes
    gets its end of input (the FIFO read twice, as it was: the test fails, it does not hang)."""
    done = threading.Event()

    def unblock():
        done.wait(after)
        while not done.is_set():
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:  # no reader waiting: nothing to release
                pass
            done.wait(0.2)

    thread = threading.Thread(target=unblock, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def test_a_fifo_is_read_once_and_labelled_as_it_comes(tmp_path):
    """`--file <(cmd)` or a FIFO was read twice (a count, then the labels): empty the second time,
    so nothing was labelled. It is read once, as standard input is, without a count."""
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    arrived = threading.Event()
    writer = _fifo_writer(fifo, [b"line 0\nline 1\n", b"line 2\nlast, no line feed"], arrived)
    try:
        with _unblocked(fifo, after=20):
            source = open_lines(str(fifo), 3)
            assert source.first == ["line 0", "line 1"]  # what has come, while the writer still writes
            arrived.set()
            # labelled as it comes: "line 2" may be a batch of its own when the writer has not closed yet
            rest = [*source.rest]
            assert [line for batch in rest for line in batch] == ["line 2", "last, no line feed"]
            assert all(0 < len(batch) <= 3 for batch in rest)
    finally:
        arrived.set()
    writer.join(10)
    assert source.total is None and source.name == f"--file '{fifo}'"


def test_an_empty_fifo_and_a_bad_line_in_one_are_named_as_the_file(tmp_path):
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    with _unblocked(fifo, after=10):
        _fifo_writer(fifo, [b""])
        with pytest.raises(Ptv2Error, match=f"^--file '{fifo}' holds no lines to label$"):
            open_lines(str(fifo), 4)
    _fifo_writer(fifo, [b"one\ncaf\xe9\n"])
    chunks = open_lines(str(fifo), 4).chunks()  # read once: the bad line is found as it comes, not before
    assert next(chunks) == ["one"]  # the lines before the bad one are labelled first, as from standard input
    with pytest.raises(Ptv2Error, match=f"^--file '{fifo}' is not UTF-8 text: line 2, byte 4"):
        next(chunks)


def test_a_fifo_is_waited_for_after_the_model_loads_as_standard_input_is(tmp_path):
    """`ptv2 predict --file FIFO` with no writer yet: a wrong --adapter is told at once (the FIFO
    was opened first, and predict waited for a writer before saying anything)."""
    from conftest import run_cli

    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    with _unblocked(fifo, after=10):
        res = run_cli("predict", "--adapter", str(tmp_path / "missing"), "--file", str(fifo))
    assert res.returncode == 2 and res.stderr == f"error: adapter folder '{tmp_path / 'missing'}' does not exist\n"


@pytest.mark.parametrize("data", [b"\xef\xbb\xbf", b""])
def test_a_byte_order_mark_alone_is_an_empty_input(tmp_path, monkeypatch, data):
    # it was one empty line, "labelled" with an empty output line
    (tmp_path / "bom.txt").write_bytes(data)
    with pytest.raises(Ptv2Error, match="holds no lines to label"):
        open_lines(str(tmp_path / "bom.txt"), 4)
    _stdin(monkeypatch, data)
    with pytest.raises(Ptv2Error, match="^standard input holds no lines to label"):
        open_lines("-", 4)


@pytest.mark.parametrize("text,encoding,said", [("Who ?\n", "utf-16", "is UTF-16 text (its byte order mark says so)"),
                                                ("Who ?\n", "utf-32", "is UTF-32 text (its byte order mark says so)"),
                                                ("café\n", "latin-1", "(Windows-1252 or Latin-1?); save it as UTF-8")])
def test_another_encoding_is_named_with_what_to_do(tmp_path, monkeypatch, text, encoding, said):
    # UTF-16 (Notepad's "Unicode") was "not UTF-8 text: line 1, byte 1: invalid start byte"
    (tmp_path / "in.txt").write_bytes(text.encode(encoding))
    with pytest.raises(Ptv2Error, match=re.escape(said)):
        open_lines(str(tmp_path / "in.txt"), 4)
    _stdin(monkeypatch, text.encode(encoding))
    with pytest.raises(Ptv2Error, match=re.escape(said)):
        [*open_lines("-", 4).chunks()]


def test_where_select_takes_no_pipe_the_lines_still_come(tmp_path, monkeypatch):
    """Windows' select takes sockets only (OSError on a pipe): a FIFO's lines are then labelled a
    chunk per read, not an OSError traceback."""
    import select

    def sockets_only(*args):
        raise OSError(10038, "An operation was attempted on something that is not a socket")

    monkeypatch.setattr(select, "select", sockets_only)
    fifo = tmp_path / "in"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(b"a\nb\nc\n"))
    writer.start()
    try:
        got = [line for chunk in open_lines(str(fifo), 2).chunks() for line in chunk]
    finally:
        writer.join(10)
    assert got == ["a", "b", "c"]
