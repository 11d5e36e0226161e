"""A Ctrl-C (or SIGTERM, handled as one) that lands inside a callback Python cannot raise from.

Signal handlers run between any two bytecodes, so the KeyboardInterrupt can be raised inside a
garbage-collection callback or ``__del__`` (seen: a ``WeakKeyDictionary`` callback during pretrain's
MLflow logging). Python can only pass such an exception to ``sys.unraisablehook``, whose default
prints ``Exception ignored in: … Traceback … KeyboardInterrupt`` and goes on: a traceback, and the
Ctrl-C lost (the command ended with exit status 0). ``main`` installs ``hook`` instead: it prints
nothing and, ``REDELIVER_S`` later, interrupts the main thread again (``_thread.interrupt_main``: as
if SIGINT came then), so the interrupt lands in the command's ordinary code and ends as any other
(``error: interrupted``, 130; ``terminated (SIGTERM)``, 143, where SIGTERM came first). Not at once:
the handler would then run inside the hook, and its KeyboardInterrupt be unraisable again.
A command that ends before then has done its work: ``stop`` says so, and ``main`` keeps its exit
status and adds a ``note:`` line. After ``committed.no_interrupts_from_here`` SIGINT is ignored, and
so is the re-delivered one. Other unraisable exceptions go to the hook that was in place.
"""
from __future__ import annotations

import _thread
import signal
import sys
import threading

REDELIVER_S = 0.1

_lock = threading.Lock()
_pending = False
_active = False
_previous = sys.unraisablehook


def _redeliver() -> None:
    global _pending
    with _lock:
        if not (_pending and _active):
            return
        _pending = False
        _thread.interrupt_main(signal.SIGINT)  # does nothing where SIGINT is ignored


def hook(unraisable) -> None:
    global _pending
    if isinstance(unraisable.exc_value, KeyboardInterrupt) or (
            isinstance(unraisable.exc_type, type) and issubclass(unraisable.exc_type, KeyboardInterrupt)):
        with _lock:
            if _active and not _pending:
                _pending = True
                timer = threading.Timer(REDELIVER_S, _redeliver)
                timer.daemon = True
                timer.start()
        return
    _previous(unraisable)


def install():
    """Make ``hook`` sys.unraisablehook; returns the one it replaces, for ``restore``."""
    global _previous, _active, _pending
    with _lock:
        _previous, _active, _pending = sys.unraisablehook, True, False
    sys.unraisablehook = hook
    return _previous


def stop() -> bool:
    """Re-deliver nothing from now on; True when an interrupt came that was not re-delivered yet
    (the command ended first). Call it as the command ends, and again where it may not have."""
    global _active, _pending
    with _lock:
        late, _pending, _active = _pending and _active, False, False
    return late


def restore(previous) -> None:
    stop()
    sys.unraisablehook = previous
