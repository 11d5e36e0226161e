"""User data files (.csv, .jsonl, .json, .parquet) → the normalized train/dev/test DatasetDict."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from datasets import DatasetDict

from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks.csv_file import other_separator, read_csv
from ptv2_core.tasks.json_file import JsonBool, JsonNumber, read_json
from ptv2_core.tasks.label_text import label_text
from ptv2_core.tasks.rows import check_labels, check_token_rows, make_dataset, missing_rows
from ptv2_core.wording import count_of
from ptv2_core.tasks.spec import DATA_SUFFIXES, DataSource, TaskSpec, is_bio_tag
from ptv2_core.tasks.splits import carve


def read_table(path: Path) -> pd.DataFrame:
    """Read one data file; CSV cells stay strings (labels like ``01`` keep their spelling); CSV and
    JSON text must be UTF-8."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in DATA_SUFFIXES:
        raise Ptv2Error(f"data file {path}: unsupported extension {suffix or '(none)'!r}; use one of {', '.join(DATA_SUFFIXES)}")
    if not path.is_file():
        raise Ptv2Error(f"data file not found: {path}")
    try:
        if suffix == ".csv":
            return read_csv(path)
        if suffix in (".jsonl", ".json"):
            return read_json(path, suffix == ".jsonl")
        return pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except Ptv2Error:
        raise
    except Exception as e:  # pandas/pyarrow raise many types for malformed files
        said = " ".join(str(e).split())  # one line: pandas' ParserError ends in a line feed
        raise Ptv2Error(f"could not read data file {path}: {type(e).__name__}: {said}") from None


def _column(df: pd.DataFrame, col: str, path: Path, kind: str, cols: tuple[str, str]) -> list[Any]:
    """The column ``col`` of one file, one of the task's ``cols`` (text_column, label_column)."""
    if col not in df.columns:
        raise Ptv2Error(f"data file {path}: column '{col}' not found; columns found: {_shown_columns(df)}"
                        f"{_missing_hint(df, col, path, kind, cols)}")
    return df[col].tolist()


def _missing_hint(df: pd.DataFrame, col: str, path: Path, kind: str, cols: tuple[str, str]) -> str:
    """What to do about a column the task names that the file lacks: a token task's CSV is the wrong
    format; a name in other case or with spaces is pointed at; a CSV of one column holding a ';'
    was saved with another separator; a CSV with neither column whose first line is data lacks its
    header line; else the task file is to name this file's columns."""
    csv = path.suffix.lower() == ".csv"
    if kind == "token" and csv:
        return "; a token task's rows are lists of words and tags: JSONL, JSON or Parquet, not CSV"
    near = [str(c) for c in df.columns if str(c).strip().casefold() == col.strip().casefold()]
    key = "text_column" if col == cols[0] else "label_column"
    if near:  # "Text", "text " (a space after a comma in the header)
        return f" (is it {near[0]!r}? set {key}: \"{near[0]}\" in the task file)"
    sep = other_separator(df.columns) if csv else None
    if sep:
        return f" ({sep}: ptv2 reads a CSV's fields separated by commas; save it with commas)"
    if any(c in df.columns for c in cols):
        return f" (set {key}: in the task file to a column of this file)"
    if csv and _header_is_data(df):
        return f" (no header line? a CSV's first line names its columns: {cols[0]},{cols[1]})"
    return " (set text_column: and label_column: in the task file to columns of this file)"


def _header_is_data(df: pd.DataFrame) -> bool:
    """A CSV's header line that reads as a data row: a name that is also a value of its own column
    (a label: `greet` over rows of greet and bye), or a name of four words or more (a text)."""
    return any(str(c).strip() in {str(v).strip() for v in df[c]} or len(str(c).split()) >= 4 for c in df.columns)


def _shown_columns(df: pd.DataFrame, most: int = 20) -> str:
    """The file's column names for a message, the first ``most`` of them (a wide file's filled lines)."""
    names = [str(c) for c in df.columns]
    return f"{names[:most]}" + (f" and {len(names) - most} more" if len(names) > most else "")


def _as_list(v: Any, col: str, i: int, path: Path) -> list:
    if isinstance(v, (list, tuple, np.ndarray)):
        return list(v)
    raise Ptv2Error(
        f"data file {path}: row {i + 1} of column '{col}' is {_kind(v)}, not a list; token tasks need list "
        "columns (JSONL/JSON/Parquet), e.g. {\"tokens\": [\"Paris\", \"rocks\"], \"tags\": [\"B-loc\", \"O\"]}"
    )


