"""``ray_stop`` on real processes: a tree stopped whole, a PID reused between its listing and its
signal left alone, a Ctrl-C during the kill leaving nothing suspended."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from optuna_studies import ray_stop

# a parent that ignores SIGCHLD, as the raylet does: its children are reaped as they end, even while
# it is suspended, so their PIDs are free at once
PARENT = textwrap.dedent("""
    import os, signal, sys, time
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    for _ in range(int(sys.argv[1])):
        os.spawnvp(os.P_NOWAIT, "sleep", ["sleep", "300"])
    print("ready", flush=True)
    time.sleep(300)
""")


def state(pid: int) -> str | None:
    fields = ray_stop._stat(pid)
    return fields[0] if fields else None


def start_parent(kids: int) -> subprocess.Popen:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(kids)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout.readline().strip() == "ready"
    return parent


def kill_all(pids) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def take_pid(pid: int, tries: int = 50) -> subprocess.Popen | None:
    """A new process with PID ``pid`` (free): set as the next one through ns_last_pid (root only)."""
    for _ in range(tries):
        try:
            Path("/proc/sys/kernel/ns_last_pid").write_text(str(pid - 1))
        except OSError:
            return None
        proc = subprocess.Popen(["sleep", "300"])
        if proc.pid == pid:
            return proc
        proc.kill()
        proc.wait()
    return None


def test_a_listed_child_whose_pid_is_taken_by_another_process_is_not_signalled():
    """The window forced: the child listed under the suspended parent ends (reaped at once: the
    parent ignores SIGCHLD) and an unrelated process takes its PID before the listing is acted on.
    That process must be neither suspended nor put in the tree to be killed."""
    parent = start_parent(1)
    impostor = None
    tree: dict[int, int] = {}

    def list_then_replace(pids):
        nonlocal impostor
        listed = ray_stop.children(pids)
        if pids != [parent.pid]:  # below the child: nothing
            return listed
        (kid,) = listed
        os.kill(kid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{kid}").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        impostor = take_pid(kid)
        return listed

    try:
        ray_stop.freeze_tree([parent.pid], tree, list_children=list_then_replace)
        if impostor is None:
            pytest.skip("cannot place a process at a given PID here (ns_last_pid needs root)")
        time.sleep(0.1)
        assert state(impostor.pid) == "S", state(impostor.pid)
        assert impostor.pid not in tree
        assert state(parent.pid) == "T"
    finally:
        ray_stop.kill_all(tree)
        ray_stop.wait_tree(tree, 10)
        kill_all([parent.pid])
        parent.wait()
        if impostor is not None:
            impostor.kill()
            impostor.wait()


def test_a_process_still_as_listed_is_opened_and_one_listed_otherwise_is_not():
    """The check itself: a pidfd only for the process that has the PID, parent and start time listed."""
    proc = subprocess.Popen(["sleep", "300"])
    try:
        listed = ray_stop.identity(proc.pid)
        assert listed == (os.getpid(), listed[1])
        fd = ray_stop.open_listed(proc.pid, listed)
        assert fd is not None and not ray_stop.ended(fd)
        os.close(fd)
        # an earlier process that had this PID: same parent, started before
        assert ray_stop.open_listed(proc.pid, (listed[0], listed[1] - 1)) is None
        assert ray_stop.open_listed(proc.pid, (1, listed[1])) is None  # another parent
        assert ray_stop.open_listed(proc.pid, None) is None  # ended when listed
    finally:
        proc.kill()
        proc.wait()
    assert ray_stop.open_listed(proc.pid, listed) is None  # ended since


def below(root: int) -> list[int]:
    kids = [int(pid) for pid in os.popen(f"ps -o pid= --ppid {root}").read().split()]
    return kids + [pid for kid in kids for pid in below(kid)]


# a tree three deep whose root is this process's child: stopped with a Ctrl-C (a real SIGINT) sent
# to this process as the first SIGKILL goes out
CTRL_C_IN_THE_KILL = textwrap.dedent("""
    import json, os, signal, subprocess, sys
    from optuna_studies import ray_stop
    from test_ray_stop_tree import PARENT, below, state

    # as ptv2's commands do: a suite started with & (no job control) hands its children SIGINT ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)

    root = subprocess.Popen([sys.executable, "-c", "import subprocess, sys; "
                             f"subprocess.Popen([sys.executable, '-c', {PARENT!r}, '3']).wait()"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while len(below(root.pid)) < 4:
        pass
    pids = [root.pid] + below(root.pid)
    send = signal.pidfd_send_signal

    def ctrl_c_with_the_first_kill(fd, sig, *args):
        send(fd, sig, *args)
        if sig == signal.SIGKILL and not getattr(ctrl_c_with_the_first_kill, "sent", False):
            ctrl_c_with_the_first_kill.sent = True
            os.kill(os.getpid(), signal.SIGINT)

    signal.pidfd_send_signal = ctrl_c_with_the_first_kill
    try:
        ray_stop.stop_processes([root])
        print("not interrupted")
    except KeyboardInterrupt:
        print("interrupted")
    import time
    time.sleep(0.5)
    print(json.dumps({pid: state(pid) for pid in pids}))
""")


def test_a_ctrl_c_as_the_tree_is_killed_leaves_none_of_it_suspended():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", CTRL_C_IN_THE_KILL], env=env, capture_output=True, text=True,
                         timeout=60)
    lines = out.stdout.split("\n")
    states = json.loads(lines[1]) if len(lines) > 1 else {}
    kill_all(int(pid) for pid in states)
    assert lines[0] == "interrupted", (out.stdout, out.stderr[-2000:])
    assert len(states) == 5 and not [s for s in states.values() if s not in (None, "Z")], states


def test_a_tree_three_deep_is_listed_the_same_both_ways_and_stopped_whole(monkeypatch):
    """Children from the kernel's lists (/proc/PID/task/*/children) or, where it has none, from one
    scan of /proc per level; either way every process found, suspended and killed."""
    root = subprocess.Popen([sys.executable, "-c", "import subprocess, sys; "
                             f"subprocess.Popen([sys.executable, '-c', {PARENT!r}, '3']).wait()"],
                            stdout=subprocess.DEVNULL)
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while len(below(root.pid)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = below(root.pid)
        first = ray_stop.children([root.pid])
        monkeypatch.setattr(ray_stop, "_listed_children", lambda pid: None)  # a kernel without the lists
        assert ray_stop.children([root.pid]) == first and list(first) == pids[:1]
        assert set(ray_stop.children(pids[:1])) == set(pids[1:])
        assert ray_stop.stop_processes([root]) == []
        assert root.returncode == -signal.SIGKILL
        assert [pid for pid in pids if state(pid) not in (None, "Z")] == []
    finally:
        kill_all([root.pid] + pids)
        root.wait()
