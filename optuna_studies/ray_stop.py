"""Stopping a local Ray whose processes started with SIGTERM blocked (``ray_session``).

Ray stops its processes one after another: SIGTERM, a second's wait, then SIGKILL. With SIGTERM
blocked in them (so that a SIGTERM to the command's process group does not kill them beside the
driver) the SIGTERM does nothing and each of the five (GCS, raylet, log monitor, monitor,
dashboard) costs its full second: 5.3 s per local Ray instead of 1.2. Killing only those five at
once left the raylet's own children (DashboardAgent, RuntimeEnvAgent, idle workers) running for
10 s and more, until they noticed the raylet was gone. ``kill_at_once`` stops the whole tree:
each process is suspended (SIGSTOP: it starts no more children), its children found and
suspended in turn, then all get SIGKILL together and are waited for.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
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


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for stat in PROC.glob("[0-9]*/stat"):
        fields = _stat(int(stat.parent.name))
        if fields and int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def running(pid: int) -> bool:
    """Whether ``pid`` is a process that has not ended (a zombie has)."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def freeze_tree(pids: list[int], seen: list[int]) -> None:
    """Add to ``seen`` the processes ``pids`` and all their descendants, each suspended (SIGSTOP)
    before its children are listed, so that none is started unseen; processes that ended
    meanwhile are left out. (Filled as it goes: the caller kills those suspended so far, also
    when a Ctrl-C ends this early.)"""
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        try:
            os.kill(pid, signal.SIGSTOP)
        except OSError:  # ended, or not this user's (then not started by this Ray either)
            continue
        seen.append(pid)
        todo += children(pid)


def kill_at_once(node, **_ray_args) -> None:
    """Stop every process of Ray's ``node`` (a ``ray._private.node.Node``) and all they started,
    with SIGKILL at once; wait for them and forget them as Ray's own ``kill_all_processes`` does
    (whose arguments, ``check_alive``, ``allow_graceful``, ``wait``, are taken and not needed)."""
    started = [info.process for infos in node.all_processes.values() for info in infos]
    tree: list[int] = []
    try:
        freeze_tree([p.pid for p in started if p.poll() is None], tree)
    finally:  # none left suspended
        for pid in tree:
            with contextlib.suppress(OSError):  # ended meanwhile
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + REAP_TIMEOUT_S
    for popen in started:  # this process's own children: reaped, not left as zombies
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=max(0.0, deadline - time.monotonic()))
    while (alive := [pid for pid in tree if running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.02)
    if alive:
        log.warning("Ray processes %s did not end within %.0f s of SIGKILL", alive, REAP_TIMEOUT_S)
    node.all_processes.clear()


def stop_fast() -> None:
    """Have the local Ray this process started be stopped by ``kill_at_once`` (by ``ray.shutdown``,
    and by Ray's exit hook where the process ends without it). Nothing where Ray keeps no node
    here (a cluster joined) or its stop cannot be replaced."""
    import ray._private.worker

    node = getattr(ray._private.worker, "_global_node", None)
    if PROC.is_dir() and node is not None and isinstance(getattr(node, "all_processes", None), dict) \
            and hasattr(node, "kill_all_processes"):
        node.kill_all_processes = functools.partial(kill_at_once, node)
