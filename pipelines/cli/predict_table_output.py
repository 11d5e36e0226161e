"""Writing the table ``ptv2 predict --file`` labelled: its rows as CSV or JSON lines (a JSON
number goes back as its text in the file: ``1.50``, ``1e400``), into a file published whole or not
at all (``--out``: a temporary file beside it, published once complete; without --overwrite a file
that appeared at --out meanwhile is kept), or to standard output once every row is labelled.
"""
from __future__ import annotations

import csv
import errno
import json
import math
import os
import secrets
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

import numpy as np

from ptv2_core.errors import Ptv2Error

# errors of a write that found no room: no space, over a quota, over the file size limit
ROOM_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def check_out_file(out: Path, overwrite: bool) -> None:
    """``--out`` a file path, not there already unless ``overwrite``, and writable."""
    from ptv2_core.adapter import check_not_dangling, check_writable

    if out.is_dir():
        raise Ptv2Error(f"--out '{out}' is a folder; give a file path")
    if out.exists() and not overwrite:
        raise Ptv2Error(f"--out '{out}' exists (pass --overwrite to replace it)")
    check_not_dangling(out)  # was taken for a file written meanwhile, after the labelling
    check_writable(out, "--out", file=True)


def table_lines(df, names: list[str], added: dict[str, list], suffix: str, first: int, name: str) -> Iterator[str]:
    """The rows of ``df`` (from row ``first``) with ``added``, as lines of ``suffix`` (CSV or JSON);
    ``name``: the input's, for errors."""
    inputs = zip(*(df.iloc[:, j].tolist() for j in range(df.shape[1])))
    extra = zip(*added.values())
    if suffix == ".csv":
        text = _LineBuffer()
        w = csv.writer(text, lineterminator="\n")
        for row, more in zip(inputs, extra):
            w.writerow([_csv_cell(v) for v in row] + [_csv_cell(v) for v in more])
            yield text.take()
        return
    for i, (row, more) in enumerate(zip(inputs, extra), first):
        record = {k: v for k, v in zip(names, row) if not _absent(v)} | dict(zip(added, more))
        try:
            yield _json(record)
        except ValueError:
            raise Ptv2Error(f"{name}: row {i} holds a number JSON cannot write (NaN or Infinity)") from None


class _LineBuffer:
    """What csv.writer writes, taken line by line (a quoted field may hold line feeds)."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, s: str) -> None:
        self.parts.append(s)

    def take(self) -> str:
        line, self.parts = "".join(self.parts), []
        return line


def _csv_cell(v: Any) -> str:
    if v is None or _absent(v):
        return ""
    return repr(v) if isinstance(v, float) else str(v)


def _absent(v: Any) -> bool:
    """A key a JSON row did not have (pandas fills it with NaN; a JSON null is None)."""
    return isinstance(v, float) and math.isnan(v)


def _json(v: Any) -> str:
    """A cell as JSON text, as ``json.dumps`` writes it, but the readers' numbers and booleans
    (``JsonNumber``, ``JsonBool``: their text in the file) written as that text: through Python's
    float ``1.50`` came back ``1.5``, and ``1e400`` as ``Infinity``, which is no JSON. A float that
    is not finite raises ValueError."""
    from ptv2_core.tasks.json_file import JsonBool, JsonNumber

    if isinstance(v, (JsonNumber, JsonBool)):
        return str(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k), ensure_ascii=False)}: {_json(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple, np.ndarray)):
        return "[" + ", ".join(_json(x) for x in v) + "]"
    return json.dumps(v, ensure_ascii=False, allow_nan=False)


@contextmanager
def output_file(out: Path | None, overwrite: bool) -> Iterator[IO[bytes]]:
    """A file to write the labelled table to, published when the block ends without an error: to
    ``out`` (a temporary file beside it, linked into place: never half-written, and without
    ``overwrite`` never over a file that appeared meanwhile) or to standard output (an anonymous
    temporary file copied out at the end: nothing printed for a table that fails half way)."""
    if out is None:
        where = tempfile.gettempdir()
        try:
            spool = tempfile.TemporaryFile()
        except OSError as e:
            raise _spool_error(where, e) from None
        with spool as f:
            try:
                yield f
                f.flush()
            except OSError as e:  # no room in TMPDIR (nothing else is written meanwhile)
                if e.errno not in ROOM_ERRORS:
                    raise
                raise _spool_error(where, e) from None
            f.seek(0)
            try:
                sys.stdout.flush()  # anything printed before goes first
                if hasattr(sys.stdout, "buffer"):
                    shutil.copyfileobj(f, sys.stdout.buffer)
                else:  # a text stream (a test's)
                    sys.stdout.write(f.read().decode("utf-8"))
                sys.stdout.flush()
            except OSError as e:  # standard output redirected to a full disk (a closed pipe: broken_pipe's)
                if e.errno not in ROOM_ERRORS:
                    raise
                raise Ptv2Error(f"cannot write the labelled table to standard output: {e.strerror}") from None
        return
    from ptv2_core.durable import sync

    check_out_file(out, overwrite)  # again: written meanwhile?
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(6)}.tmp")
    made: list[Path] = []
    published = False
    try:
        made = _make_folder(out.parent)  # as train makes its --out folder's parents
        with open(tmp, "xb") as f:
            yield f
        sync(tmp)
        _publish(tmp, out, overwrite)
        published = True
        sync(out.parent)
    except OSError as e:
        raise Ptv2Error(f"--out '{out}' cannot be written: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)
        if not published:  # a table that failed (a bad row, Ctrl-C) leaves no folder made for it either
            for folder in made:
                try:
                    folder.rmdir()
                except OSError:  # something else was put there meanwhile: kept
                    break


def _make_folder(folder: Path) -> list[Path]:
    """``folder`` made with its missing parents; the folders it made, deepest first."""
    missing = []
    at = folder
    while not at.exists() and at != at.parent:
        missing.append(at)
        at = at.parent
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _spool_error(where: str, e: OSError) -> Ptv2Error:
    return Ptv2Error(f"cannot hold the labelled table in a temporary file in '{where}' (TMPDIR): "
                     f"{e.strerror or e}; give --out, or set TMPDIR to a folder with room")


def _publish(tmp: Path, out: Path, overwrite: bool) -> None:
    """``tmp`` at ``out``: replacing it with ``overwrite``, else a hard link that fails if a file
    appeared at ``out`` while the table was labelled (a rename replaced it without a word)."""
    if overwrite:
        os.replace(tmp, out)
        return
    exists = Ptv2Error(f"--out '{out}' exists: it was written while the table was labelled (pass --overwrite to "
                       "replace it)")
    try:
        os.link(tmp, out)
        return
    except FileExistsError:
        raise exists from None
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
    try:  # a file system without hard links: the name claimed by an empty file first, then replaced
        os.close(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except FileExistsError:
        raise exists from None
    os.replace(tmp, out)

def chunk_text(lines: Iterator[str], suffix: str, first: bool) -> str:
    """One chunk's lines as they follow the ones before: CSV lines end in their line feed already;
    a JSON list's rows are separated by commas."""
    if suffix == ".csv":
        return "".join(lines)
    if suffix == ".jsonl":
        return "".join(line + "\n" for line in lines)
    return ("" if first else ",\n") + ",\n".join(lines)


def csv_line(fields: list) -> bytes:
    text = _LineBuffer()
    csv.writer(text, lineterminator="\n").writerow(fields)
    return text.take().encode("utf-8")
