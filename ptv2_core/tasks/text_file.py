"""A data file's (or task file's) text, UTF-8 (a byte-order mark dropped); other encodings refused naming the line."""
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
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise Ptv2Error(f"{what} {path} is not UTF-8 text: byte 0x{data[e.start]:02x} on line {line} "
                        "(Windows-1252 or Latin-1?); save it as UTF-8") from None


@contextmanager
def utf8_text(path: Path, newline: str | None, what: str = "data file", shown: str | None = None) -> Iterator[TextIO]:
    """The file's text as a stream read as it is used (a table labelled in chunks is never held
    whole), decoded as ``read_utf8`` decodes it and refused as it refuses it: a UTF-16 or UTF-32 file, a byte
    that is not UTF-8 (named by its line once it is read: the same error ``read_utf8`` gives).
    ``shown``: the file's name in those errors (default: ``path``)."""
    shown = str(path) if shown is None else shown
    with open(path, "rb") as raw:
        if utf := other_encoding(raw.read(4)):
            raise Ptv2Error(f"{what} {shown} is {utf} text; save it as UTF-8")
        raw.seek(0)
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline=newline)  # one leading BOM dropped
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
