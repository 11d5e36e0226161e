"""The input lines of ``ptv2 predict --file``: a UTF-8 file, or standard input ('-').

Lines end at a line feed only (a trailing carriage return is dropped): a form feed or U+2028 in a
text stays in that text, so the output has one line per ``wc -l`` line and ``tail -n +N`` finds
the lines after the N-1 labelled ones. (``str.splitlines`` also cuts at those characters, which
shifted every later label onto the wrong line.) A file is read and checked whole before the model
loads; standard input is read a chunk at a time, so a producer's lines are labelled while it runs,
in memory that does not grow with the input.
"""
from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ptv2_core.errors import Ptv2Error


@dataclass
class InputLines:
    """``file`` as chunks of lines: ``first`` read already (an empty input fails before the model
    loads), ``rest`` read on demand. ``total``: the line count of a file, None for standard input."""

    file: str
    first: list[str]
    rest: Iterator[list[str]]
    total: int | None

    def chunks(self) -> Iterator[list[str]]:
        yield self.first
        yield from self.rest


def open_lines(file: str, chunk: int) -> InputLines:
    """The lines of ``file`` ('-': standard input) in chunks of ``chunk`` lines."""
    if file == "-":
        it = _chunked(_decoded(sys.stdin.buffer, "standard input"), chunk)
        first, total = next(it, []), None
    else:
        lines = _file_lines(file)
        it = (lines[i:i + chunk] for i in range(chunk, len(lines), chunk))
        first, total = lines[:chunk], len(lines)
    if not first:
        raise Ptv2Error(f"--file '{file}' holds no lines to label")
    return InputLines(file, first, it, total)


def _file_lines(file: str) -> list[str]:
    try:
        data = Path(file).read_bytes()
    except FileNotFoundError:
        raise Ptv2Error(f"--file '{file}' does not exist") from None
    except IsADirectoryError:
        raise Ptv2Error(f"--file '{file}' is a folder, not a text file") from None
    except OSError as e:
        raise Ptv2Error(f"cannot read --file '{file}': {e.strerror or e}") from None
    lines = data.split(b"\n")
    return list(_decoded(lines[:-1] if lines[-1] == b"" else lines, f"--file '{file}'"))


def _decoded(raw: Iterable[bytes], name: str) -> Iterator[str]:
    """Each raw line as text without its line end; a line that is not UTF-8 is an error naming it."""
    for number, line in enumerate(raw, 1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise Ptv2Error(f"{name} is not UTF-8 text: line {number}, byte {e.start + 1}: {e.reason}") from None
        yield text.removesuffix("\n").removesuffix("\r")


def _chunked(lines: Iterator[str], size: int) -> Iterator[list[str]]:
    """Lists of up to ``size`` lines; the lines read before an error are yielded before it is raised."""
    batch: list[str] = []
    try:
        for line in lines:
            batch.append(line)
            if len(batch) == size:
                yield batch
                batch = []
    except Ptv2Error:
        if batch:
            yield batch
        raise
    if batch:
        yield batch
