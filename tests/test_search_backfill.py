"""The backfill of trial runs a search's MLflow store missed (``optuna_studies/backfill.py``), on a
real sqlite store and trial records written as the search writes them (no Ray, no training)."""
from __future__ import annotations

import math

import pytest


@pytest.fixture()
def store(tmp_path):
    """A parent run made as a search makes it, in a fresh sqlite store."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from optuna_studies import tracking

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    try:
        parent = tracking.open_parent_run("ptv2-search", uri, "ptv2-trec-x", None, {"task": "trec", "seed": 0},
                                          {"ptv2.kind": "search", "ptv2.task": "trec", "ptv2.study_name": "ptv2-trec-x"})
        yield MlflowClient(uri), parent
    finally:
        mlflow.set_tracking_uri(None)


def _record(tid: str, number: int, history: list[dict], run_id: str | None = None) -> dict:
    return {"number": number, "ray_trial_id": tid, "prompt_len": 4, "lr": 0.01, "status": "completed",
            "best_score": max(h["dev_score"] for h in history if math.isfinite(h["dev_score"])), "best_epoch": 1,
            "epochs_run": len(history), "mlflow_run_id": run_id, "failure": None, "adapter": None, "history": history}


def _trial_runs(client, parent: str) -> list:
    exp = client.get_run(parent).info.experiment_id
    return client.search_runs([exp], f"tags.`mlflow.parentRunId` = '{parent}'")


def test_a_run_the_store_made_as_its_params_call_failed_is_backfilled_not_doubled(store, tmp_path):
    """A trial's start is two calls: the run made, then its params. The store made the run and failed
    the second call (or its answer to the first was lost): the record has no run id. The backfill takes
    that run instead of making a second one that the end of the search left beside a KILLED first."""
    from optuna_studies import records, tracking
    from optuna_studies.backfill import backfill_trial_runs

    client, parent = store
    tags = {"ptv2.kind": "trial", "ptv2.ray_trial_id": "aa_00000", "ptv2.optuna_number": "0", "ptv2.status": "running"}
    # the run as the store made it, its params call failed: no params
    made = tracking.start_trial_run(parent, tracking.trial_run_name(0, 4, 0.01), {}, tags)
    history = [{"epoch": 0, "dev_score": 0.5, "train_loss": 1.0}, {"epoch": 1, "dev_score": 0.7, "train_loss": 0.6}]
    trials = [_record("aa_00000", 0, history)]
    records.write_record(tmp_path / "work", trials[0])

    assert backfill_trial_runs(parent, tmp_path / "work", trials, {"epochs": 2, "seed": 0}) == 1
    tracking.end_stale_trial_runs(parent, records.read_records(tmp_path / "work"))  # as the search ends

    runs = _trial_runs(client, parent)
    assert [r.info.run_id for r in runs] == [made]
    run = runs[0]
    assert run.info.status == "FINISHED" and run.data.tags["ptv2.status"] == "completed"
    assert run.data.tags["ptv2.backfilled"] == "true"
    assert run.data.params == {"prompt_len": "4", "lr": "0.01", "optuna_number": "0", "epochs": "2", "seed": "0"}
    assert sorted(m.step for m in client.get_metric_history(made, "dev_score")) == [0, 1]
    assert records.read_records(tmp_path / "work")[0]["mlflow_run_id"] == made


def test_a_run_already_holding_params_keeps_them_and_a_run_of_another_record_is_not_taken(store, tmp_path):
    """The run a trial's start made with its params (its answer lost) keeps them, even one the
    backfill words alike; a run another record names is never taken for this one."""
    from optuna_studies import tracking
    from optuna_studies.backfill import backfill_trial_runs

    client, parent = store
    history = [{"epoch": 0, "dev_score": 0.5}]
    tags = {"ptv2.kind": "trial", "ptv2.ray_trial_id": "bb_00001", "ptv2.optuna_number": "1", "ptv2.status": "running"}
    made = tracking.start_trial_run(parent, "trial-1", {"prompt_len": 4, "lr": 0.01, "epochs": 2, "optuna_number": 1,
                                                        "seed": 0}, tags)
    other = tracking.start_trial_run(parent, "trial-2", {}, tags | {"ptv2.ray_trial_id": "cc_00002"})
    trials = [_record("bb_00001", 1, history), _record("cc_00002", 2, history, other) | {"mlflow_missed": True}]

    assert backfill_trial_runs(parent, tmp_path / "work", trials, {"epochs": 2, "seed": 0}) == 2
    assert sorted(r.info.run_id for r in _trial_runs(client, parent)) == sorted([made, other])
    assert [t["mlflow_run_id"] for t in trials] == [made, other]
    assert client.get_run(made).data.params["epochs"] == "2"


def test_an_epoch_whose_first_metric_was_nan_gets_only_the_metrics_it_lacks(store, tmp_path):
    """``log_epoch`` skips a NaN: an epoch whose first metric was NaN has the others logged, and the
    backfill adds only what a step lacks (it judged epochs by the first metric, and logged the others
    of such an epoch twice)."""
    from optuna_studies import tracking
    from optuna_studies.backfill import backfill_trial_runs

    client, parent = store
    tags = {"ptv2.kind": "trial", "ptv2.ray_trial_id": "dd_00003", "ptv2.optuna_number": "3", "ptv2.status": "running"}
    run = tracking.start_trial_run(parent, "trial-3", {"prompt_len": 4}, tags)
    history = [{"epoch": 0, "dev_score": float("nan"), "train_loss": 2.0},
               {"epoch": 1, "dev_score": 0.4, "train_loss": 1.5}, {"epoch": 2, "dev_score": 0.6, "train_loss": 1.2}]
    tracking.log_epoch(run, {k: v for k, v in history[0].items() if k != "epoch"}, 0)  # logged live; epochs 1, 2 missed
    trials = [_record("dd_00003", 3, history, run) | {"mlflow_missed": True}]

    assert backfill_trial_runs(parent, tmp_path / "work", trials, {"epochs": 3, "seed": 0}) == 1
    assert sorted(m.step for m in client.get_metric_history(run, "train_loss")) == [0, 1, 2]
    assert sorted(m.step for m in client.get_metric_history(run, "dev_score")) == [1, 2]


def test_a_backfill_that_fails_returns_the_warning_naming_the_trials_left_incomplete(store, tmp_path, monkeypatch):
    """The store failing the backfill (here a tracking server that is not there) and then taking the
    result: the result is written and the work folder deleted, so the runs stay incomplete for good;
    the search says so (it said nothing). A backfill that works returns no warning."""
    from types import SimpleNamespace

    import mlflow

    from optuna_studies import records
    from optuna_studies.finish import backfill_runs

    client, parent = store
    plan = SimpleNamespace(work=tmp_path / "work", out_dir=tmp_path / "out", space=SimpleNamespace(epochs=2),
                           constants={"seed": 0})
    history = [{"epoch": 0, "dev_score": 0.5}]
    for tid, n in (("ee_00004", 4), ("ff_00005", 5)):
        records.write_record(plan.work, _record(tid, n, history))
    said: list[str] = []
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri("http://127.0.0.1:9")  # the discard port: nothing answers
    warning = backfill_runs(plan, parent, said.append)
    assert warning.startswith("warning: MLflow failed to log what the trial runs missed") and said == []
    assert "trials 4, 5 stay incomplete" in warning and str(plan.out_dir / "trials.csv") in warning

    mlflow.set_tracking_uri(client.tracking_uri)
    assert backfill_runs(plan, parent, said.append) is None
    assert said == ["logged what the MLflow store missed while it was down, from the trial records: 2 trial runs"]
