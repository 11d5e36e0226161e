"""SIGTERM for a pipeline step that searches, handled as the ``ptv2`` commands handle it.

A step of a pipeline submitted to Kubeflow runs under ``kfp.dsl.executor_main``, without the
CLI's handler (``pipelines/cli/sigterm.py``). The search step's ``ray.init`` (joining the
cluster at ``RAY_ADDRESS``, or starting a local Ray) then left Ray's own on SIGTERM: its C++ core's,
which aborts the step with a stack dump ("*** SIGTERM received at time=..."), exit 134, no
``error:`` line, the trials' MLflow runs left RUNNING. ``sigterm_as_ctrl_c`` makes SIGTERM do what
Ctrl-C does (Ray Tune's graceful stop, the search's clean-up; ``ray_session`` puts this handler
back after ``ray.init``), and the step end with one ``error: terminated (SIGTERM); ...`` line and
exit 143 (128 + 15), as a ``ptv2`` command does.
"""
from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

from ptv2_core.errors import Ptv2Interrupted

# what the CLI's line adds, a way on that a pipeline run does not have: it never resumes a search
CLI_WAY_ON = ("; run the same command", ": run the same command")


def step_message(e: BaseException) -> str:
    """What a stopped search says, without the CLI's "run the same command (with --resume)"."""
    message = str(e) if isinstance(e, Ptv2Interrupted) and str(e) else "interrupted"
    for way_on in CLI_WAY_ON:
        message = message.split(way_on, 1)[0]
    return message


@contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM in the block runs SIGINT's handler then in place (Python's: KeyboardInterrupt; Ray
    Tune's inside ``Tuner.fit``: its graceful stop); the interruption that follows ends the step
    with ``error: terminated (SIGTERM); <what the search says>`` on stderr and SystemExit(143).
    Nothing changes from a thread other than the main one, where handlers cannot be set."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []

    def handler(signum, frame) -> None:
        came.append(signum)
        on_sigint = signal.getsignal(signal.SIGINT)
        if callable(on_sigint):
            on_sigint(signal.SIGINT, frame)
        else:  # SIGINT ignored or the default: stop all the same
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    except (KeyboardInterrupt, Ptv2Interrupted) as e:
        if not came:  # a Ctrl-C: as before
            raise
        print(f"error: terminated (SIGTERM); {step_message(e)}", file=sys.stderr, flush=True)
        raise SystemExit(128 + signal.SIGTERM) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
