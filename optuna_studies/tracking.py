"""MLflow runs of a search: one parent run per study, one nested run per trial.

Only the driver writes to MLflow (trial workers never import it), through explicit run ids,
so concurrent trials need no shared "active run" and a sqlite store has a single writer.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from optuna_studies.code_version import code_version, git_commit
from optuna_studies.tracking_setup import use_mlflow

PARENT_TAG = "mlflow.parentRunId"


# what the parent run passes on to its trial runs: a filter on a trial run by task or study
# (``tags.`ptv2.best` = 'true' and tags.`ptv2.task` = 'trec'``) found none, the trial runs had no such tag
SHARED_TAGS = ("ptv2.task", "ptv2.study_name")


def _params(values: dict[str, Any]) -> list[Param]:
    """MLflow params: every value a text; an unset one (None) as ``none``, not Python's ``None``."""
    return [Param(str(k), "none" if v is None else str(v)[:6000]) for k, v in values.items()]


def source_tags() -> dict[str, str]:
    """The code that ran, as the MLflow UI shows it (``mlflow.source.git.commit``, the run's "Source"
    when MLflow starts a run itself; a run made through the client has none) and as ptv2's own tag."""
    commit = (git_commit() or "").partition(".")[0]  # the bare hash, which the UI links; .dirty is in code_version
    return {"ptv2.code_version": code_version()} | ({"mlflow.source.git.commit": commit} if commit else {})


def trial_run_name(number: Any, prompt_len: Any, lr: Any) -> str:
    """``trial-3 (prompt_len 16, lr 0.0347)``: what the MLflow UI lists a trial's run by (``trial-3``
    alone said nothing of its configuration), as the search's progress lines name it."""
    lr_text = f"{lr:.3g}" if isinstance(lr, (int, float)) else str(lr)
    return f"trial-{number} (prompt_len {prompt_len}, lr {lr_text})"


def open_parent_run(experiment: str, tracking_uri: str | None, run_name: str, run_id: str | None,
                    params: dict[str, Any], tags: dict[str, str]) -> str:
    """Reopen ``run_id`` (a resumed study) or create the study's parent run. Returns its id."""
    exp_id = use_mlflow(experiment, tracking_uri)
    client = MlflowClient()
    if run_id:
        try:
            client.get_run(run_id)
            client.update_run(run_id, status="RUNNING")
            return run_id
        except MlflowException:
            pass  # deleted or another store: start a new parent run
    run = client.create_run(exp_id, run_name=run_name, tags=tags | source_tags())
    client.log_batch(run.info.run_id, params=_params(params))
    return run.info.run_id


def start_trial_run(parent_id: str, name: str, params: dict[str, Any], tags: dict[str, str]) -> str:
    """A nested run under the parent, with the parent's task and study tags (``SHARED_TAGS``) and
    the code that ran. Returns its id."""
    client = MlflowClient()
    parent = client.get_run(parent_id)
    shared = {k: v for k, v in parent.data.tags.items() if k in SHARED_TAGS}
    run = client.create_run(parent.info.experiment_id, run_name=name,
                            tags=shared | source_tags() | tags | {PARENT_TAG: parent_id})
    client.log_batch(run.info.run_id, params=_params(params))
    return run.info.run_id


def retry_trial_run(run_id: str, attempt: int) -> str:
    """End the run of a trial attempt whose worker died (KILLED, ``ptv2.status=lost``) and open the
    next attempt's: a new nested run under the same parent, with the same params and ``ptv2.*`` tags,
    named ``<name> (retry N)``, tagged ``ptv2.attempt`` and ``ptv2.retry_of_run``. Returns its id.

    A retried trial trains again from its first epoch; logged into the same run, both attempts'
    epochs landed on the same steps (two points per step, a zigzag in MLflow's charts), and MLflow
    cannot drop the lost attempt's metrics. One run per attempt keeps each curve whole, as a
    resumed search does for a trial its killed driver left running."""
    client = MlflowClient()
    old = client.get_run(run_id)
    client.log_batch(run_id, tags=[RunTag("ptv2.status", "lost"), RunTag("ptv2.attempt", str(attempt - 1))])
    client.set_terminated(run_id, status="KILLED")
    tags = {k: v for k, v in old.data.tags.items() if k.startswith("ptv2.") or k in (PARENT_TAG, "mlflow.source.git.commit")}
    tags |= {"ptv2.status": "running", "ptv2.attempt": str(attempt), "ptv2.retry_of_run": run_id}
    name = (old.info.run_name or "trial").split(" (retry ")[0]
    run = client.create_run(old.info.experiment_id, run_name=f"{name} (retry {attempt - 1})", tags=tags)
    client.log_batch(run.info.run_id, params=_params(old.data.params))
    return run.info.run_id


def log_epoch(run_id: str, metrics: dict[str, Any], step: int) -> None:
    """Numeric, finite metrics of one epoch (NaN from a diverged trial is skipped)."""
    import time

    now = int(time.time() * 1000)
    rows = [Metric(k, float(v), now, step) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    if rows:
        MlflowClient().log_batch(run_id, metrics=rows)


def log_params(run_id: str, params: dict[str, Any]) -> None:
    """``params`` on the run (``_params``); none, nothing is called."""
    if params:
        MlflowClient().log_batch(run_id, params=_params(params))


def set_tags(run_id: str, tags: dict[str, Any]) -> None:
    MlflowClient().log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def end_run(run_id: str, status: str) -> None:
    """``status``: FINISHED, FAILED or KILLED."""
    MlflowClient().set_terminated(run_id, status=status)


def trial_run_end(record: dict[str, Any]) -> tuple[dict[str, str], str]:
    """The tags and status a trial's run ends with, from the trial's record (``records.py``): its
    ``ptv2.status`` (and ``ptv2.failure``); FINISHED with a score, FAILED without."""
    tags = {"ptv2.status": str(record["status"])}
    if record.get("failure"):
        tags["ptv2.failure"] = str(record["failure"])[:4000]
    return tags, "FINISHED" if record.get("best_score") is not None else "FAILED"


def end_stale_trial_runs(parent_id: str, trials: list[dict[str, Any]] = ()) -> int:
    """Trial runs of the parent left RUNNING → ended. A run whose trial ended (its record among
    ``trials``: the store failed as its end was logged, and the search went on) ends as the trial did
    (``trial_run_end``); the others (left by a killed driver, or by a search stopped with Ctrl-C: Tune
    ends no trial callback for the trials it stops) → KILLED, tagged ``ptv2.status=interrupted``.
    Returns how many."""
    ended = {r["mlflow_run_id"]: r for r in trials if r.get("mlflow_run_id")}
    client = MlflowClient()
    exp_id = client.get_run(parent_id).info.experiment_id
    stale = client.search_runs([exp_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}' and attributes.status = 'RUNNING'")
    for run in stale:
        record = ended.get(run.info.run_id)
        tags, status = trial_run_end(record) if record else ({"ptv2.status": "interrupted"}, "KILLED")
        set_tags(run.info.run_id, tags)
        client.set_terminated(run.info.run_id, status=status)
    return len(stale)


def log_artifacts(run_id: str, folder: Path) -> None:
    MlflowClient().log_artifacts(run_id, str(folder))


def log_artifact(run_id: str, path: Path) -> None:
    MlflowClient().log_artifact(run_id, str(path))
