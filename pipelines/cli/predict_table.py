"""``ptv2 predict --file`` on a table (.csv, .jsonl, .json, .parquet): its text column labelled, the
table written back in its own format with the prediction columns added.

Read with the task data readers (``ptv2_core.tasks.files.read_table``: quoted CSV fields with
commas and line feeds, JSON numbers as written), so a table is read here as training reads it. The
lines of such a file were labelled one by one before, its header and JSON syntax included. The
reader holds the whole table; it is then labelled and written ``CHUNK`` rows at a time (CSV, JSON
Lines, JSON), so the texts, predictions and output lines of one chunk are held at once, not the
table's several times over. A JSON number goes back as its text in the file (``1.50``, ``1e400``).

Columns added: ``pred_label`` (``pred_score`` with --scores) for a sequence task; ``pred_tags``
(``pred_scores``) for a token task, one tag per word: a list in JSON and Parquet, the tags joined by
spaces in CSV. A row with an empty or missing text gets empty predictions. The output goes to
``--out PATH`` (same format, written whole or not at all: a temporary file beside it, published
once complete; without --overwrite a file that appeared at --out meanwhile is kept) or, for the text
formats, to standard output once every row is labelled.
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
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

import numpy as np

from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks.spec import DATA_SUFFIXES

# tables ptv2 does not read: labelled line by line, each of their lines (header included) was a "text"
NOT_READ = (".tsv", ".tab", ".psv", ".xlsx", ".xls", ".ods", ".ndjson", ".feather", ".arrow", ".orc", ".avro")
PREDICTED = {"sequence": ("pred_label", "pred_score"), "token": ("pred_tags", "pred_scores")}
CHUNK = 4096  # rows labelled and written at a time, as the plain-text path labels lines


def is_table(file: str | None) -> bool:
    """Whether ``--file`` names a table (by its extension); one that ptv2 cannot read is refused."""
    if file is None or file == "-":
        return False
    suffix = Path(file).suffix.lower()
    if suffix in NOT_READ:
        raise Ptv2Error(f"--file '{file}' looks like a table ptv2 does not read ({suffix}): save it as "
                        f"{', '.join(DATA_SUFFIXES)}, or name it .txt to label each of its lines as a text")
    return suffix in DATA_SUFFIXES


def check_options(table: bool, file: str | None, out: Path | None, overwrite: bool, as_json: bool,
                  text_column: str | None) -> None:
    """The options that go with a table, and only with one; ``--out`` checked before anything loads."""
    if not table:
        for given, flag in ((out is not None, "--out"), (overwrite, "--overwrite"),
                            (text_column is not None, "--text-column")):
            if given:
                raise Ptv2Error(f"{flag} applies to a table --file ({', '.join(DATA_SUFFIXES)}); texts and "
                                "text lines are labelled on standard output")
        return
    if as_json:
        raise Ptv2Error(f"--json applies to texts and text lines; a table --file is written back as "
                        f"{Path(file).suffix.lower()} with its prediction columns added")
    suffix = Path(file).suffix.lower()
    if out is None:
        if suffix == ".parquet":
            raise Ptv2Error("a Parquet --file is written to --out PATH only (not to standard output)")
        return
    if out.suffix.lower() != suffix:
        raise Ptv2Error(f"--out '{out}' must end in {suffix}: the labelled table is written in the format of --file")
    check_out_file(out, overwrite)


def check_out_file(out: Path, overwrite: bool) -> None:
    from ptv2_core.adapter import check_writable

    if out.is_dir():
        raise Ptv2Error(f"--out '{out}' is a folder; give a file path")
    if out.exists() and not overwrite:
        raise Ptv2Error(f"--out '{out}' exists (pass --overwrite to replace it)")
    check_writable(out, "--out", file=True)


def read_input(file: str, text_column: str | None):
    """The table's rows as a frame (cells as the task data readers give them); an empty one, or one
    without ``--text-column``, refused before the model loads."""
    from ptv2_core.tasks.files import read_table

    df = read_table(Path(file))
    if len(df) == 0:
        raise Ptv2Error(f"--file '{file}' holds no rows to label")
    if Path(file).suffix.lower() == ".csv":
        header = _csv_header(file)  # written back as it was (read_table names a blank one 'Unnamed: i')
        if len(header) == df.shape[1]:
            df.attrs["header"] = header
    if text_column is not None and text_column not in [str(c) for c in df.columns]:
        _no_column(df, [text_column], "", file)
    return df


def _csv_header(file: str) -> list[str]:
    """A CSV's header fields as written; a name given twice is refused: read_table renamed the
    second ``a`` to ``a.1``, written back so, and which one is the text column is anyone's guess."""
    with open(file, encoding="utf-8-sig", newline="") as f:  # read_table has read it as UTF-8 already
        header = next((fields for fields in csv.reader(f) if any(x.strip() for x in fields)), [])
    twice = [name for name, n in Counter(h for h in header if h.strip()).items() if n > 1]
    if twice:
        raise Ptv2Error(f"--file '{file}' repeats column names: {', '.join(repr(n) for n in twice)}; give each "
                        "column of its header line its own name")
    return header


