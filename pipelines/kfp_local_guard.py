"""Process-wide state that kfp.local changes while it runs, kept whole across parallel branches.

kfp.local runs a ParallelFor's branches in threads, and each branch's task swaps two globals in a
context manager: the root logger's handlers (``logging_utils.local_logger_context``) and
``builtins.print`` (``logging_utils.indented_print``: four spaces before every print). Interleaved,
the branches restore each other's values: a task's "finished with status" line met a root logger
with no handler (Python's fallback printed ``ERROR:root:Task ... FAILURE`` with colour codes on
stderr), and ``print`` stayed indented after the run (ptv2's own ``error:`` line came out as
``    error: interrupted ...``). Seen on a Ctrl-C'd `ptv2 run` of two tasks.
"""
from __future__ import annotations

import builtins
import contextlib
import logging
import sys
from collections.abc import Iterator


class CurrentStdout(logging.StreamHandler):
    """A handler writing to whatever ``sys.stdout`` is when a record arrives (the run's progress
    filter while the pipeline runs), in kfp.local's own format."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(asctime)s - %(levelname)s - %(message)s", datefmt="%H:%M:%S"))

    @property
    def stream(self):  # noqa: D102 (StreamHandler reads self.stream)
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; the current stdout is always used
        pass


@contextlib.contextmanager
def kfp_local_guard() -> Iterator[None]:
    """Run kfp.local inside this: the root logger always has a handler (so a record logged while
    another branch has taken kfp's away goes where kfp's would, not to Python's stderr fallback),
    and the root logger and ``print`` are as they were afterwards."""
    root = logging.getLogger()
    handlers, level, printer = root.handlers[:], root.level, builtins.print
    if not handlers:
        root.addHandler(CurrentStdout())
    try:
        yield
    finally:
        builtins.print = printer
        root.handlers[:] = handlers
        root.setLevel(level)
