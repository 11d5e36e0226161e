"""Finished trials as files in the search's work folder: ``trials/<ray trial id>.json`` plus
the trial's best adapter in ``adapters/<ray trial id>/``.

Only the driver writes them, each file all at once and on the disk before its rename publishes it
(its adapter first), so a killed driver, or a crashed machine, leaves whole records of every trial
that finished before; a resumed search reads them back. A record that still is not valid JSON is
left out (``unreadable_records`` says which): its trial counts as one without a record.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from ptv2_core.durable import sync, sync_tree

# Columns of the trials table (trials.csv), in order. ``epochs_run``: the epochs of the trial's
# last attempt, which its score and adapter come from; ``epochs_trained``: every epoch it trained,
# attempts lost with their worker (``retries``) included: its compute.
COLUMNS = ("number", "ray_trial_id", "prompt_len", "lr", "status", "best_score", "best_epoch", "epochs_run",
           "epochs_trained", "retries", "started", "ended", "duration_s", "mlflow_run_id", "failure")


def table_row(record: dict[str, Any]) -> dict[str, Any]:
    """A record as a row of trials.csv: ``started`` and ``ended`` as UTC times
    (``2026-12-07T09:48:14Z``; they were seconds since 1970, which no reviewer reads), ``duration_s``
    to a tenth of a second, an unset value empty."""
    from datetime import datetime, timezone

    row = {k: ("" if record.get(k) is None else record.get(k)) for k in COLUMNS}
    for k in ("started", "ended"):
        if isinstance(row[k], (int, float)):
            row[k] = datetime.fromtimestamp(row[k], timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(row["duration_s"], float):
        row["duration_s"] = round(row["duration_s"], 1)
    return row


def trials_dir(work: Path) -> Path:
    return Path(work) / "trials"


def adapter_dir(work: Path, ray_trial_id: str) -> Path:
    return Path(work) / "adapters" / ray_trial_id


def write_record(work: Path, record: dict[str, Any]) -> Path:
    """Write one trial's record atomically, it and the adapter it names on the disk (a crash could
    leave a renamed, empty record). Returns its path."""
    folder = trials_dir(work)
    folder.mkdir(parents=True, exist_ok=True)
    if record.get("adapter") and Path(record["adapter"]).is_dir():
        sync_tree(record["adapter"])
    path = folder / f"{record['ray_trial_id']}.json"
    fd, tmp = tempfile.mkstemp(prefix=".record.", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(_jsonable(record), f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:  # no space left: the partial file goes; the error names the record (Tune's does not)
        Path(tmp).unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror, str(path)) from e
    sync(folder)
    return path


def read_records(work: Path) -> list[dict[str, Any]]:
    """Every readable trial record of the search, in study order. A record's adapter is where it lies
    now, ``adapters/<ray trial id>`` of ``work``: the record keeps the path it was written to, and the
    folder may have moved since (an old-style work folder renamed by ``--resume``: ``work.py``)."""
    loaded = [_load(p) for p in _files(work)]
    records = [r for r in loaded if isinstance(r, dict)]
    for r in records:
        if r.get("adapter") and r.get("ray_trial_id"):
            r["adapter"] = str(adapter_dir(work, r["ray_trial_id"]))
    return sorted(records, key=lambda r: (r.get("number") is None, r.get("number") or 0, r.get("started") or 0))


def unreadable_records(work: Path) -> list[tuple[Path, str]]:
    """The record files ``read_records`` leaves out, each with why: a crash as one was written, say."""
    return [(p, r) for p in _files(work) if isinstance(r := _load(p), str)]


def _files(work: Path) -> list[Path]:
    folder = trials_dir(work)
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def _load(path: Path) -> dict[str, Any] | str:
    """The record in ``path``, or why it cannot be read."""
    try:
        record = json.loads(path.read_bytes())
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    except ValueError:  # not JSON, or not UTF-8
        return "not valid JSON (a crash as it was written?)"
    return record if isinstance(record, dict) else "not a trial record (not a JSON object)"


def best_record(records: list[dict[str, Any]], mode: str) -> dict[str, Any] | None:
    """The completed trial with the best score and an adapter; a pruned one only when no trial
    completed (its record's ``status`` says so); None if none has a score.

    A pruned trial's score is its best after fewer epochs; ranked with the completed ones, one
    stopped with a lucky early dev score could win, and ``best.json`` named another trial than the
    study's ``best_trial`` (which Optuna picks among COMPLETE trials only). Trials that tie on the
    score go to the shorter prompt (fewer parameters, a shorter sequence at every layer when
    serving), then to the earlier trial.
    """
    scored = [r for r in records if r.get("adapter") and _finite(r.get("best_score"))]
    ok = [r for r in scored if r.get("status") == "completed"] or scored
    if not ok:
        return None
    sign = -1 if mode == "max" else 1
    return min(ok, key=lambda r: (sign * r["best_score"], r.get("prompt_len") or 0, r.get("number") or 0))


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _jsonable(value: Any) -> Any:
    """NaN/inf → None (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def failure_summary(records: list[dict[str, Any]]) -> str:
    """Why trials ended without a score, most frequent reason first, at most two: a search whose
    every trial failed says why on its error line, instead of sending the user to trials.csv."""
    from collections import Counter

    if not records:
        return "no trial ran"
    reasons = Counter(str(r.get("failure") or r.get("status") or "no score") for r in records)
    shown = "; ".join(f"{n} × {msg[:200]}" for msg, n in reasons.most_common(2))
    more = len(reasons) - 2
    from ptv2_core.wording import count_of

    return f"{count_of(len(records), 'trial')}: {shown}" + (f"; {count_of(more, 'other reason')}" if more > 0 else "")
