"""Ctrl-C while Ray starts, held until ``ray.init`` has returned.

A KeyboardInterrupt raised inside ``ray.init`` could leave its C++ core worker made but unknown to
Python (``ray.shutdown`` cannot stop it): as the process then exited, the core worker's exit hook
freed it while its I/O thread still ran (``TaskManager::RecordMetrics``), and the command crashed
with a segfault, exit 139, after its ``error: interrupted`` line (1 to 2 in 12 tries, Ctrl-C 6-8 s
into a local start). Held, the Ctrl-C is taken once Ray has started, where ``ray_session``'s
clean-up stops it whole. A second Ctrl-C while held interrupts at once (a start that hangs).
"""
from __future__ import annotations

import signal
import threading


class SigintHeld:
    """SIGINT noted, not raised, inside the ``with`` block (main thread only); ``release`` then gives
    it to the handler in place. Nothing changes where SIGINT is ignored (a job started with ``&``
    from a script: no Ctrl-C is to be taken there) or its handler was set outside Python
    (``signal.getsignal`` says None: ``signal.signal`` could not put it back)."""

    def __init__(self) -> None:
        self.came = 0
        self._installed = False
        self._previous = None

    def _note(self, signum, frame) -> None:
        self.came += 1
        if self.came > 1:
            raise KeyboardInterrupt

    def __enter__(self) -> "SigintHeld":
        if threading.current_thread() is threading.main_thread() \
                and signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, None):
            self._previous = signal.signal(signal.SIGINT, self._note)
            self._installed = True
        return self

    def __exit__(self, *exc) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False
            self._previous = None

    def release(self) -> None:
        """After the block: a SIGINT that came while held goes to SIGINT's handler now (Python's
        raises KeyboardInterrupt); one that raised already (a second) is not given again."""
        came, self.came = self.came, 0
        handler = signal.getsignal(signal.SIGINT)
        if came == 1 and callable(handler):
            handler(signal.SIGINT, None)
