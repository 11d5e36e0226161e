"""``ptv2 predict --file`` on a table (.csv, .jsonl, .json, .parquet): its text column labelled, the
table written back in its own format with the prediction columns added.

Read with the task data readers (``ptv2_core.tasks.files.read_table``: quoted CSV fields with
commas and line feeds, JSON numbers as written), so a table is read here as training reads it. The
lines of such a file were labelled one by one before, its header and JSON syntax included.

Columns added: ``pred_label`` (``pred_score`` with --scores) for a sequence task; ``pred_tags``
(``pred_scores``) for a token task, one tag per word: a list in JSON and Parquet, the tags joined by
spaces in CSV. A row with an empty or missing text gets empty predictions. The output goes to
``--out PATH`` (same format, written whole or not at all) or, for the text formats, to standard
output once every row is labelled.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks.spec import DATA_SUFFIXES

# tables ptv2 does not read: labelled line by line, each of their lines (header included) was a "text"
NOT_READ = (".tsv", ".tab", ".psv", ".xlsx", ".xls", ".ods", ".ndjson", ".feather", ".arrow", ".orc", ".avro")
PREDICTED = {"sequence": ("pred_label", "pred_score"), "token": ("pred_tags", "pred_scores")}


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
    if text_column is not None and text_column not in [str(c) for c in df.columns]:
        _no_column(df, [text_column], "", file)
    return df


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


def texts_of(values: list, kind: str, column: str, file: str) -> list[str | None]:
    """Each cell as the text ``predict`` labels (None: empty or missing, nothing to label). A token
    task's list of words is joined by spaces, which ``predict`` splits again: a word holding white
    space (or empty) would shift every later tag, so it is refused."""
    texts: list[str | None] = []
    for i, v in enumerate(values, 1):
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


def table_bytes(df, added: dict[str, list], suffix: str) -> bytes:
    """The labelled table in the format of ``suffix``: the input's columns, then ``added``."""
    if suffix == ".parquet":
        buf = io.BytesIO()
        df.assign(**added).to_parquet(buf, index=False)
        return buf.getvalue()
    names = [str(c) for c in df.columns]
    inputs = df.to_dict("records")
    extra = [dict(zip(added, vals)) for vals in zip(*added.values())]
    if suffix == ".csv":
        text = io.StringIO(newline="")
        w = csv.writer(text, lineterminator="\n")
        w.writerow(names + list(added))
        for row, more in zip(inputs, extra):
            w.writerow([_csv_cell(row[c]) for c in df.columns] + [_csv_cell(v) for v in more.values()])
        return text.getvalue().encode("utf-8")
    records = [{str(k): _plain(v) for k, v in row.items() if not _absent(v)} | more for row, more in zip(inputs, extra)]
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    text = "\n".join(lines) + "\n" if suffix == ".jsonl" else "[\n" + ",\n".join(lines) + "\n]\n"
    return text.encode("utf-8")


def _csv_cell(v: Any) -> str:
    if v is None or _absent(v):
        return ""
    return repr(v) if isinstance(v, float) else str(v)


def _absent(v: Any) -> bool:
    """A key a JSON row did not have (pandas fills it with NaN; a JSON null is None)."""
    return isinstance(v, float) and math.isnan(v)


def _plain(v: Any) -> Any:
    """A cell as JSON writes it: the readers' numbers and booleans kept as text go back to JSON's."""
    from ptv2_core.tasks.json_file import JsonBool, JsonNumber

    if isinstance(v, JsonBool):
        return str(v) == "true"
    if isinstance(v, JsonNumber):
        return json.loads(str(v))
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def write_output(data: bytes, out: Path | None, overwrite: bool) -> None:
    """``data`` to ``out`` (a temporary file beside it renamed into place: never half-written), or to
    standard output."""
    if out is None:
        if hasattr(sys.stdout, "buffer"):
            sys.stdout.flush()  # anything printed before goes first
            sys.stdout.buffer.write(data)
        else:  # a text stream (a test's)
            sys.stdout.write(data.decode("utf-8"))
        sys.stdout.flush()
        return
    from ptv2_core.durable import sync

    check_out_file(out, overwrite)  # again: written meanwhile?
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(6)}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)  # as train makes its --out folder's parents
        tmp.write_bytes(data)
        sync(tmp)
        os.replace(tmp, out)
        sync(out.parent)
    except OSError as e:
        raise Ptv2Error(f"--out '{out}' cannot be written: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)


def label(loaded, texts: list[str | None], batch_size: int) -> list[dict | None]:
    """``predict``'s rows for ``texts`` (None for no text), a progress bar on a terminal; a Ctrl-C
    stops it before anything is written."""
    from tqdm.auto import tqdm

    from ptv2_core.errors import Ptv2Interrupted
    from ptv2_core.predict import predict

    todo = [t for t in texts if t is not None]
    try:
        with tqdm(total=len(todo), unit="text", desc="predict", disable=None, file=sys.stderr) as bar:
            done = iter(predict(loaded, todo, batch_size, on_batch=bar.update))
    except KeyboardInterrupt:
        raise Ptv2Interrupted("interrupted before every row was labelled; nothing was written: run the same "
                              "command again (it starts over)") from None
    return [None if t is None else next(done) for t in texts]


def predict_table(loaded, file: str, df, *, text_column: str | None, out: Path | None, overwrite: bool,
                  scores: bool, batch_size: int) -> None:
    """Label the table ``df`` read from ``file`` and write it with its prediction columns."""
    spec = loaded.spec
    column = pick_column(df, text_column, spec.type, spec.text_column, file)
    texts = texts_of(df[column].tolist(), spec.type, column, file)
    suffix = Path(file).suffix.lower()
    added = prediction_columns(label(loaded, texts, batch_size), spec.type, scores, joined=suffix == ".csv")
    write_output(table_bytes(df, added, suffix), out, overwrite)
    if out is not None:
        print(f"{len(texts)} rows labelled ('{column}'); written to {out}", file=sys.stderr)
