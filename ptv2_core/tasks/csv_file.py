"""A CSV data file → a frame of strings, every row as long as the header, checked row by row.

pandas took a first data row one field longer than the header for an index column (a text with an
unquoted comma: 'hello' became the index, ' world' the text), and, when every row was one longer,
dropped the first field of every row without a word. Here a row of another length is refused
naming its row and line (a shorter one's missing cells are empty, as before), unless its extra
fields are all empty (``hello,greet,``: a spreadsheet's empty columns), which are dropped; rows of
nothing but separators and blanks (a spreadsheet's empty rows) are skipped like blank lines and not
counted. Fields are separated by commas only: a file separated by semicolons (European Excel), tabs
or bars is refused saying so (``other_separator``), not guessed at.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks.text_file import read_utf8
from ptv2_core.wording import count_of


# The csv module stops at 131,072 characters a field by default (pandas had no such limit): a
# whole document as one text passes it. The limit is the process's; it is only ever raised here.
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))


def read_csv(path: Path) -> pd.DataFrame:
    """Cells as strings (labels like ``01`` keep their spelling); header names as pandas gives them
    (an empty one ``Unnamed: i``, a repeated one ``name.1``)."""
    text = read_utf8(path)
    try:
        return _frame(path, text, strict=True)
    except csv.Error:  # an unclosed quote (named by _frame); else a stray quote, read leniently as pandas did
        return _frame(path, text, strict=False)


def _frame(path: Path, text: str, strict: bool) -> pd.DataFrame:
    records = csv_records(path, io.StringIO(text, newline=""), strict)
    header = next(records, None)
    if header is None:
        return pd.DataFrame()
    return pd.DataFrame(list(records), columns=header, dtype=object)


def csv_records(path: Path, f: Iterable[str], strict: bool) -> Iterator[list[str]]:
    """The header's names (as pandas gives them), then each row as long as the header, read from
    ``f`` (a text stream opened with ``newline=""``) as they are used; nothing for a file of no
    header. ``strict``: a stray quote is a csv.Error (``read_csv`` reads the file again leniently)."""
    reader = csv.reader(f, strict=strict)
    header: list[str] | None = None
    count = 0
    line = 1  # where the next record starts
    try:
        for fields in reader:
            start, line = line, reader.line_num + 1
            if not any(f.strip() for f in fields):
                continue
            if header is None:
                header = _names(fields)
                yield header
                continue
            count += 1
            if len(fields) <= len(header):  # a short row's missing cells are empty, as pandas read them
                yield fields + [""] * (len(header) - len(fields))
            elif not any(f.strip() for f in fields[len(header):]):  # `hello,greet,`: empty columns after the data
                yield fields[:len(header)]
            else:
                sep = other_separator(header)
                why = (f"{sep}: ptv2 reads a CSV's fields separated by commas; save it with commas" if sep else
                       "a text that holds a comma must be in double quotes, as in \"hello, world\"")
                raise Ptv2Error(f"data file {path}: row {count} (line {start}) has "
                                f"{count_of(len(fields), 'field')} but the header has {len(header)} "
                                f"({', '.join(repr(h) for h in header)}): {why}")
    except csv.Error as e:
        if strict and "unexpected end of data" in str(e):
            raise Ptv2Error(f"data file {path}: row {count + 1} (line {line}) opens a double quote that "
                            "is never closed") from None
        raise


def other_separator(names) -> str | None:
    """'its fields look separated by ';'' when a header of one column holds a semicolon, a tab or a
    bar (a file saved with another separator than the comma), else None."""
    names = [str(n) for n in names]
    if len(names) != 1:
        return None
    sep = next((c for c in (";", "\t", "|") if c in names[0]), None)
    return None if sep is None else f"its fields look separated by {'a tab' if sep == chr(9) else repr(sep)}"


def _names(fields: list[str]) -> list[str]:
    names: list[str] = []
    for i, f in enumerate(fields):
        name = f if f.strip() else f"Unnamed: {i}"
        base, n = name, 0
        while name in names:
            n += 1
            name = f"{base}.{n}"
        names.append(name)
    return names
