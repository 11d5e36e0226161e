"""A JSON or JSON Lines data file → a frame, numbers and booleans kept as the file writes them."""
from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks.text_file import read_utf8


class JsonNumber(str):
    """A JSON number as the file writes it (``2``, ``1.0``, ``1e3``): its text is the label, and
    its type says it was a number (``1`` and ``"1"`` are one label; an error says so)."""


class JsonBool(str):
    """A JSON ``true`` or ``false`` as the file writes it: Python's bool made it the label 'True'
    (``true`` and ``"true"`` are one label; an error says so)."""


def _as_written(value: Any) -> Any:
    """``value`` with its JSON booleans (in lists too) as their JSON text; objects are done by the
    hook that calls this, as json builds them."""
    if isinstance(value, bool):
        return JsonBool("true" if value else "false")
    if isinstance(value, list):
        return [_as_written(v) for v in value]
    return value


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return {key: _as_written(value) for key, value in pairs}


def read_json(path: Path, lines: bool) -> pd.DataFrame:
    """A JSON Lines file (one object a line; blank lines skipped) or a JSON file (a list of
    objects, or columns as pandas writes them), numbers and booleans kept as written: pandas made
    a column of 1.0 and 2 floats, and the label 2 became '2.0'; ``true`` became 'True'. A null
    stays None: a missing value, refused at its row."""
    with io.StringIO(read_utf8(path), newline=None) as f:
        if not lines:
            try:
                doc = _load(f.read())
            except json.JSONDecodeError as e:
                if e.msg == "Extra data" and e.doc[: e.pos].strip().startswith("{"):
                    raise Ptv2Error(f"could not read data file {path}: it holds one JSON object a line (JSON Lines): "
                                    "name it .jsonl") from None
                raise
            shape = (f"could not read data file {path}: it must hold a list of objects (one a row), "
                     "[{\"text\": ..., \"label\": ...}, ...], or columns (pandas' to_json(orient=\"records\") or its "
                     "default)")
            if isinstance(doc, dict):  # columns; not rows by number (orient="index"), nor "split" or "table"
                if not doc or all(str(k).isdigit() for k in doc) or not all(isinstance(v, (dict, list))
                                                                             for v in doc.values()):
                    raise Ptv2Error(shape)
                try:
                    return pd.DataFrame(doc, dtype=object)
                except ValueError:  # columns of different lengths
                    raise Ptv2Error(shape) from None
            if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
                raise Ptv2Error(shape)
            return pd.DataFrame(doc, dtype=object)
        rows = list(jsonl_rows(path, f))
    return pd.DataFrame(rows, dtype=object)


def jsonl_rows(path: Path, f: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The rows of a JSON Lines text (``f``: its lines, as universal newlines cut them), one object
    a line, read as they are used; blank lines skipped; numbers and booleans as ``read_json`` keeps them."""
    for number, line in enumerate(f, 1):
        if not line.strip():
            continue
        try:
            row = _load(line)
        except json.JSONDecodeError as e:
            raise Ptv2Error(f"could not read data file {path}: line {number} is not JSON: {e.msg} (column "
                            f"{e.colno})") from None
        if not isinstance(row, dict):
            raise Ptv2Error(f"could not read data file {path}: line {number} is not a JSON object (one row: "
                            "{\"text\": ..., \"label\": ...})")
        yield row


def _load(text: str) -> Any:
    return json.loads(text, parse_int=JsonNumber, parse_float=JsonNumber, object_pairs_hook=_object)
