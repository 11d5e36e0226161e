"""The input lines of ``ptv2 predict --file``: a UTF-8 file, or standard input ('-'), or a pipe.

A UTF-8 byte order mark at the start of the input is dropped (it is not part of the first text).
Lines end at a line feed only (a trailing carriage return is dropped): a form feed or U+2028 in a
text stays in that text, so the output has one line per ``wc -l`` line and ``tail -n +N`` finds
the lines after the N-1 labelled ones. (``str.splitlines`` also cuts at those characters, which
shifted every later label onto the wrong line.)

A file is read twice, a chunk at a time: once to check and count its lines before the model
loads, then to label them. Standard input is labelled as it comes: a chunk is the lines that have
arrived when the pipe runs dry (at most ``chunk``), so a slow producer's lines are answered at
once, a fast one's in full chunks. A --file that is not a regular file (a FIFO, ``<(cmd)``'s
/dev/fd/N, a device) is read as standard input is: it can be read only once (read twice, it was
empty the second time, and nothing was labelled). None holds more than a chunk in memory.
"""
from __future__ import annotations

import os
import select
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks.text_file import nul_error, other_encoding

_BOM = b"\xef\xbb\xbf"


@dataclass
class InputLines:
    """``file`` as chunks of lines: ``first`` read already (an empty input fails before the model
    loads), ``rest`` read on demand. ``total``: the line count of a file, None for standard input
    or a pipe (``streamed``)."""

    file: str
    first: list[str]
    rest: Iterator[list[str]]
    total: int | None

    @property
    def name(self) -> str:
        return _name(self.file)

    def chunks(self) -> Iterator[list[str]]:
        yield self.first
        yield from self.rest


def streamed(file: str) -> bool:
    """Whether ``file`` is labelled as it comes, without a count: standard input ('-'), or a path
    that is not a regular file or a folder (a FIFO, /dev/fd/N, a device), which reads only once."""
    if file == "-":
        return True
    try:
        mode = os.stat(file).st_mode  # does not open it: a FIFO without a writer does not block here
    except OSError:  # missing, unreadable: told when it is opened
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def open_lines(file: str, chunk: int) -> InputLines:
    """The lines of ``file`` ('-': standard input) in chunks of ``chunk`` lines."""
    name = _name(file)
    if file == "-":
        if sys.stdin is None:  # started with standard input closed (<&-)
            raise Ptv2Error("standard input is closed: nothing to label")
        it = _arrived(sys.stdin.fileno(), chunk, name)
        first, total = next(it, []), None
    elif streamed(file):
        it = _pipe_lines(file, chunk, name)
        first, total = next(it, []), None
    else:
        total = sum(1 for _ in _decoded(_file_lines(file), name))  # every line checked before the model loads
        it = _batched(_decoded(_file_lines(file), name), chunk)
        first = next(it, [])
    if not first:
        raise Ptv2Error(f"{name} holds no lines to label")
    return InputLines(file, first, it, total)


def _name(file: str) -> str:
    return "standard input" if file == "-" else f"--file '{file}'"  # `-` may be predict's text argument


def _pipe_lines(file: str, size: int, name: str) -> Iterator[list[str]]:
    """A FIFO's (or device's) lines as standard input's are read, from one opening of it."""
    try:
        fd = os.open(file, os.O_RDONLY)  # a FIFO: waits for a writer, as standard input waits for lines
    except OSError as e:
        raise Ptv2Error(f"cannot read {name}: {e.strerror or e}") from None
    try:
        yield from _arrived(fd, size, name)
    finally:
        os.close(fd)


def _file_lines(file: str) -> Iterator[bytes]:
    """The file's raw lines, read as they are used."""
    try:
        with open(file, "rb") as f:
            for i, line in enumerate(f):  # a binary file's lines end at b"\n" only
                if i or line != _BOM:  # a byte order mark alone is an empty file, not one empty line
                    yield line
    except FileNotFoundError:
        raise Ptv2Error(f"--file '{file}' does not exist") from None
    except IsADirectoryError:
        raise Ptv2Error(f"--file '{file}' is a folder, not a text file") from None
    except OSError as e:
        raise Ptv2Error(f"cannot read --file '{file}': {e.strerror or e}") from None


def _batched(lines: Iterator[str], size: int) -> Iterator[list[str]]:
    while batch := list(islice(lines, size)):
        yield batch


def _decoded(raw: Iterable[bytes], name: str, first: int = 1) -> Iterator[str]:
    """Each raw line (numbered from ``first``) as text without its line end; a line that is not
    UTF-8, or holds a NUL byte (UTF-16 without a byte order mark is valid UTF-8 so), is an error naming it."""
    for number, line in enumerate(raw, first):
        if b"\x00" in line and not (number == 1 and other_encoding(line)):  # before decoding: UTF-16's é is e9 00
            raise Ptv2Error(nul_error(name, number))
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            utf = number == 1 and other_encoding(line)
            if utf:  # a byte order mark says which: Notepad's "Unicode" is UTF-16
                raise Ptv2Error(f"{name} is {utf} text (its byte order mark says so); save it as UTF-8") from None
            raise Ptv2Error(f"{name} is not UTF-8 text: line {number}, byte {e.start + 1}: {e.reason} (Windows-1252 "
                            "or Latin-1?); save it as UTF-8") from None
        if number == 1:  # a byte order mark (Windows editors write one) opens the input, not its first text
            text = text.removeprefix("\ufeff")
        yield text.removesuffix("\n").removesuffix("\r")


def _waiting(fd: int) -> bool:
    """Whether more is waiting to be read on ``fd`` now (never known on Windows, whose select
    takes sockets only: a chunk is then what one read gave)."""
    try:
        return bool(select.select([fd], [], [], 0)[0])
    except (OSError, ValueError):
        return False


def _arrived(fd: int, size: int, name: str) -> Iterator[list[str]]:
    """The lines read from ``fd``, in lists of up to ``size``: a list ends when it is full or when
    nothing more is waiting in the pipe. The lines before one that is not UTF-8 come first."""
    pending, batch, number = b"", [], 0
    while True:
        try:
            data = os.read(fd, 1 << 16)
        except OSError as e:  # e.g. a descriptor closed under us
            raise Ptv2Error(f"cannot read {name}: {e.strerror or e}") from None
        if data:
            *raw, pending = (pending + data).split(b"\n")
        else:  # the end: a last line without its line feed counts too (not a byte order mark alone)
            raw, pending = ([pending] if pending and (number or pending != _BOM) else []), b""
        try:
            for text in _decoded(raw, name, first=number + 1):
                number += 1
                batch.append(text)
                if len(batch) == size:
                    yield batch
                    batch = []
        except Ptv2Error:
            if batch:
                yield batch
            raise
        if batch and (not data or not _waiting(fd)):
            yield batch
            batch = []
        if not data:
            return
