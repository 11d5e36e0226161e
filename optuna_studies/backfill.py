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
    """Log what the store missed of ``trials`` (``missed``): a trial without a run id gets the run its
    start made after all (``_unrecorded_run``: the store made it, then failed its params call, or its
    answer was lost), else a new one, named and tagged as the search names its trials' runs; either is
    tagged ``ptv2.backfilled=true`` and gets the params it lacks, ``params`` (the search's ``epochs``
    and ``seed``) and its record's. A run gets the metrics it lacks, each (metric, epoch) its record
    holds that the run does not (a NaN the trial reported is never logged: ``tracking.log_epoch``).
    Each run then ends as its trial did, and the record is written again with its run id. Raises what
    MLflow raises (the store still down): the records done so far are kept. Returns how many runs it
    touched."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    taken = {r["mlflow_run_id"] for r in trials if r.get("mlflow_run_id")}
    done = 0
    for r in missed(trials):
        run_id = r.get("mlflow_run_id")
        if not run_id:
            run_params = {"prompt_len": r.get("prompt_len"), "lr": r.get("lr"), "optuna_number": r.get("number")} | params
            tags = {"ptv2.kind": "trial", "ptv2.ray_trial_id": str(r.get("ray_trial_id")),
                    "ptv2.optuna_number": str(r.get("number")), "ptv2.backfilled": "true"}
            run_id = _unrecorded_run(client, parent_id, str(r.get("ray_trial_id")), taken)
            if run_id:  # the same run once: its params are those its start logged, or missing
                have = client.get_run(run_id).data.params
                tracking.log_params(run_id, {k: v for k, v in run_params.items() if k not in have})
                tracking.set_tags(run_id, {"ptv2.backfilled": "true"})
            else:
                name = tracking.trial_run_name(r.get("number"), r.get("prompt_len"), r.get("lr"))
                run_id = tracking.start_trial_run(parent_id, name, run_params, tags)
            taken.add(run_id)
        logged = _logged_points(client, run_id)
        for row in r.get("history") or []:
            step = int(row.get("epoch") or 0)
            tracking.log_epoch(run_id, {k: v for k, v in row.items() if k != "epoch" and (k, step) not in logged}, step)
        end_tags, status = tracking.trial_run_end(r)
        tracking.set_tags(run_id, end_tags)
        tracking.end_run(run_id, status)
        r["mlflow_run_id"] = run_id
        r.pop("mlflow_missed", None)
        records.write_record(work, r)
        done += 1
    return done


def _unrecorded_run(client, parent_id: str, ray_trial_id: str, taken: set[str]) -> str | None:
    """The run under the parent tagged with the trial's Ray trial id that no record names: a trial's
    start is two calls (``tracking.start_trial_run``), and a store that made the run and then failed
    the second, or whose answer to the first was lost, left a run its record does not know (a second
    run for the trial, and this one ended KILLED, ``interrupted``). Ray trial ids are new in each run
    of a search, and a trial whose start failed gets no run per retry; the latest such run if several."""
    exp_id = client.get_run(parent_id).info.experiment_id
    runs = client.search_runs([exp_id], filter_string=f"tags.`{tracking.PARENT_TAG}` = '{parent_id}' and "
                                                      f"tags.`ptv2.ray_trial_id` = '{ray_trial_id}'",
                              order_by=["attributes.start_time DESC"])
    return next((run.info.run_id for run in runs if run.info.run_id not in taken), None)


def _logged_points(client, run_id: str) -> set[tuple[str, int]]:
    """Each (metric, step) the run holds: an epoch is judged metric by metric (a NaN the trial reported
    for the first metric is not logged, and the epoch's other metrics were)."""
    return {(key, m.step) for key in client.get_run(run_id).data.metrics
            for m in client.get_metric_history(run_id, key)}
