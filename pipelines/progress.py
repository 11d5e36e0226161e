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


class ProgressFilter(io.TextIOBase):
    """A stdout stand-in: every line to ``log``, progress lines also to ``console``."""

    def __init__(self, log: TextIO, console: TextIO = sys.__stdout__):
        self.log, self.console, self._buf = log, console, ""

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self._buf += s
        *lines, self._buf = self._buf.split("\n")
        for line in lines:
            self.log.write(line + "\n")
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
