"""The search's output folder, written all at once: ``best.json``, ``adapter/``, and the study's
table and plots (``trials.csv``, ``length_lr.png``/``.html``, ``length_score.png``, ``trials_over_time.png``).

Until the search has finished, everything lives in a hidden work folder beside it
(``.<out>.search/``), which ``--resume`` continues from; a failed or aborted search leaves no
half-written output folder.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ptv2_core import busy_lock
from ptv2_core.adapter import check_out_dir
from ptv2_core.errors import Ptv2Error

BEST = "best.json"
ADAPTER = "adapter"


def work_dir(out_dir: Path) -> Path:
    """The hidden work folder of ``out_dir`` (trial records, adapters, Tune experiments)."""
    out_dir = Path(out_dir).resolve()
    return out_dir.parent / f".{out_dir.name}.search"


def search_lock(study_name: str, out_dir: Path):
    """The lock of the search into ``out_dir`` (``.<out>.search.lock``, beside its work folder), to
    hold with ``with``, or refused: a second ``ptv2 search`` of the same output, above all a
    ``--resume`` while the first still runs, would take that search's running trials for
    interrupted ones and run them twice."""
    return busy_lock.held(busy_lock.beside(out_dir, "search"),
                          f"another `ptv2 search` is running study '{study_name}' into '{out_dir}': wait for it "
                          "to end, or stop it first (then --resume continues it)")


def check_out(out_dir: Path, overwrite: bool) -> None:
    """Refuse an output path that is a file, a non-empty folder without ``overwrite``, or one
    whose parent is missing (a search writes its work folder beside ``out_dir``)."""
    out_dir = Path(out_dir)
    check_out_dir(out_dir, overwrite)
    if not out_dir.resolve().parent.exists():
        raise Ptv2Error(f"the parent folder of --out '{out_dir}' does not exist")


def write_output(out_dir: Path, best: dict[str, Any], adapter_src: Path, extra_files: dict[str, Path]) -> Path:
    """Build the output in a temporary sibling folder, then rename it into place."""
    out_dir = Path(out_dir).resolve()
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    old: Path | None = None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the output is an ordinary folder
        shutil.copytree(adapter_src, tmp / ADAPTER)
        for name, src in extra_files.items():
            shutil.copy2(src, tmp / name)
        (tmp / BEST).write_text(json.dumps(best, indent=2, sort_keys=True) + "\n")
        if out_dir.exists():  # empty, or --overwrite: move it aside, then swap
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.replace(out_dir, old / "out")
        try:
            os.replace(tmp, out_dir)
        except OSError:
            if old is not None:  # put the previous output back
                os.replace(old / "out", out_dir)
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return out_dir
