"""Reading and checking a table ``ptv2 predict --file`` labels (.csv, .jsonl, .json, .parquet),
all before the model loads: which --file is a table (its extension, or ``--format``: standard input
or a pipe is text lines unless ``--format`` says it is a table), the options that go with one, its
rows read with the task data readers (``predict_table_source``: quoted CSV fields with commas and
line feeds, JSON numbers as written, so a table is read here as training reads it; a CSV or JSON
Lines table a chunk at a time), its text column picked. Every cell of that column is checked to be a
text (``texts_of``) as its chunk is labelled (``predict_table``), not in a pass of its own.
"""
from __future__ import annotations

import csv
import math
import shlex
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from pipelines.cli.predict_table_output import check_out_file
from pipelines.cli.predict_table_source import Table, local_copy, open_table
from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks.spec import DATA_SUFFIXES

# tables ptv2 does not read: labelled line by line, each of their lines (header included) was a "text"
NOT_READ = (".tsv", ".tab", ".psv", ".xlsx", ".xls", ".ods", ".ndjson", ".feather", ".arrow", ".orc", ".avro")
PREDICTED = {"sequence": ("pred_label", "pred_score"), "token": ("pred_tags", "pred_scores")}
CHUNK = 4096  # rows checked, labelled and written at a time, as the plain-text path labels lines


FORMATS = ("text", "csv", "jsonl", "json", "parquet")


def table_format(file: str | None, fmt: str | None) -> str | None:
    """The table format ``--file`` is read in (``.csv`` ...), or None for text lines: ``--format``,
    else its extension (standard input and any other extension: text lines). A ``--format`` that
    its extension contradicts is refused, and so is a table ptv2 does not read (unless ``--format
    text``: its lines labelled)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise Ptv2Error(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")
        if file is None:
            raise Ptv2Error("--format applies to --file (a file, or '-' for standard input), not to texts on the "
                            "command line")
    if file is None:
        return None
    suffix = Path(file).suffix.lower() if file != "-" else ""
    if suffix in DATA_SUFFIXES and fmt is not None and f".{fmt}" != suffix:
        raise Ptv2Error(f"--format {fmt} does not match --file '{file}' ({suffix}): leave --format out, or give "
                        f"--format {suffix[1:]}")
    if suffix in NOT_READ and fmt != "text":
        raise Ptv2Error(f"--file '{file}' looks like a table ptv2 does not read ({suffix}): save it as "
                        f"{', '.join(DATA_SUFFIXES)}, or pass --format text to label each of its lines as a text")
    if fmt is not None:
        return None if fmt == "text" else f".{fmt}"
    return suffix if suffix in DATA_SUFFIXES else None


def check_options(suffix: str | None, out: Path | None, overwrite: bool, as_json: bool,
                  text_column: str | None) -> None:
    """The options that go with a table (``suffix``: its format), and only with one; ``--out``
    checked before anything loads."""
    if suffix is None:
        for given, flag in ((out is not None, "--out"), (overwrite, "--overwrite"),
                            (text_column is not None, "--text-column")):
            if given:
                raise Ptv2Error(f"{flag} applies to a table --file ({', '.join(DATA_SUFFIXES)}, or --format); texts "
                                "and text lines are labelled on standard output")
        return
    if as_json:
        raise Ptv2Error(f"--json applies to texts and text lines; a table --file is written back as "
                        f"{suffix} with its prediction columns added")
    if out is None:
        if suffix == ".parquet":
            raise Ptv2Error("a Parquet --file is written to --out PATH only (not to standard output)")
        return
    if out.suffix.lower() != suffix:
        raise Ptv2Error(f"--out '{out}' must end in {suffix}: the labelled table is written in the format of --file")
    check_out_file(out, overwrite)


@contextmanager
def read_input(file: str, suffix: str, text_column: str | None) -> Iterator[Table]:
    """The table (``predict_table_source``: a CSV or JSON Lines one read a chunk at a time), read
    through once; an empty one, or one without ``--text-column``, refused before the model loads.
    Standard input or a FIFO is copied to a temporary file first, removed when the block ends."""
    with local_copy(file, suffix) as path:
        table = open_table(path, suffix, "'-' (standard input)" if file == "-" else file)
        if table.rows == 0:
            raise Ptv2Error(f"{input_name(file)} holds no rows to label")
        if suffix == ".csv":
            header = _csv_header(path, file)  # written back as it was (read_table names a blank one 'Unnamed: i')
            if len(header) == len(table.columns):
                table.attrs["header"] = header
        if text_column is not None and text_column not in table.columns:
            _no_column(table.columns, [text_column], "", file, suffix)
        yield table


def input_name(file: str) -> str:
    return "standard input" if file == "-" else f"--file '{file}'"


def _csv_header(path: Path, file: str) -> list[str]:
    """A CSV's header fields as written; a name given twice is refused: read_table renamed the
    second ``a`` to ``a.1``, written back so, and which one is the text column is anyone's guess."""
    with open(path, encoding="utf-8-sig", newline="") as f:  # read as UTF-8 already
        header = next((fields for fields in csv.reader(f) if any(x.strip() for x in fields)), [])
    twice = [name for name, n in Counter(h for h in header if h.strip()).items() if n > 1]
    if twice:
        raise Ptv2Error(f"{input_name(file)} repeats column names: {', '.join(repr(n) for n in twice)}; give each "
                        "column of its header line its own name")
    return header


