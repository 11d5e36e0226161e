"""kfp.local runs a ParallelFor's branches in threads, each swapping the root logger's handlers
and ``builtins.print`` in context managers; interleaved, they restore each other's values. Here
kfp's own context managers run in exactly that interleaving (branch A enters, B enters, A leaves,
B logs, B leaves), in a fresh interpreter (pytest's logging capture would hide the fallback)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import builtins, contextlib, io, json, logging, sys
from kfp.local import logging_utils
from pipelines.kfp_local_guard import kfp_local_guard

guard = kfp_local_guard() if sys.argv[1] == "guarded" else contextlib.nullcontext()
real_print, out = builtins.print, io.StringIO()
with contextlib.redirect_stdout(out), guard:
    log_a, log_b = logging_utils.local_logger_context(), logging_utils.local_logger_context()
    print_a, print_b = logging_utils.indented_print(), logging_utils.indented_print()
    log_a.__enter__(); print_a.__enter__()
    log_b.__enter__(); print_b.__enter__()
    print_a.__exit__(None, None, None); log_a.__exit__(None, None, None)
    logging.error("Task 'search-op' finished with status FAILURE")  # branch B, after A put things back
    print_b.__exit__(None, None, None); log_b.__exit__(None, None, None)
print("error: interrupted", file=sys.stderr)
sys.__stdout__.write(json.dumps({"print_restored": builtins.print is real_print,
                                 "root_handlers": len(logging.getLogger().handlers),
                                 "stdout": out.getvalue()}) + "\\n")
"""


def run(mode: str) -> tuple[dict, str]:
    res = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).parents[1])
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1]), res.stderr


def test_interleaved_branches_leave_print_and_the_root_logger_as_they_were():
    state, err = run("guarded")
    assert state["print_restored"] and state["root_handlers"] == 0
    # the late record went where kfp's own lines go (the run's stdout: log file and progress filter),
    # not to Python's stderr fallback with colour codes
    assert "finished with status FAILURE" in state["stdout"]
    assert "ERROR:root" not in err and "\\x1b[" not in err
    # and ptv2's own error line starts the line
    assert err.splitlines()[-1] == "error: interrupted"