def _kind(v: Any) -> str:
    """What a cell holds, in words for a message (not the internal JsonBool / JsonNumber)."""
    if isinstance(v, (JsonBool, bool, np.bool_)):
        return "a boolean"
    if isinstance(v, (JsonNumber, int, float, np.number)):
        return "a number"
    return type(v).__name__


def _refuse_nested(values: list, col: str, wanted: str, path: Path) -> None:
    """A sequence row's text or label that is a list or a mapping (JSON/Parquet), refused at its
    row: str() made it a label "['a']" or a text "['hello']"."""
    for i, v in enumerate(values):
        what = ("a list" if isinstance(v, (list, tuple, np.ndarray)) else "a mapping" if isinstance(v, dict)
                else None)
        if what:
            raise Ptv2Error(f"data file {path}: row {i + 1} of column '{col}' holds {what}, not {wanted}")


def read_rows(path: Path, kind: str, text_col: str, label_col: str,
              df: pd.DataFrame | None = None, tag_names: tuple[str, ...] | None = None) -> tuple[list, list]:
    """(texts or word lists, label strings or tag lists) of one file (``df``: it, read already),
    checked for missing values. A token task's tags that are numbers are ids into ``tag_names``
    (its label list, as Hugging Face data sets save ``ner_tags``) when it is given."""
    df = read_table(path) if df is None else df
    if len(df) == 0:
        raise Ptv2Error(f"data file {path}: 0 rows (empty data)")
    cols = (text_col, label_col)
    xs, ys = _column(df, text_col, path, kind, cols), _column(df, label_col, path, kind, cols)
    if kind == "sequence":
        _refuse_nested(xs, text_col, "one text per row", path)
        _refuse_nested(ys, label_col, "one label per row (multi-label rows are not supported)", path)
        for col, vals in ((text_col, xs), (label_col, ys)):
            bad = missing_rows(vals)
            if bad:
                raise Ptv2Error(f"data file {path}: {count_of(len(bad), 'row')} with an empty '{col}' (first at row "
                                f"{bad[0] + 1})")
        return [str(x) for x in xs], [label_text(y).strip() for y in ys]  # "greet " (a spreadsheet's) is "greet"
    words = [_as_list(v, text_col, i, path) for i, v in enumerate(xs)]
    tags = [_as_list(v, label_col, i, path) for i, v in enumerate(ys)]
    check_token_rows(words, tags, f"data file {path}", (text_col, label_col))  # row numbers still the file's
    if tag_names is not None:
        tags = [[_tag_name(t, tag_names, label_col, i, path) for t in ts] for i, ts in enumerate(tags)]
    return [[label_text(w) for w in ws] for ws in words], [[label_text(t).strip() for t in ts] for ts in tags]


