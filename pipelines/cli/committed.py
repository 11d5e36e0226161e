"""The point of no return of a command: its result is committed (``ptv2 register``: the version
exists and holds its aliases). A Ctrl-C or SIGTERM after it would make the command exit 130/143 with
the work done, and a script would do it again (register a second version). From
``no_interrupts_from_here()`` until the command ends both are ignored; ``main`` puts its handlers
back as it returns."""
from __future__ import annotations

import signal
import threading


def no_interrupts_from_here() -> None:
    """Ignore SIGINT and SIGTERM for the rest of the command (from the main thread; elsewhere,
    where handlers cannot be set, nothing changes)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
