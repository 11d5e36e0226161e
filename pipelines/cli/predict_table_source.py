"""The rows of a table ``ptv2 predict --file`` labels, a chunk at a time.

A CSV or JSON Lines table is read as it is used, never held whole: once before the model loads
(its syntax checked, its rows counted, its columns found: a JSON Lines row's keys in the order they
first appear, as pandas orders them) and once more to label it, ``CHUNK`` rows at a time, each
chunk's text column checked as it is labelled; so memory stays flat however long the file. The scan
stays a pass of its own: a CSV with a stray quote anywhere is read leniently throughout (as
``read_csv`` reads it), a JSON Lines table's columns are those of every row, and a syntax, encoding
or missing-column error is told before the model loads, not after labelling the rows before it. The chunks are
the frames the task data readers (``ptv2_core.tasks.files.read_table``) would give for those rows
of the whole file, so the output is byte for byte what it was when the whole file was read. A JSON
file (one document) and a Parquet file are read whole, as before.

Standard input, a FIFO or ``<(cmd)`` (read once only) is first copied to a temporary file (on
disk: ``TMPDIR``), then read as a file is.
"""
from __future__ import annotations

import csv
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ptv2_core.errors import Ptv2Error

STREAMED = (".csv", ".jsonl")  # read a chunk at a time; the others whole


@dataclass
class Table:
    """A table to label: ``shown`` names it in messages, ``path`` is where it is read from."""

    shown: str
    path: Path
    suffix: str
    columns: list[str]
    rows: int
    strict: bool = True  # a CSV without a stray quote (one is read leniently, as read_table does)
    whole: pd.DataFrame | None = None  # .json, .parquet
    attrs: dict = field(default_factory=dict)  # "header": a CSV's header as written
    stamp: tuple | None = None  # the file's (inode, size, mtime) as first read: a later pass reads the same file

    def chunks(self, size: int) -> Iterator[tuple[int, pd.DataFrame]]:
        """(index of its first row, frame of up to ``size`` rows), in order. A file rewritten since
        it was first read (its columns and row count taken then) is an error, at the start or the
        end of the pass: its rows would be labelled under the old columns."""
        if self.whole is not None:
            for start in range(0, len(self.whole), size):
                yield start, self.whole.iloc[start:start + size]
            return
        self._unchanged()
        start, batch = 0, []
        with _records(self) as records:
            for row in records:
                batch.append(row)
                if len(batch) == size:
                    yield start, self._frame(batch)
                    start, batch = start + size, []
            if batch:
                yield start, self._frame(batch)
        self._unchanged(start + len(batch))

    def _unchanged(self, rows: int | None = None) -> None:
        if _stamp(self.path) != self.stamp or (rows is not None and rows != self.rows):
            raise Ptv2Error(f"data file {self.shown} changed while being read (it is read more than once); "
                            "run again once nothing writes to it")

    def _frame(self, rows: list) -> pd.DataFrame:
        return pd.DataFrame(rows, columns=self.columns, dtype=object)


def open_table(path: Path, suffix: str, shown: str) -> Table:
    """``path`` read through once: its rows counted and its columns named (a CSV or JSON Lines
    table), or read whole (JSON, Parquet); a file that does not read is an error before any model loads."""
    if suffix not in STREAMED:
        return _whole(path, suffix, shown)
    _check_file(path, shown)
    table = Table(shown, path, suffix, [], 0, stamp=_stamp(path))
    for strict in (True, False):  # read_csv's rule: a stray quote, read again leniently
        table.strict = strict
        try:
            table.columns, table.rows = _scan(table)
            table._unchanged()
            return table
        except csv.Error:
            if not strict:
                raise
    raise AssertionError("unreachable")


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:  # gone: told when it is opened
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _scan(table: Table) -> tuple[list[str], int]:
    with _records(table) as records:
        if table.suffix == ".csv":
            header = next(records, None)
            return (header or []), sum(1 for _ in records)
        names: dict[str, None] = {}
        count = 0
        for row in records:
            names.update(dict.fromkeys(row))
            count += 1
        return list(names), count


@contextmanager
def _records(table: Table) -> Iterator[Iterator]:
    """A CSV's header then rows (the header is dropped once the columns are known), or a JSON
    Lines table's objects; a reader's unexpected failure named as read_table names it."""
    from ptv2_core.tasks.csv_file import csv_records
    from ptv2_core.tasks.json_file import jsonl_rows
    from ptv2_core.tasks.text_file import utf8_text

    csv_file = table.suffix == ".csv"
    try:
        with utf8_text(table.path, "" if csv_file else None, shown=table.shown) as f:
            records = csv_records(table.shown, f, table.strict) if csv_file else jsonl_rows(table.shown, f)
            if csv_file and table.columns:
                next(records, None)
            yield records
    except (Ptv2Error, csv.Error):
        raise
    except OSError as e:
        raise Ptv2Error(f"cannot read data file {table.shown}: {e.strerror or e}") from None
    except (ValueError, TypeError) as e:
        said = " ".join(str(e).split())
        raise Ptv2Error(f"could not read data file {table.shown}: {type(e).__name__}: {said}") from None


def _check_file(path: Path, shown: str) -> None:
    """A missing file or a folder named as lines.py names them (read_table said 'data file not found'
    of a folder too)."""
    if path.is_dir():
        raise Ptv2Error(f"--file '{shown}' is a folder, not a table")
    if not path.exists():
        raise Ptv2Error(f"--file '{shown}' does not exist")


def _whole(path: Path, suffix: str, shown: str) -> Table:
    from ptv2_core.tasks.files import read_table

    _check_file(path, shown)
    try:
        df = read_table(path)
    except Ptv2Error as e:
        if str(path) == shown:
            raise
        # a copy of standard input or a pipe is named as what it is, and has no name to change
        raise Ptv2Error(str(e).replace(str(path), shown).replace("name it .jsonl", "give --format jsonl")) from None
    return Table(shown, path, suffix, [str(c) for c in df.columns], len(df), whole=df)


@contextmanager
def local_copy(file: str, suffix: str) -> Iterator[Path]:
    """``file`` as a regular file to read more than once: itself, or, for standard input ('-'), a
    FIFO or another stream, a temporary copy (removed at the end)."""
    from pipelines.cli.lines import streamed

    if not streamed(file):
        yield Path(file)
        return
    if file == "-" and sys.stdin is None:
        raise Ptv2Error("standard input is closed: nothing to label")
    with tempfile.TemporaryDirectory(prefix="ptv2-predict-") as tmp:
        copy = Path(tmp) / f"input{suffix}"
        try:
            with open(copy, "wb") as out:
                if file == "-" and not hasattr(sys.stdin, "buffer"):  # a text stream put in its place
                    out.write(sys.stdin.read().encode("utf-8"))
                elif file == "-":
                    shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
                else:  # a FIFO (shutil.copyfile refuses one)
                    with open(file, "rb") as f:
                        shutil.copyfileobj(f, out, 1 << 20)
        except OSError as e:
            name = "standard input" if file == "-" else f"--file '{file}'"
            raise Ptv2Error(f"cannot copy {name} to a temporary file in {tmp} (TMPDIR): {e.strerror or e}") from None
        yield copy

