"""A reader that stops early: ``ptv2 predict --file big.txt | head -1``, ``ptv2 --help | head``.

Once ``head`` has its lines it exits, and ptv2's next write to the pipe fails (EPIPE: Python
ignores SIGPIPE and raises BrokenPipeError). Typer turned that into a silent exit status 1, the
status of an error; output still buffered then failed again as the interpreter ended, printing
``Exception ignored … BrokenPipeError`` to standard error.

``quiet_exit`` ends the command instead as the Unix tools a pipeline is built from do (cat, grep,
sort, seq, git): they die of SIGPIPE, silently, and the shell reports 128 + 13 = 141. ptv2 exits
with 141 itself (as it exits 130 and 143 for SIGINT and SIGTERM, not by the signal), prints
nothing, and points the dead stream at /dev/null so nothing more is tried on it. So ``set -o
pipefail`` scripts and ``${PIPESTATUS[0]}`` see ptv2 as they see ``yes | head -1``'s yes: stopped
by its reader, its work cut short (not 0: predict did not label the rest), and not 1 (an error).

Only standard output or standard error whose reader is gone counts (``poll`` reports POLLERR on
the write end of a pipe without readers): a BrokenPipeError from anything else (a socket to an
MLflow server, a child process's pipe) is a real error and goes on as one. Python's own advice
(the ``signal`` module's note on SIGPIPE) is this same catch and redirect, rather than SIGPIPE's
default action, which would also kill the process on any socket closed under it.
"""
from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import sys
from collections.abc import Iterator

# 141: what a shell reports for a writer SIGPIPE killed (Windows has no SIGPIPE: 13 is its number elsewhere)
EXIT_STATUS = 128 + getattr(signal, "SIGPIPE", 13)


def _gone(fd: int) -> bool:
    """Whether ``fd`` is a pipe (or socket) whose reader has gone (never, where there is no
    ``select.poll``: Windows; a broken pipe there is the error it is)."""
    if not hasattr(select, "poll"):
        return False
    try:
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (OSError, ValueError):
        return False


def _is_epipe(e: BaseException | None) -> bool:
    return isinstance(e, OSError) and e.errno == errno.EPIPE


def _identity(fd: int) -> tuple[int, int] | None:
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _fileno(stream) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # None, a StringIO, closed
        return None


def _silence_gone_streams(before: tuple[int, int] | None, by_rich: bool = False) -> bool:
    """Point standard output and standard error at /dev/null where their reader has gone; whether
    either had. ``before``: standard output's file as the command started; rich (typer's help)
    points it at /dev/null itself on a broken pipe, then exits 1 (``by_rich``: only then does
    standard output moved to /dev/null count; a library may point it there for its own reasons)."""
    gone = [fd for fd in sorted({1, 2, *map(_fileno, (sys.stdout, sys.stderr))} - {None}) if _gone(fd)]
    if gone:
        devnull = os.open(os.devnull, os.O_WRONLY)
        for fd in gone:
            os.dup2(devnull, fd)
        os.close(devnull)
    now = _identity(1)
    return bool(gone) or (by_rich and now != before and now == _identity_of(os.devnull))


def _identity_of(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


@contextlib.contextmanager
def quiet_exit() -> Iterator[None]:
    """Run a command; where its standard output (or error) was closed by its reader, exit with
    status 141 and print nothing. Output still buffered is flushed here, inside, so that a
    broken pipe found then is handled too (not at interpreter exit). A command that already
    failed (a non-zero SystemExit, an exception) keeps its status when only that flush fails."""
    before = _identity(1)
    try:
        yield
    except SystemExit as e:
        # typer (and rich, printing its help) catch EPIPE themselves and exit 1 while handling it
        if _is_epipe(e.__context__) and _silence_gone_streams(before, _raised_by_rich(e)):
            raise SystemExit(EXIT_STATUS) from None
        if e.code in (None, 0):
            _flush(before)
        else:
            _flush_quietly(before)
        raise
    except OSError as e:
        if _is_epipe(e) and _silence_gone_streams(before):
            raise SystemExit(EXIT_STATUS) from None
        _flush_quietly(before)
        raise
    except BaseException:
        _flush_quietly(before)
        raise
    _flush(before)


def _flush(before: tuple[int, int] | None) -> None:
    """Flush standard output and error: a reader gone meanwhile is exit status 141."""
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except OSError as e:
        if _is_epipe(e) and _silence_gone_streams(before):
            raise SystemExit(EXIT_STATUS) from None
        raise


def _flush_quietly(before: tuple[int, int] | None) -> None:
    """Flush as ``_flush`` does, for a command that has failed already: a failed flush (a reader
    gone: its streams pointed at /dev/null, nothing more printed at exit) does not replace its
    status or its error."""
    try:
        _flush(before)
    except (OSError, SystemExit):
        pass


def _raised_by_rich(e: BaseException) -> bool:
    """Whether ``e`` was raised by rich's ``Console.on_broken_pipe`` (which points standard output
    at /dev/null itself, then exits 1)."""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    code = tb and tb.tb_frame.f_code
    return bool(code) and code.co_name == "on_broken_pipe" and f"{os.sep}rich{os.sep}" in code.co_filename
