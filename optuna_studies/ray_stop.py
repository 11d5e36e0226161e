"""Stopping a local Ray whose processes started with SIGTERM blocked (``ray_session``).

Ray stops its processes one after another: SIGTERM, a second's wait, then SIGKILL. With SIGTERM
blocked in them (so that a SIGTERM to the command's process group does not kill them beside the
driver) the SIGTERM does nothing and each of the five (GCS, raylet, log monitor, monitor,
dashboard) costs its full second: 5.3 s per local Ray instead of 1.2. Killing only those five at
once left the raylet's own children (DashboardAgent, RuntimeEnvAgent, idle workers) running for
10 s and more, until they noticed the raylet was gone. ``kill_at_once`` stops the whole tree:
each process is suspended (SIGSTOP: it starts no more children), its children found and
suspended in turn, then all get SIGKILL together and are waited for. Each is signalled and
waited for through a pidfd opened as it is listed, so that a process that took the PID of one
listed (ended meanwhile) is left alone.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import select
import signal
import subprocess
import time
from pathlib import Path

# how long the killed processes get to end (one in uninterruptible sleep may take a while)
REAP_TIMEOUT_S = 10.0
PROC = Path("/proc")

log = logging.getLogger(__name__)


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after "pid (name)": state, ppid, ...; None when it ended."""
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def identity(pid: int) -> tuple[int, int] | None:
    """What tells a process from a later one given its PID: its parent's PID and its start time
    (field 22 of /proc/PID/stat); None when it ended (a zombie has)."""
    fields = _stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[1]), int(fields[19])


def _listed_children(pid: int) -> list[int] | None:
    """``pid``'s children as the kernel lists them per thread (CONFIG_PROC_CHILDREN); None where it
    does not, or ``pid`` ended."""
    found = []
    try:
        for task in (PROC / str(pid) / "task").iterdir():
            found += [int(child) for child in (task / "children").read_text().split()]
    except OSError:
        return None
    return found


def children(pids: list[int]) -> dict[int, tuple[int, int]]:
    """The processes whose parent is one of ``pids``, each with its ``identity`` as listed: from
    /proc/PID/task/*/children where the kernel has them, else from one scan of /proc."""
    parents = set(pids)
    listed = [_listed_children(pid) for pid in pids]
    if all(kids is not None for kids in listed):
        candidates = [kid for kids in listed for kid in kids]
    else:
        candidates = [int(stat.parent.name) for stat in PROC.glob("[0-9]*/stat")]
    found = {}
    for pid in candidates:
        ident = identity(pid)
        if ident and ident[0] in parents:
            found[pid] = ident
    return found


def open_listed(pid: int, listed: tuple[int, int] | None) -> int | None:
    """A pidfd for the process ``pid`` when it is still the one listed (``listed``: its ``identity``
    then), else None. A PID can be reused by an unrelated process once the one listed has ended
    (the raylet ignores SIGCHLD: its children are reaped as they end, even while it is suspended);
    a signal sent through the pidfd reaches the process it was opened on and no other. Checked in
    this order: opened, identity read, not ended: a process that has not ended holds its PID, so the
    identity read was that of the process opened."""
    if listed is None:
        return None
    try:
        fd = os.pidfd_open(pid)
    except OSError:  # ended
        return None
    if identity(pid) != listed or ended(fd):
        os.close(fd)
        return None
    return fd


def ended(pidfd: int) -> bool:
    """Whether the process of ``pidfd`` has ended (a pidfd becomes readable then)."""
    poller = select.poll()  # not select.select: a descriptor past 1023 is refused there
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(0))


