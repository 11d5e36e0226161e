"""Ctrl-C for a command that prints results in batches (``ptv2 predict --file``).

While a batch is labelled and printed (``held()``), SIGINT is only noted, and taken between
batches (``check()``) or as the batch ends: the count of printed lines is then exact (raised
between printing a line and counting it, ``tail -n +N`` would label one line twice). Anywhere
else, above all while waiting for standard input, it interrupts at once (noted while blocked in
a read, it would wait for the next line to come).
"""
from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


class HeldSigint:
    """SIGINT's handler: raises at once, or only notes it while ``held()``."""

    def __init__(self) -> None:
        self._held = False
        self._came = False

    def _handler(self, signum, frame) -> None:
        if not self._held:
            raise KeyboardInterrupt
        self._came = True

    def check(self) -> None:
        """Raise KeyboardInterrupt if SIGINT came while held."""
        if self._came:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self._held = True
        try:
            yield
        finally:
            self._held = False
        self.check()


@contextlib.contextmanager
def sigint_between_batches() -> Iterator[HeldSigint]:
    """A ``HeldSigint`` as SIGINT's handler for the block; the previous handler back after it."""
    guard = HeldSigint()
    previous = signal.signal(signal.SIGINT, guard._handler)
    try:
        yield guard
    finally:
        signal.signal(signal.SIGINT, previous)
