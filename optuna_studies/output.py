"""The search's output folder: ``best.json``, ``adapter/``, and the study's table and plots
(``trials.csv``, ``length_lr.png``/``.html``, ``length_score.png``, ``trials_over_time.png``).

Until the search has finished, everything lives in a hidden work folder beside it, one per
study (``.<out>.<study hash>.search/``: ``optuna_studies/work.py``), which ``--resume`` continues
from; a failed or aborted search leaves no half-written output folder. A new folder appears whole
(one rename); into an existing one (``--overwrite``) the entries move one by one, ``best.json``
last, so a process killed in that moment can leave a mix of old and new entries, but never a
``best.json`` beside a part of its output.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ptv2_core import busy_lock
from ptv2_core.adapter import _staging_folder, check_out_dir
from ptv2_core.durable import sync, sync_tree
from ptv2_core.errors import Ptv2Error

BEST = "best.json"
ADAPTER = "adapter"


def search_lock(study_name: str, out_dir: Path):
    """The lock of the search into ``out_dir`` (``.<out>.search.lock``, beside its work folders), to
    hold with ``with``, or refused: a second ``ptv2 search`` of the same output, above all a
    ``--resume`` while the first still runs, would take that search's running trials for
    interrupted ones and run them twice."""
    return busy_lock.output_lock(out_dir, "search",
                                 f"another `ptv2 search` is running study '{study_name}' into '{out_dir}': wait "
                                 "for it to end, or stop it first (then --resume continues it)")


def check_out(out_dir: Path, overwrite: bool) -> None:
    """Refuse an output path that is a file, a non-empty folder without ``overwrite``, or one
    whose parent is missing (a search writes its work folder beside ``out_dir``)."""
    out_dir = Path(out_dir)
    check_out_dir(out_dir, overwrite)
    if not out_dir.resolve().parent.exists():
        raise Ptv2Error(f"the parent folder of --out '{out_dir}' does not exist")


def write_output(out_dir: Path, best: dict[str, Any], adapter_src: Path, extra_files: dict[str, Path]) -> Path:
    """Build the output in a temporary folder (beside a new ``out_dir``, inside an existing one: the
    one place sure to be on its mount, ``_staging_folder``), then put it in place: renamed whole into a
    new ``out_dir``; into an existing one (``--overwrite``) entry by entry, ``best.json`` last, so
    that a previous search's entries are replaced and **nothing else in the folder is touched**
    (the whole folder used to be swapped out: ``--out . --overwrite`` deleted the user's files).
    A failure midway puts the previous entries back. The new entries are on the disk before they are
    put in place (a crash could leave a renamed ``best.json`` or adapter with empty files)."""
    out_dir = Path(out_dir).resolve()
    stage = _staging_folder(out_dir)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=stage))
    except OSError as e:
        raise _write_error(out_dir, e) from None
    old: Path | None = None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the output is an ordinary folder
        shutil.copytree(adapter_src, tmp / ADAPTER)
        for name, src in extra_files.items():
            shutil.copy2(src, tmp / name)
        (tmp / BEST).write_text(json.dumps(best, indent=2, sort_keys=True) + "\n")
        sync_tree(tmp)
        if not out_dir.exists():
            os.replace(tmp, out_dir)
            sync(out_dir.parent)
        else:
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=stage))
            _swap_entries(out_dir, tmp, old, sorted(os.listdir(tmp)))
            sync(out_dir)
    except OSError as e:  # no space left, a file too large: named, the temporary folders removed
        raise _write_error(out_dir, e) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return out_dir


def _write_error(out_dir: Path, e: OSError) -> Ptv2Error:
    return Ptv2Error(f"cannot write the search's output into '{out_dir}': {e.strerror or e}; nothing there was "
                     "changed")


def _swap_entries(out_dir: Path, new: Path, old: Path, names: list[str]) -> None:
    """Move this output's entries (and a previous search's, stale or not) from ``out_dir`` into
    ``old``, ``best.json`` first, then ``names`` from ``new`` in, ``best.json`` last."""
    from optuna_studies.plots import FILES

    own = [BEST] + sorted(({ADAPTER, *FILES} | set(names)) - {BEST})
    aside: list[str] = []
    placed: list[str] = []
    try:
        for name in own:
            if (out_dir / name).exists() or (out_dir / name).is_symlink():
                os.replace(out_dir / name, old / name)
                aside.append(name)
        for name in sorted(set(names) - {BEST}) + [BEST]:
            os.replace(new / name, out_dir / name)
            placed.append(name)
    except OSError:
        for name in placed:  # put the previous output back
            os.replace(out_dir / name, new / name)
        for name in aside:
            os.replace(old / name, out_dir / name)
        raise
