"""The trial runs an MLflow store missed while it was down (a tracking server killed or restarting
mid-search), logged from the trials' records as the search ends: the records hold each trial's
parameters, every epoch's metrics and how it ended (``records.py``), which is all its run shows."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from optuna_studies import records, tracking


def missed(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records whose trial has no MLflow run (the store failed as it started) or whose run missed
    a call (``mlflow_missed``: an epoch, its end)."""
    return [r for r in trials if not r.get("mlflow_run_id") or r.get("mlflow_missed")]


def backfill_trial_runs(parent_id: str, work: Path, trials: list[dict[str, Any]], params: dict[str, Any]) -> int:
    """Log what the store missed of ``trials`` (``missed``): a trial without a run gets one, named
    and tagged as the search names its trials' runs, plus ``ptv2.backfilled=true``, with ``params``
    (the search's ``epochs`` and ``seed``) and its record's; an existing run gets the epochs it lacks
    (steps of the first metric not logged yet). Each run then ends as its trial did, and the record
    is written again with its run id. Raises what MLflow raises (the store still down): the records
    done so far are kept. Returns how many runs it touched."""
    from mlflow.tracking import MlflowClient

    done = 0
    for r in missed(trials):
        run_id, logged = r.get("mlflow_run_id"), set()
        if not run_id:
            name = tracking.trial_run_name(r.get("number"), r.get("prompt_len"), r.get("lr"))
            tags = {"ptv2.kind": "trial", "ptv2.ray_trial_id": str(r.get("ray_trial_id")),
                    "ptv2.optuna_number": str(r.get("number")), "ptv2.backfilled": "true"}
            run_id = tracking.start_trial_run(parent_id, name, {"prompt_len": r.get("prompt_len"), "lr": r.get("lr"),
                                                                "optuna_number": r.get("number")} | params, tags)
        history = r.get("history") or []
        keys = [k for k, v in (history[0] if history else {}).items()
                if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)]
        if r.get("mlflow_run_id") and keys:
            logged = {m.step for m in MlflowClient().get_metric_history(run_id, keys[0])}
        for row in history:
            step = int(row.get("epoch") or 0)
            if step not in logged:
                tracking.log_epoch(run_id, {k: v for k, v in row.items() if k != "epoch"}, step)
        end_tags, status = tracking.trial_run_end(r)
        tracking.set_tags(run_id, end_tags)
        tracking.end_run(run_id, status)
        r["mlflow_run_id"] = run_id
        r.pop("mlflow_missed", None)
        records.write_record(work, r)
        done += 1
    return done
