"""``SigintHeld`` in a process that ignores SIGINT (a job started with ``&`` from a script): it
changes nothing there; two SIGINTs raised KeyboardInterrupt where none was to be taken."""
from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import os, signal, time
    from optuna_studies.start_sigint import SigintHeld

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with SigintHeld() as held:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
    held.release()
    print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN, held.came)
""")

HELD = textwrap.dedent("""
    import os, signal, time
    from optuna_studies.start_sigint import SigintHeld

    # as ptv2's commands do: a suite started with & (no job control) hands its children SIGINT ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with SigintHeld() as held:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
        print("held", held.came, flush=True)
    print(signal.getsignal(signal.SIGINT) is signal.default_int_handler, flush=True)
    try:
        held.release()
    except KeyboardInterrupt:
        print("taken")
""")


def run(script: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()


def test_sigint_ignored_stays_ignored_inside_and_after():
    assert run(SCRIPT) == ["True", "0"]


def test_a_ctrl_c_held_is_taken_on_release_and_the_handler_put_back():
    assert run(HELD) == ["held", "1", "True", "taken"]
