"""The hidden work folder of a search (trial records, their adapters, Tune's experiments): one
per study and output folder, ``.<out>.<study hash>.search/`` beside ``--out`` (or
``ptv2-searches/<study>-<out hash>/`` in a shared folder, ``plan.shared_work_dir``).

It was named after ``--out`` alone, so two studies into one ``--out`` (another ``--model``, another
``--study-name``) shared it, and the second, being new, deleted the first's finished trials; or a
resume of the first ranked the second's adapters among its own. Now each study has its own, and
the folder names its study and storage (``study.json``): a search never deletes, nor reads the
records of, another study's work folder. A search interrupted under the old name is still resumed:
``adopt_legacy`` takes its ``.<out>.search/`` when every trial record in it is one of the study's.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from ptv2_core.durable import sync
from ptv2_core.errors import Ptv2Error

OWNER = "study.json"


def work_dir(out_dir: Path, study_name: str) -> Path:
    """The hidden work folder of study ``study_name`` searching into ``out_dir``."""
    out_dir = Path(out_dir).resolve()
    digest = hashlib.sha1(study_name.encode()).hexdigest()[:8]
    return out_dir.parent / f".{out_dir.name}.{digest}.search"


def storage_key(url: str) -> str:
    """The storage as the work folder records it: no password, a sqlite file as an absolute path."""
    from sqlalchemy.engine import make_url

    from optuna_studies.study import mask_url

    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
            url = parsed.set(database=str(Path(parsed.database).resolve())).render_as_string(hide_password=False)
    except Exception:  # noqa: BLE001 (checked elsewhere; the masked text is key enough)
        pass
    return mask_url(url)


def check_owner(work: Path, study_name: str, storage: str) -> None:
    """Ptv2Error when ``work`` belongs to another study (a study of the same name in another storage)."""
    try:
        owner = json.loads((Path(work) / OWNER).read_text())
    except (OSError, ValueError):
        return  # no work folder yet, or one that never got its owner file (nothing ran in it)
    mine = {"study_name": study_name, "storage": storage_key(storage)}
    if not isinstance(owner, dict) or {k: owner.get(k) for k in mine} != mine:
        who = f"study '{owner.get('study_name')}' in {owner.get('storage')}" if isinstance(owner, dict) else "another study"
        raise Ptv2Error(f"the work folder {work} holds the unfinished search of {who}, not of study '{study_name}' "
                        f"in {mine['storage']}: resume that one with its own --storage and --study-name, or start "
                        "this one with another --out or --study-name")


def claim(work: Path, study_name: str, storage: str) -> None:
    """Create ``work`` (if needed) and name its study in it (on the disk before its rename: a crash could
    leave an empty ``study.json``, which names no study)."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    if (work / OWNER).is_file():
        return
    tmp = work / f".{OWNER}.tmp"
    tmp.write_text(json.dumps({"study_name": study_name, "storage": storage_key(storage)}, indent=2) + "\n")
    sync(tmp)
    os.replace(tmp, work / OWNER)
    sync(work)


def legacy_work_dir(out_dir: Path) -> Path:
    """The work folder as ptv2 named it before each study had its own: ``.<out>.search/``, one per
    ``out_dir`` whatever the study, and without ``study.json``."""
    out_dir = Path(out_dir).resolve()
    return out_dir.parent / f".{out_dir.name}.search"


def adopt_legacy(work: Path, out_dir: Path, study_name: str, storage: str, trials: dict[str, int]) -> Path | None:
    """Rename the old-style work folder of ``out_dir`` to ``work`` when it holds this study's
    trials; returns the folder taken, or None when there is none with trial records.

    ``trials`` maps the Ray trial id of each of the study's trials to its Optuna number (the study
    keeps them as ``ray_trial_id``). The old folder names no study, and every study into the same
    ``--out`` used it, so it is taken only when each of its records (``trials/<ray trial id>.json``)
    is one of these trials with the same number; otherwise Ptv2Error, naming it, and nothing moves.
    ``work`` holds no trial records here (the caller looked), so what is in it is replaced.
    """
    legacy = legacy_work_dir(out_dir)
    files = sorted((legacy / "trials").glob("*.json"))
    if not files:
        return None
    check_owner(legacy, study_name, storage)  # named by hand, say: it still must be this study's
    foreign = [f.name for f in files if not _is_trial_of(f, trials)]
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise Ptv2Error(f"study '{study_name}' has no work folder {work}, and the old-style one of its --out, {legacy} "
                        f"(one per --out, named before each study had its own), holds {len(foreign)} of {len(files)} "
                        f"trial record(s) that are not this study's trials (trials/{shown}), so it was left as it is: "
                        "move those records out of its trials/ folder and run --resume again, or start a new search "
                        "with another --out or --study-name")
    shutil.rmtree(work, ignore_errors=True)
    try:
        os.replace(legacy, work)  # beside each other: one rename, so a killed resume leaves one or the other
    except OSError as e:
        raise Ptv2Error(f"cannot rename the old-style work folder {legacy} to {work}: {e.strerror or e}") from None
    return legacy


def _is_trial_of(path: Path, trials: dict[str, int]) -> bool:
    """Whether the record at ``path`` is one of ``trials`` (same Ray trial id and Optuna number)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    rid = record.get("ray_trial_id") if isinstance(record, dict) else None
    return rid == path.stem and rid in trials and trials[rid] == record.get("number")
