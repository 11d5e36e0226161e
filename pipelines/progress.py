"""Console output of a local run: the full kfp.local log goes to a file, the console gets
the progress lines (task started/finished, one line as each trial starts and ends)."""
from __future__ import annotations

import io
import re
import sys
from pathlib import Path
from typing import TextIO

# what a person watching the run wants to see; everything else is in the log file
SHOW = re.compile(r"Executing task|finished with status|ptv2 ▸")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
MARK = "ptv2 ▸"  # steps prefix their own progress lines with this
STEP_START = re.compile(r"Executing task")
STEP_FAILED = re.compile(r"finished with status FAILURE")
# a step's own error: a traceback's last line (``ptv2_core.errors.Ptv2Error: …``, ``ValueError: …``) or an
# ``error: …`` line it printed
ERROR_LINE = re.compile(r"^\s*(?:(?:[A-Za-z_]\w*\.)*(?P<kind>[A-Z]\w*(?:Error|Exception|Interrupted))|error): (?P<msg>\S.*)$")
PTV2_ERRORS = {"Ptv2Error", "Ptv2RunError", "Ptv2Interrupted"}  # their message says it all (no class name)


class ProgressFilter(io.TextIOBase):
    """A stdout stand-in: every line to ``log``, progress lines also to ``console``."""

    def __init__(self, log: TextIO, console: TextIO = sys.__stdout__):
        self.log, self.console, self._buf = log, console, ""
        self._last_error: str | None = None  # of the step running now (kfp.local runs one at a time)
        self.step_error: str | None = None  # the last error line of the step that failed, for the console

    def _watch(self, line: str) -> None:
        line = ANSI.sub("", line)
        if STEP_START.search(line):
            self._last_error = None
        elif STEP_FAILED.search(line):
            self.step_error = self._last_error
        elif m := ERROR_LINE.match(line):
            kind = m["kind"]
            self._last_error = m["msg"].strip() if kind in PTV2_ERRORS or kind is None else f"{kind}: {m['msg'].strip()}"

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self._buf += s
        *lines, self._buf = self._buf.split("\n")
        for line in lines:
            self.log.write(line + "\n")
            self._watch(line)
            if SHOW.search(line):
                self.console.write(ANSI.sub("", line).strip() + "\n")
                self.console.flush()
        return len(s)

    def flush(self) -> None:
        self.log.flush()
        self.console.flush()


def run_id() -> str:
    """A name for one ``ptv2 run``: its start time and process id (two runs started in the same
    second wrote one log file, each over the other)."""
    import os
    import time

    return time.strftime(f"run-%Y%m%d-%H%M%S-{os.getpid()}")


def log_path(home: Path, run: str) -> Path:
    folder = home / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{run}.log"