def check_early(df, file: str, wanted: str | None, config: dict) -> None:
    """An adapter folder's table checked before its model loads (seconds): its prediction columns
    new, its text column there (the task's, from the adapter's config) and every cell a text. A
    config that does not read is left for loading the adapter to report."""
    from ptv2_core.tasks.spec import TaskSpec

    try:
        spec = TaskSpec.from_dict(config["task"])
    except (TypeError, KeyError, ValueError):
        return
    checked_column(df, wanted, spec.type, spec.text_column, file)


def checked_column(df, wanted: str | None, kind: str, task_column: str, file: str) -> tuple[str, int]:
    """The column to label (``pick_column``), every cell of it checked to be a text (or empty),
    and how many texts it holds."""
    column, todo = pick_column(df, wanted, kind, task_column, file), 0
    for start in range(0, len(df), CHUNK):
        texts = texts_of(df[column].iloc[start:start + CHUNK].tolist(), kind, column, file, start + 1)
        todo += sum(t is not None for t in texts)
    return column, todo


def pick_column(df, wanted: str | None, kind: str, task_column: str, file: str) -> str:
    """``--text-column``, else the adapter's task's text column, else ``text`` (a token task: ``tokens``
    too); a table without it is refused, naming its columns. Its prediction columns must be new."""
    names = [str(c) for c in df.columns]
    taken = [c for c in PREDICTED[kind] if c in names]
    if taken:
        raise Ptv2Error(f"--file '{file}' has a column '{taken[0]}' already, where ptv2 writes its predictions: "
                        "rename that column")
    tried = [wanted] if wanted is not None else list(dict.fromkeys([task_column, "text", *(["tokens"] if
                                                                                           kind == "token" else [])]))
    found = next((c for c in tried if c in names), None)
    if found is None:
        _no_column(df, tried, "" if wanted is not None else " (the adapter's task's text column, or the default)", file)
    return found


def _no_column(df, tried: list[str], why: str, file: str) -> None:
    from ptv2_core.tasks.csv_file import other_separator

    names = [str(c) for c in df.columns]
    shown = names[:20] + ([f"... {len(names) - 20} more"] if len(names) > 20 else [])
    sep = other_separator(names) if Path(file).suffix.lower() == ".csv" else None
    fix = f"{sep}: ptv2 reads a CSV's fields separated by commas; save it with commas" if sep else \
        "pass --text-column NAME"
    raise Ptv2Error(f"--file '{file}' has no column {' or '.join(repr(c) for c in tried)}{why}; its columns: "
                    f"{', '.join(shown)}: {fix}")


def texts_of(values: list, kind: str, column: str, file: str, first: int = 1) -> list[str | None]:
    """Each cell as the text ``predict`` labels (None: empty or missing, nothing to label). A token
    task's list of words is joined by spaces, which ``predict`` splits again: a word holding white
    space (or empty) would shift every later tag, so it is refused."""
    texts: list[str | None] = []
    for i, v in enumerate(values, first):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            texts.append(None)
            continue
        if isinstance(v, (list, tuple, np.ndarray)):
            if kind != "token":
                raise Ptv2Error(f"--file '{file}': row {i} of column '{column}' holds a list, not one text")
            words = [str(w) for w in v]
            if " ".join(words).split() != words:
                raise Ptv2Error(f"--file '{file}': row {i} of column '{column}' holds an empty word or one with white "
                                "space in it; predict splits texts into words at white space")
            v = " ".join(words)
        elif isinstance(v, dict):
            raise Ptv2Error(f"--file '{file}': row {i} of column '{column}' holds a mapping, not a text")
        text = str(v)
        texts.append(text if text.strip() else None)
    return texts


def prediction_columns(rows: list[dict | None], kind: str, scores: bool, joined: bool) -> dict[str, list]:
    """The columns to add, from ``predict``'s rows (None: a row with no text). ``joined``: tags and
    scores as space-joined text (CSV), else lists."""
    name, score_name = PREDICTED[kind]
    if kind == "sequence":
        cols = {name: [r and r["label"] for r in rows]}
        if scores:
            cols[score_name] = [r and r["score"] for r in rows]
        return cols

    def cell(values: list | None, fmt) -> Any:
        if values is None:
            return None
        return " ".join(fmt(v) for v in values) if joined else list(values)

    cols = {name: [cell(r and r["tags"], str) for r in rows]}
    if scores:
        cols[score_name] = [cell(r and r["scores"], repr) for r in rows]
    return cols


