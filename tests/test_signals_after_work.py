"""Signals at the edges of a command's work: after its result is committed (a version registered
with its aliases), and inside a garbage-collection callback (where Python can only print a
KeyboardInterrupt as 'Exception ignored' and go on). Each case runs the real `main` in a fresh
interpreter, with a small command added to the app, and sends the signal to itself at a fixed point."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import interruptible

ROOT = Path(__file__).resolve().parents[1]

PRELUDE = (
    "import os, signal, time, weakref\n"
    "import pipelines.cli as cli\n"
    "from pipelines.cli.app import app\n"
    "from pipelines.cli.committed import no_interrupts_from_here\n"
)


def _run(tmp_path: Path, body: str, argv: list[str]) -> subprocess.CompletedProcess:
    (tmp_path / "sig_case.py").write_text(PRELUDE + body + f"cli.main({argv!r})\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path)]))
    return subprocess.run([sys.executable, "-m", "sig_case"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, preexec_fn=interruptible, timeout=120)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_after_the_result_is_committed_does_not_turn_it_into_a_failure(tmp_path, sig):
    """`ptv2 register` given SIGTERM 0.3 s after printing `registered ptv2-trec version 2` exited 143
    with no error line: a script would register again."""
    proc = _run(tmp_path, (
        "@app.command()\n"
        "def committed():\n"
        "    no_interrupts_from_here()\n"
        f"    os.kill(os.getpid(), signal.{sig})\n"
        "    time.sleep(0.3)\n"
        "    print('done')\n"), ["committed"])
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "done\n", ""), proc


@pytest.mark.parametrize("sig, rc, line", [("SIGINT", 130, "error: interrupted"),
                                           ("SIGTERM", 143, "error: terminated (SIGTERM)")])
def test_an_interrupt_landing_in_a_gc_callback_is_not_printed_nor_lost(tmp_path, sig, rc, line):
    """A Ctrl-C during pretrain's MLflow logging landed in a WeakKeyDictionary callback: Python printed
    'Exception ignored in: ... KeyboardInterrupt' with a traceback, went on and exited 0."""
    proc = _run(tmp_path, (
        "class Thing: pass\n"
        "@app.command()\n"
        "def work():\n"
        "    thing = Thing()\n"
        f"    ref = weakref.ref(thing, lambda r: signal.raise_signal(signal.{sig}))  # the handler raises in there\n"
        "    del thing\n"
        "    for _ in range(50):\n"
        "        time.sleep(0.01)\n"
        "    print('finished')\n"), ["work"])
    assert (proc.returncode, proc.stdout, proc.stderr) == (rc, "", line + "\n"), proc


def test_an_interrupt_in_a_gc_callback_after_the_result_is_committed_is_ignored(tmp_path):
    proc = _run(tmp_path, (
        "class Thing: pass\n"
        "@app.command()\n"
        "def work():\n"
        "    no_interrupts_from_here()\n"
        "    thing = Thing()\n"
        "    def callback(r):\n"
        "        raise KeyboardInterrupt\n"
        "    ref = weakref.ref(thing, callback)\n"
        "    del thing\n"
        "    time.sleep(0.2)\n"
        "    print('finished')\n"), ["work"])
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "finished\n", ""), proc


def test_an_interrupt_in_a_gc_callback_as_the_command_ends_keeps_its_status_with_a_note(tmp_path):
    """The command's work is done before the interrupt is taken again: its status stays 0, and a
    note says the interrupt came (documented in README's signals text)."""
    proc = _run(tmp_path, (
        "class Thing: pass\n"
        "@app.command()\n"
        "def work():\n"
        "    print('finished')\n"
        "    thing = Thing()\n"
        "    def callback(r):\n"
        "        raise KeyboardInterrupt\n"
        "    ref = weakref.ref(thing, callback)\n"
        "    del thing\n"), ["work"])
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        0, "finished\n", "note: interrupted as the command ended; its work is done and kept\n"), proc
