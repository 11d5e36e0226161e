"""``ptv2_core.busy_lock``: one process at a time per output, with real processes holding and
contending for the lock; each step waits on the other process's line, so the order is fixed."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ptv2_core import busy_lock
from ptv2_core.errors import Ptv2Error

ROOT = str(Path(__file__).resolve().parents[1])

# Holds the lock until told to leave it; with "pause", its removal of the lock file waits to be told as well.
HOLDER = """
import pathlib, sys
from ptv2_core import busy_lock
lock = pathlib.Path(sys.argv[1])
unlink = pathlib.Path.unlink
def told_to_unlink(self, *a, **k):
    if self == lock and "pause" in sys.argv:
        print("unlinking", flush=True); sys.stdin.readline()
    return unlink(self, *a, **k)
pathlib.Path.unlink = told_to_unlink
with busy_lock.held(lock, "busy"):
    print("held", flush=True); sys.stdin.readline()
print("released", flush=True)
"""

# Opens the lock file, then waits to be told before it tries to lock it (flock).
CONTENDER = """
import pathlib, sys
import filelock._native._unix as unix
from ptv2_core import busy_lock
from ptv2_core.errors import Ptv2Error
flock, told = unix.lock_fd_nonblocking, []
def told_to_lock(fd):
    if not told:
        told.append(1); print("opened", flush=True); sys.stdin.readline()
    return flock(fd)
unix.lock_fd_nonblocking = told_to_lock
try:
    with busy_lock.held(pathlib.Path(sys.argv[1]), "busy"):
        print("held", flush=True); sys.stdin.readline()
except Ptv2Error as e:
    print(e, flush=True)
"""


def _start(code: str, lock: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, str(lock), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=ROOT)


def _tell(proc: subprocess.Popen) -> None:
    proc.stdin.write("\n")
    proc.stdin.flush()


def test_a_process_that_opened_the_lock_file_before_it_went_cannot_hold_it_beside_a_new_one(tmp_path):
    """The holder released the lock and then removed its file: a process that had opened the
    file could lock it in between, and a third then created a new file and locked that, both
    "holding" the lock. The file goes while it is still held now: the one that opened it is
    refused, and the third holds the lock alone."""
    lock = tmp_path / ".out.train.lock"
    holder = _start(HOLDER, lock, "pause")
    contender = None
    try:
        assert holder.stdout.readline().strip() == "held"
        contender = _start(CONTENDER, lock)
        assert contender.stdout.readline().strip() == "opened"  # it has the holder's file open
        _tell(holder)  # leave the lock
        assert holder.stdout.readline().strip() == "unlinking"
        _tell(contender)  # lock the file it opened
        said = contender.stdout.readline().strip()
        _tell(holder)
        assert holder.stdout.readline().strip() == "released"
        with busy_lock.held(lock, "busy"):  # a new file at the path, in this process
            assert said == "busy", f"a second holder beside this one: {said}"
        assert not lock.exists()
    finally:
        for proc in (holder, contender):
            if proc is not None:
                proc.kill()
                proc.wait()


def test_the_lock_is_refused_while_held_and_free_again_after(tmp_path):
    lock = tmp_path / ".out.train.lock"
    holder = _start(HOLDER, lock)
    try:
        assert holder.stdout.readline().strip() == "held"
        try:
            with busy_lock.held(lock, "busy"):
                raise AssertionError("held twice")
        except Ptv2Error as e:
            assert str(e) == "busy"
        _tell(holder)
        assert holder.stdout.readline().strip() == "released"
        with busy_lock.held(lock, "busy"):
            assert lock.exists()
        assert not lock.exists()  # nothing left beside the output
    finally:
        holder.kill()
        holder.wait()
