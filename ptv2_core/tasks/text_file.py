"""A data file's (or task file's) text, UTF-8 (a byte-order mark dropped); other encodings refused naming the line.

A NUL byte is refused too, naming its line: UTF-16 without a byte order mark reads as valid UTF-8
with a NUL between characters, and its texts were labelled (or trained on) NULs and all."""
from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from ptv2_core.errors import Ptv2Error

_BOM = b"\xef\xbb\xbf"
# the other Unicode encodings' byte order marks, UTF-32's first: UTF-32 LE's begins with UTF-16 LE's
OTHER_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
              (b"\xfe\xff", "UTF-16"))
# what to do about a NUL byte in a text file (or a column name): the one wording, here and in the CLI
NUL_HINT = "UTF-16 without a byte order mark? save it as UTF-8"


def other_encoding(head: bytes) -> str | None:
    """The encoding a byte order mark at the start of ``head`` names (not UTF-8's), or None."""
    return next((name for bom, name in OTHER_BOMS if head.startswith(bom)), None)


def read_utf8(path: Path, what: str = "data file") -> str:
    """The file's text. A Windows-1252 or Latin-1 file (a spreadsheet's usual CSV) failed with
    Python's "can't decode byte 0xe9 in position 3", a position in a read buffer, not the file."""
    data = Path(path).read_bytes()
    if utf := other_encoding(data[:4]):
        raise Ptv2Error(f"{what} {path} is {utf} text; save it as UTF-8")
    data = data.removeprefix(_BOM)
    if (nul := data.find(b"\x00")) >= 0:  # before decoding: UTF-16's é (e9 00) is not Latin-1's
        raise Ptv2Error(nul_error(f"{what} {path}", data.count(b"\n", 0, nul) + 1))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise Ptv2Error(f"{what} {path} is not UTF-8 text: byte 0x{data[e.start]:02x} on line {line} "
                        "(Windows-1252 or Latin-1?); save it as UTF-8") from None


def nul_error(shown: str, line: int) -> str:
    """The error for a NUL byte on ``line`` of the file ``shown`` (with what it is: 'data file x.csv')."""
    return f"{shown} holds a NUL byte on line {line}: {NUL_HINT}"


class _NulChecked(io.FileIO):
    """A file whose reads refuse a NUL byte, naming its line (counted only once one is found)."""

    def __init__(self, path: Path, shown: str) -> None:
        super().__init__(path, "rb")
        self.shown = shown

    def readinto(self, b) -> int | None:
        start = self.tell()
        n = super().readinto(b)
        if n and (at := memoryview(b)[:n].tobytes().find(b"\x00")) >= 0:
            raise Ptv2Error(nul_error(self.shown, _lines_before(self.name, start + at) + 1))
        return n


def _lines_before(path, end: int) -> int:
    """The line feeds in the first ``end`` bytes of ``path``, counted a block at a time."""
    count = 0
    with open(path, "rb") as f:
        while end > 0 and (block := f.read(min(end, 1 << 20))):
            count += block.count(b"\n")
            end -= len(block)
    return count


@contextmanager
def utf8_text(path: Path, newline: str | None, what: str = "data file", shown: str | None = None) -> Iterator[TextIO]:
    """The file's text as a stream read as it is used (a table labelled in chunks is never held
    whole), decoded as ``read_utf8`` decodes it and refused as it refuses it: a UTF-16 or UTF-32 file, a byte
    that is not UTF-8 or a NUL byte (named by its line once it is read: the same error ``read_utf8`` gives).
    ``shown``: the file's name in those errors (default: ``path``)."""
    shown = str(path) if shown is None else shown
    with _NulChecked(path, f"{what} {shown}") as raw:
        if utf := other_encoding(raw.read(4)):
            raise Ptv2Error(f"{what} {shown} is {utf} text; save it as UTF-8")
        raw.seek(0)
        # one leading BOM dropped
        text = io.TextIOWrapper(io.BufferedReader(raw), encoding="utf-8-sig", newline=newline)
        try:
            yield text
        except UnicodeDecodeError:
            _not_utf8(path, what, shown)
            raise
        finally:
            text.detach()


def _not_utf8(path: Path, what: str, shown: str) -> None:
    """Raise ``read_utf8``'s error for the first byte of ``path`` that is not UTF-8, reading it a
    line at a time (a multi-byte character never spans a line feed)."""
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if number == 1:
                line = line.removeprefix(_BOM)
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as e:
                raise Ptv2Error(f"{what} {shown} is not UTF-8 text: byte 0x{line[e.start]:02x} on line {number} "
                                "(Windows-1252 or Latin-1?); save it as UTF-8") from None