def _is_number(v: Any) -> bool:
    return isinstance(v, (JsonNumber, int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _tag_name(tag: Any, names: tuple[str, ...], col: str, i: int, path: Path) -> Any:
    """A tag id (a number) as the name it has in ``names``; any other tag as it is."""
    if not _is_number(tag):
        return tag
    try:
        index = int(tag)
    except ValueError:  # 1.0, 1e3
        index = -1
    if not 0 <= index < len(names):
        raise Ptv2Error(f"data file {path}: row {i + 1} of column '{col}' holds the tag id {tag}, but the label list "
                        f"has {len(names)} tags (ids 0 to {len(names) - 1})")
    return names[index]


def _check_bio(ys: list[list[str]], raw: list, col: str, path: Path) -> None:
    """Tags inferred from a train file: each is BIO, and one at least is an entity's; refused
    naming the row (TaskSpec's own check names neither file nor row)."""
    for i, tags in enumerate(ys):
        for tag, value in zip(tags, raw[i]):
            if is_bio_tag(tag):
                continue
            hint = (": tags are numbers (tag ids?): write each tag's name, \"B-per\", or give labels: in the task "
                    "file in id order" if _is_number(value)
                    else ": BIOES or BILOU tags? write S- and U- as B-, E- and L- as I-"
                    if tag[:2] in ("S-", "E-", "U-", "L-") else _almost_bio(tag))
            raise Ptv2Error(f"data file {path}: row {i + 1} of column '{col}' holds the tag {tag!r}, which is not BIO "
                            f"(\"O\", \"B-<type>\", \"I-<type>\"){hint}")
    if all(t == "O" for tags in ys for t in tags):
        raise Ptv2Error(f"data file {path}: column '{col}' holds only \"O\" in all {count_of(len(ys), 'row')}; a token "
                        "task needs at least one entity tag (\"B-<type>\")")


def _almost_bio(tag: str) -> str:
    """What to write for a tag that is almost BIO: lower case, an underscore or a space for the dash, B or I
    with no type, or a bare type (IO tags)."""
    if tag == "o" or tag[:2] in ("b-", "i-"):
        return f": write B- and I- in capitals, and O: {'O' if tag == 'o' else tag[0].upper() + tag[1:]!r}"
    if tag[:2].upper() in ("B_", "I_", "B ", "I ") and tag[2:].strip():
        return f": write a dash after B or I: {tag[0].upper() + '-' + tag[2:].strip()!r}"
    if tag.upper() in ("B", "I"):
        return ": B and I need a type after a dash: B-<type>, I-<type> (B-PER)"
    if tag and "-" not in tag and "_" not in tag and not tag.isdigit() and not any(c.isspace() for c in tag):
        return (f": a type without B- or I- (IO tags?): write an entity's first word's tag B-{tag}, the "
                f"others' I-{tag}")
    return ""


def infer_labels(path: Path, kind: str, text_col: str, label_col: str) -> list[str]:
    """Label list from a train file: sorted distinct labels; for tags "O" first, then sorted."""
    df = read_table(path)
    _, ys = read_rows(path, kind, text_col, label_col, df)
    if kind == "sequence":
        labels = sorted(set(ys))
        if len(labels) == 1:
            raw = df[label_col].tolist()
            literal = next((v for v in raw if isinstance(v, (JsonNumber, JsonBool))), None)
            both = literal is not None and any(isinstance(v, str) and not isinstance(v, (JsonNumber, JsonBool))
                                               for v in raw)
            what = "number" if isinstance(literal, JsonNumber) else "boolean"
            why = (f" (labels are text: the {what} {labels[0]} and the text \"{labels[0]}\" are one label)"
                   if both else "")
            raise Ptv2Error(f"data file {path}: column '{label_col}' holds one label, {labels[0]!r}, in all "
                            f"{count_of(len(ys), 'row')}; a task needs at least 2{why}")
        if len(ys) >= 10 and len(labels) == len(ys):  # text_column and label_column swapped, or an id column
            raise Ptv2Error(f"data file {path}: column '{label_col}' holds a different label in each of its "
                            f"{len(ys)} rows, so no label has two examples to learn from: is it the text column? (the "
                            f"task file's text_column: is {text_col!r}, label_column: {label_col!r}); if each label is "
                            "meant to be different, list them under labels: in the task file")
        return labels
    _check_bio(ys, df[label_col].tolist(), label_col, path)
    return ["O", *sorted({t for tags in ys for t in tags} - {"O"})]


def load_source(spec: TaskSpec, source: DataSource, seed: int = 0) -> DatasetDict:
    """Read the given files; carve the missing dev/test from train (seeded, stratified, duplicates kept together)."""
    rows = {
        split: read_rows(p, spec.type, spec.text_column, spec.label_column,
                         tag_names=spec.labels if spec.type == "token" else None)
        for split, p in source.splits().items()
    }
    where = {split: f"{p} ({split})" for split, p in source.splits().items()}
    for split, (_, ys) in rows.items():  # before carving: row numbers are still the file's
        check_labels(spec, ys, f"data file {where[split]}", source.labels_inferred)
    missing = [s for s in ("dev", "test") if s not in rows]
    if missing:
        try:
            carved = carve(spec.type, *rows["train"], seed, missing)
        except Ptv2Error as e:
            raise Ptv2Error(f"data file {source.train}: {e}; add rows or give {' and '.join('data.' + s for s in missing)}") from None
        rows.update(carved)
        where.update({s: f"{s} split carved from {source.train}" for s in missing})
    return DatasetDict({s: make_dataset(spec, *rows[s], where[s]) for s in ("train", "dev", "test")})
