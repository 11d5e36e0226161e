"""Ctrl-C and SIGTERM held back for a few store calls whose result a cleanup must know.

``ptv2 register`` and pre-training's logging create an MLflow run, then enter the block whose
cleanup marks the run FAILED. A SIGINT (or SIGTERM, which the CLI handles as Ctrl-C) landing in
between, or inside ``create_run`` after the store wrote the run, left it RUNNING: the run id was not
known yet, or the cleanup not entered. ``HeldSignals`` notes such a signal instead, and ``release``
hands it to the handler that was in place (raising KeyboardInterrupt there) once the cleanup is
armed.

Python runs signal handlers in the main thread only, so swapping them covers a signal whichever
thread the OS delivers it to; called from another thread (where handlers cannot be set), it holds
nothing.
"""
from __future__ import annotations

import os
import signal
import threading

HELD = (signal.SIGINT, signal.SIGTERM)


class HeldSignals:
    """SIGINT and SIGTERM noted, not acted on, from construction until ``release``."""

    def __init__(self) -> None:
        self._came: list[int] = []
        self._previous: dict[int, object] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in HELD:
                self._previous[sig] = signal.signal(sig, self._note)

    def _note(self, signum, frame) -> None:
        self._came.append(signum)

    def release(self) -> None:
        """Put the previous handlers back and give the signal that came meanwhile to its handler."""
        previous, self._previous = self._previous, {}
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        came, self._came = self._came, []
        # SIGTERM's handler (the CLI's) does what SIGINT's does and more: it goes first, alone
        sig = signal.SIGTERM if signal.SIGTERM in came else signal.SIGINT if came else None
        handler = previous.get(sig)
        if callable(handler):
            handler(sig, None)
        elif sig is not None and handler == signal.SIG_DFL:
            os.kill(os.getpid(), sig)
