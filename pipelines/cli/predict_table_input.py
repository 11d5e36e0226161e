"""Reading and checking a table ``ptv2 predict --file`` labels (.csv, .jsonl, .json, .parquet),
all before the model loads: which --file is a table, the options that go with one, its rows read
with the task data readers (``ptv2_core.tasks.files.read_table``: quoted CSV fields with commas and
line feeds, JSON numbers as written, so a table is read here as training reads it), its text column
picked and every cell of it checked to be a text.
"""
from __future__ import annotations

import csv
import math
from collections import Counter
from pathlib import Path

import numpy as np

from pipelines.cli.predict_table_output import check_out_file
from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks.spec import DATA_SUFFIXES

# tables ptv2 does not read: labelled line by line, each of their lines (header included) was a "text"
NOT_READ = (".tsv", ".tab", ".psv", ".xlsx", ".xls", ".ods", ".ndjson", ".feather", ".arrow", ".orc", ".avro")
PREDICTED = {"sequence": ("pred_label", "pred_score"), "token": ("pred_tags", "pred_scores")}
CHUNK = 4096  # rows checked, labelled and written at a time, as the plain-text path labels lines


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
