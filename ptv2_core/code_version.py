"""Which code ran: the ptv2 version and, from a git checkout, its commit (a search's parent run, a registered
version and a pre-trained prompt record it)."""
from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from ptv2_core import __version__


@functools.cache
def git_commit() -> str | None:
    """The full commit of the checkout this code runs from, with ``.dirty`` when tracked files changed;
    None outside a git checkout (an installed package)."""
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (sha + ".dirty" if dirty else sha) if sha else None


def code_version() -> str:
    """``<ptv2 version>`` plus ``+g<commit>[.dirty]`` (12 hex digits) when the code runs from a git checkout."""
    commit = git_commit()
    if not commit:
        return __version__
    sha, _, dirty = commit.partition(".")
    return f"{__version__}+g{sha[:12]}" + (".dirty" if dirty else "")