def check_early(table: Table, file: str, wanted: str | None, config: dict) -> None:
    """An adapter folder's table checked before its model loads (no pass over the rows: the scan
    found its columns): its prediction columns new and its text column there (the task's, from the
    adapter's config). Its cells are checked as they are labelled. A config that does not read is
    left for loading the adapter to report."""
    from ptv2_core.tasks.spec import TaskSpec

    try:
        spec = TaskSpec.from_dict(config["task"])
    except (TypeError, KeyError, ValueError):
        return
    pick_column(table.columns, wanted, spec.type, spec.text_column, file, table.suffix)


def pick_column(names: list[str], wanted: str | None, kind: str, task_column: str, file: str, suffix: str) -> str:
    """``--text-column``, else the adapter's task's text column, else ``text`` (a token task: ``tokens``
    too); a table without it is refused, naming its columns. Its prediction columns must be new."""
    taken = [c for c in PREDICTED[kind] if c in names]
    if taken:
        raise Ptv2Error(f"{input_name(file)} has a column '{taken[0]}' already, where ptv2 writes its predictions: "
                        "rename that column")
    tried = [wanted] if wanted is not None else list(dict.fromkeys([task_column, "text", *(["tokens"] if
                                                                                           kind == "token" else [])]))
    found = next((c for c in tried if c in names), None)
    if found is None:
        _no_column(names, tried, "" if wanted is not None else " (the adapter's task's text column, or the default)",
                   file, suffix)
    return found


def _no_column(names: list[str], tried: list[str], why: str, file: str, suffix: str) -> None:
    from ptv2_core.tasks.csv_file import other_separator
    from ptv2_core.tasks.text_file import NUL_HINT

    nul = any("\x00" in n for n in names)  # UTF-16 read as UTF-8: every other byte a NUL
    names = [n.replace("\x00", "") for n in names]  # never printed raw
    shown = names[:20] + ([f"... {len(names) - 20} more"] if len(names) > 20 else [])
    sep = other_separator(names) if suffix == ".csv" else None
    wanted = {t.strip().casefold() for t in tried}
    near = next((n for n in names if n.strip().casefold() in wanted), None)  # `Text`, `text ` (a spreadsheet's)
    fix = f"its column names hold NUL bytes (shown without them): {NUL_HINT}" if nul else \
        f"{sep}: ptv2 reads a CSV's fields separated by commas; save it with commas" if sep else \
        f"{near!r} differs only in case or spaces: pass --text-column {shlex.quote(near)}" if near is not None else \
        "pass --text-column NAME"
    raise Ptv2Error(f"{input_name(file)} has no column {' or '.join(repr(c) for c in tried)}{why}; its columns: "
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
                raise Ptv2Error(f"{input_name(file)}: row {i} of column '{column}' holds a list, not one text")
            words = [str(w) for w in v]
            if " ".join(words).split() != words:
                raise Ptv2Error(f"{input_name(file)}: row {i} of column '{column}' holds an empty word or one with white "
                                "space in it; predict splits texts into words at white space")
            v = " ".join(words)
        elif isinstance(v, dict):
            raise Ptv2Error(f"{input_name(file)}: row {i} of column '{column}' holds a mapping, not a text")
        text = str(v)
        texts.append(text if text.strip() else None)
    return texts
