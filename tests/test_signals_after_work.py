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
