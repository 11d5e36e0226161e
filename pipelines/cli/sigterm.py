"""SIGTERM handled as Ctrl-C is: ``kill``, ``timeout``, a stopped container send it. (Only the
``ptv2`` commands install this, ``main``; a step of a pipeline submitted to Kubeflow runs its
component under ``kfp.dsl.executor_main``, without it; the search step has its own,
``components/step_sigterm.py``.)

Python's default for SIGTERM ends the process at once: no ``finally`` runs (a lock file, a RUNNING
MLflow run, a half-written folder left behind) and no ``error:`` line is printed. Here SIGTERM does
what Ctrl-C does: the handler SIGINT has now runs (Python's KeyboardInterrupt, Ray Tune's graceful
stop inside ``Tuner.fit``, ``sigint.HeldSigint`` while ``ptv2 predict`` prints a batch), and this
process's children in its process group, which a terminal's Ctrl-C reaches too (a ``ptv2 run``
step: kfp.local runs each as a child), get SIGINT. ``main`` then words the error line as
"terminated (SIGTERM)" and exits 143 (128 + 15, what a process killed by SIGTERM reports).

A command started by a script with ``&`` inherits SIGINT ignored, and so would its children: the
SIGINT passed on would do nothing. ``install`` gives SIGINT Python's handler then (children start
with the default, which Python turns into KeyboardInterrupt), and children still running when the
wait on them ends get SIGTERM, then SIGKILL: none is left running orphaned.

``ray.init`` puts handlers of its own on SIGTERM (one that exits at once; its C++ core then one that
aborts with a stack dump, exit 134): ``optuna_studies.ray_session`` puts the one it found back.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

# how long ``main`` waits for the children it passed the signal to (a ``ptv2 run`` step cleaning up)
CHILDREN_WAIT_S = 20.0
# then how long those still running get after SIGTERM, before SIGKILL
CHILDREN_TERM_S = 5.0

_received = False
_children: list[int] = []


def received() -> bool:
    """Whether SIGTERM came to this process since ``install``."""
    return _received


def descendants(root: int) -> list[int]:
    """The processes below ``root`` in its process group (what a terminal's Ctrl-C reaches), from
    /proc; none where there is no /proc."""
    group = os.getpgid(root)
    parent_of: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (name)": state ppid pgrp ...
        except (OSError, IndexError):  # the process ended meanwhile
            continue
        if int(fields[2]) == group:
            parent_of[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        kids = [pid for pid, ppid in parent_of.items() if ppid == parent]
        found += kids
        frontier += kids
    return found


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def group_children() -> list[int]:
    """The children SIGTERM is passed on to: this process's descendants in its group, less the
    processes of the local Ray it started (``ray.shutdown`` stops those as the command ends; the
    graceful stop of Ray Tune's trials needs them until then)."""
    ray = sys.modules.get("ray")
    ray_dir = os.path.dirname(ray.__file__) if getattr(ray, "__file__", None) else None

    def ray_own(command: str) -> bool:
        return command.startswith("ray::") or bool(ray_dir and ray_dir in command)

    return [pid for pid in descendants(os.getpid()) if not ray_own(_command(pid))]


def _handler(signum, frame) -> None:
    global _received
    first = not _received
    _received = True
    if first:
        _children[:] = group_children()
        for pid in _children:
            with contextlib.suppress(OSError):  # ended meanwhile
                os.kill(pid, signal.SIGINT)
    on_sigint = signal.getsignal(signal.SIGINT)
    if callable(on_sigint):
        on_sigint(signal.SIGINT, frame)
    else:  # SIGINT ignored (started in the background by a shell) or the default: stop all the same
        raise KeyboardInterrupt


def install():
    """Handle SIGTERM as Ctrl-C (from the main thread only), and SIGINT with Python's handler where
    it was ignored; returns the handlers it had, for ``restore``."""
    global _received
    _received = False
    _children.clear()
    on_sigint = signal.getsignal(signal.SIGINT)
    if on_sigint is signal.SIG_IGN:  # started with `&` by a shell without job control
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return signal.signal(signal.SIGTERM, _handler), on_sigint


def restore(previous) -> None:
    """Put back the handlers ``install`` returned."""
    on_sigterm, on_sigint = previous
    signal.signal(signal.SIGTERM, on_sigterm)
    if on_sigint is not None:
        signal.signal(signal.SIGINT, on_sigint)


def wait_for_children(timeout: float = CHILDREN_WAIT_S, term_timeout: float = CHILDREN_TERM_S) -> None:
    """Give the children the signal was passed on to up to ``timeout`` seconds to end; those still
    running get SIGTERM, then after ``term_timeout`` seconds SIGKILL."""
    left = _wait(_children, timeout)
    for sig, wait in ((signal.SIGTERM, term_timeout), (signal.SIGKILL, 0.0)):
        for pid in left:
            with contextlib.suppress(OSError):  # ended meanwhile
                os.kill(pid, sig)
        left = _wait(left, wait)


def _wait(pids: list[int], timeout: float) -> list[int]:
    """Wait up to ``timeout`` seconds for ``pids`` to end; returns those still running."""
    deadline = time.monotonic() + timeout
    while True:
        left = [pid for pid in pids if _running(pid)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:  # ended (and reaped, or not our child any more)
        return False
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True