def table_lines(df, names: list[str], added: dict[str, list], suffix: str, first: int, file: str) -> Iterator[str]:
    """The rows of ``df`` (from row ``first``) with ``added``, as lines of ``suffix`` (CSV or JSON)."""
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
            raise Ptv2Error(f"--file '{file}': row {i} holds a number JSON cannot write (NaN or Infinity)") from None


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
        with tempfile.TemporaryFile() as f:
            yield f
            f.seek(0)
            sys.stdout.flush()  # anything printed before goes first
            if hasattr(sys.stdout, "buffer"):
                shutil.copyfileobj(f, sys.stdout.buffer)
            else:  # a text stream (a test's)
                sys.stdout.write(f.read().decode("utf-8"))
            sys.stdout.flush()
        return
    from ptv2_core.durable import sync

    check_out_file(out, overwrite)  # again: written meanwhile?
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(6)}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)  # as train makes its --out folder's parents
        with open(tmp, "xb") as f:
            yield f
        sync(tmp)
        _publish(tmp, out, overwrite)
        sync(out.parent)
    except OSError as e:
        raise Ptv2Error(f"--out '{out}' cannot be written: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)


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


def label(loaded, texts: list[str | None], batch_size: int, bar) -> list[dict | None]:
    """``predict``'s rows for ``texts`` (None for no text)."""
    from ptv2_core.predict import predict

    todo = [t for t in texts if t is not None]
    done = iter(predict(loaded, todo, batch_size, on_batch=bar.update) if todo else ())
    return [None if t is None else next(done) for t in texts]


def predict_table(loaded, file: str, df, *, text_column: str | None, out: Path | None, overwrite: bool,
                  scores: bool, batch_size: int) -> None:
    """Label the table ``df`` read from ``file`` and write it with its prediction columns, ``CHUNK``
    rows at a time (a Parquet table at once); a progress bar on a terminal, and a Ctrl-C stops it
    before anything is written."""
    from tqdm.auto import tqdm

    from ptv2_core.errors import Ptv2Interrupted

    spec = loaded.spec
    column, todo = checked_column(df, text_column, spec.type, spec.text_column, file)
    suffix = Path(file).suffix.lower()
    names = [str(c) for c in df.columns]
    try:
        with output_file(out, overwrite) as f, \
                tqdm(total=todo, unit="text", desc="predict", disable=None, file=sys.stderr) as bar:
            if suffix == ".parquet":
                added = prediction_columns(label(loaded, texts_of(df[column].tolist(), spec.type, column, file),
                                                 batch_size, bar), spec.type, scores, joined=False)
                df.assign(**added).to_parquet(f, index=False)
            else:
                added_names = list(PREDICTED[spec.type][:2 if scores else 1])
                f.write({".csv": _csv_line(df.attrs.get("header", names) + added_names), ".jsonl": b"",
                         ".json": b"[\n"}[suffix])
                for start in range(0, len(df), CHUNK):
                    part = df.iloc[start:start + CHUNK]
                    rows = label(loaded, texts_of(part[column].tolist(), spec.type, column, file, start + 1),
                                 batch_size, bar)
                    added = prediction_columns(rows, spec.type, scores, joined=suffix == ".csv")
                    f.write(_chunk_text(table_lines(part, names, added, suffix, start + 1, file), suffix,
                                        start == 0).encode("utf-8"))
                if suffix == ".json":
                    f.write(b"\n]\n")
    except KeyboardInterrupt:
        raise Ptv2Interrupted("interrupted before every row was labelled; nothing was written: run the same "
                              "command again (it starts over)") from None
    if out is not None:
        print(f"{len(df)} rows labelled ('{column}'); written to {out}", file=sys.stderr)


def _chunk_text(lines: Iterator[str], suffix: str, first: bool) -> str:
    """One chunk's lines as they follow the ones before: CSV lines end in their line feed already;
    a JSON list's rows are separated by commas."""
    if suffix == ".csv":
        return "".join(lines)
    if suffix == ".jsonl":
        return "".join(line + "\n" for line in lines)
    return ("" if first else ",\n") + ",\n".join(lines)


def _csv_line(fields: list) -> bytes:
    text = _LineBuffer()
    csv.writer(text, lineterminator="\n").writerow(fields)
    return text.take().encode("utf-8")