def freeze_tree(pids: list[int], tree: dict[int, int], list_children=children) -> None:
    """Add to ``tree`` (PID -> pidfd) the processes ``pids`` and all their descendants, each
    suspended (SIGSTOP) before its children are listed, so that none is started unseen; processes
    that ended meanwhile, and any that took the PID of one listed, are left out. One listing per
    level of the tree. (Filled as it goes: the caller kills those suspended so far, also when this
    ends early.) ``list_children``: ``children``, or what a test puts in its place."""
    level = {pid: identity(pid) for pid in pids}
    while level:
        frozen = []
        for pid, listed in level.items():
            if pid in tree or (fd := open_listed(pid, listed)) is None:
                continue
            tree[pid] = fd
            try:
                signal.pidfd_send_signal(fd, signal.SIGSTOP)
            except OSError:  # ended since
                continue
            frozen.append(pid)
        level = list_children(frozen) if frozen else {}


def kill_all(tree: dict[int, int]) -> None:
    """SIGKILL to every process of ``tree`` (PID -> pidfd)."""
    for fd in tree.values():
        with contextlib.suppress(OSError):  # ended meanwhile
            signal.pidfd_send_signal(fd, signal.SIGKILL)


def wait_tree(tree: dict[int, int], timeout: float) -> list[int]:
    """Wait up to ``timeout`` for the processes of ``tree`` to end; close their pidfds. Returns the
    PIDs of those still running."""
    waiting = {fd: pid for pid, fd in tree.items()}
    poller = select.poll()
    for fd in waiting:
        poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + timeout
    try:
        while waiting and (left := deadline - time.monotonic()) > 0:
            for fd, _ in poller.poll(left * 1000):
                poller.unregister(fd)
                waiting.pop(fd, None)
    finally:
        close_all(tree)
    return sorted(waiting.values())


def close_all(tree: dict[int, int]) -> None:
    """Close the pidfds of ``tree`` and empty it."""
    for fd in tree.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    tree.clear()


def stop_processes(started: list[subprocess.Popen]) -> list[int]:
    """Stop the processes ``started`` (this process's children) and all they started, with SIGKILL
    at once, and wait for them. Returns the PIDs of those that did not end in time."""
    tree: dict[int, int] = {}
    # a Ctrl-C or SIGTERM meanwhile is taken once all are killed: raised in the middle, it left
    # those not yet killed suspended for good
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        try:
            freeze_tree([p.pid for p in started if p.poll() is None], tree)
        finally:  # none left suspended
            try:
                kill_all(tree)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, held)
        deadline = time.monotonic() + REAP_TIMEOUT_S
        for popen in started:  # this process's own children: reaped, not left as zombies
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        return wait_tree(tree, max(0.0, deadline - time.monotonic()))
    finally:  # the pidfds wait_tree did not close (interrupted before it)
        close_all(tree)


def kill_at_once(node, **_ray_args) -> None:
    """Stop every process of Ray's ``node`` (a ``ray._private.node.Node``) and all they started
    (``stop_processes``); forget them as Ray's own ``kill_all_processes`` does (whose arguments,
    ``check_alive``, ``allow_graceful``, ``wait``, are taken and not needed)."""
    started = [info.process for infos in node.all_processes.values() for info in infos]
    alive = stop_processes(started)
    if alive:
        log.warning("Ray processes %s did not end within %.0f s of SIGKILL", alive, REAP_TIMEOUT_S)
    node.all_processes.clear()


def pidfds_work() -> bool:
    """Whether this system has pidfds (Linux 5.3 and later, and not refused by a seccomp filter)."""
    try:
        os.close(os.pidfd_open(os.getpid()))
        return hasattr(signal, "pidfd_send_signal")
    except (AttributeError, OSError):
        return False


def stop_fast() -> None:
    """Have the local Ray this process started be stopped by ``kill_at_once`` (by ``ray.shutdown``,
    and by Ray's exit hook where the process ends without it). Nothing where Ray keeps no node
    here (a cluster joined) or its stop cannot be replaced (no pidfds: Linux before 5.3)."""
    import ray._private.worker

    node = getattr(ray._private.worker, "_global_node", None)
    if PROC.is_dir() and pidfds_work() and node is not None \
            and isinstance(getattr(node, "all_processes", None), dict) and hasattr(node, "kill_all_processes"):
        node.kill_all_processes = functools.partial(kill_at_once, node)
