"""A data file's (or task file's) text, UTF-8 (a byte-order mark dropped); other encodings refused naming the line."""
from __future__ import annotations

from pathlib import Path

from ptv2_core.errors import Ptv2Error

_BOM = b"\xef\xbb\xbf"


def read_utf8(path: Path, what: str = "data file") -> str:
    """The file's text. A Windows-1252 or Latin-1 file (a spreadsheet's usual CSV) failed with
    Python's "can't decode byte 0xe9 in position 3", a position in a read buffer, not the file."""
    data = Path(path).read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise Ptv2Error(f"{what} {path} is UTF-16 text; save it as UTF-8")
    data = data.removeprefix(_BOM)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise Ptv2Error(f"{what} {path} is not UTF-8 text: byte 0x{data[e.start]:02x} on line {line} "
                        "(Windows-1252 or Latin-1?); save it as UTF-8") from None
