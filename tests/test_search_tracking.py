"""What a reviewer reads of a search in MLflow, on a real sqlite store, with the driver's trial
callback fed Ray's own stub trials (no Ray, no training; the end-to-end search in
test_search_ray.py checks the same on real trials): trial runs named by their configuration, the
parent's task and study on every trial run (so the filter for a task's best trial finds it), the
seed and the code that ran, no Python ``None`` as a param, the parent's result under the trials'
metric names, and a registered version's description."""
from __future__ import annotations

import re
from pathlib import Path

import pytest


@pytest.fixture()
def store(tmp_path):
    """A parent run made as a search makes it (``open_parent_run``), in a fresh sqlite store."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from optuna_studies import tracking

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    try:
        parent = tracking.open_parent_run("ptv2-search", uri, "ptv2-trec-x", None,
                                          {"task": "trec", "seed": 0, "init": None},
                                          {"ptv2.kind": "search", "ptv2.task": "trec", "ptv2.study_name": "ptv2-trec-x"})
        yield MlflowClient(uri), uri, parent
    finally:
        mlflow.set_tracking_uri(None)


def _trial(number: int, prompt_len: int, lr: float, tid: str):
    from ray.tune.experiment import Trial

    config = {"optuna_number": number, "prompt_len": prompt_len, "lr": lr, "epochs": 2, "seed": 0, "task": "trec"}
    return Trial("__stub", config=config, trial_id=tid, stub=True)


def test_trial_runs_say_their_configuration_task_and_study_and_the_best_of_a_task_is_found(store, tmp_path):
    import mlflow

    from optuna_studies import tracking
    from optuna_studies.space import parse_space
    from optuna_studies.trial_log import TrialLog

    client, uri, parent = store
    space = parse_space({"prompt_len": [4, 16], "lr": {"low": 1e-3, "high": 1e-1}, "epochs": 2, "trials": 2})
    log = TrialLog(parent, tmp_path, space, uri)
    log.setup()
    first, second = _trial(0, 16, 0.034685224531294856, "t0"), _trial(1, 4, 0.00366, "t1")
    for trial in (first, second):
        log.on_trial_start(0, [first, second], trial)
    log.on_trial_recover(0, [first, second], second)  # its worker died: a run per attempt, named alike
    tracking.set_tags(log._runs["t0"], {"ptv2.best": "true"})  # as finish_search tags the best trial's run

    runs = {r.info.run_id: r for r in client.search_runs([client.get_run(parent).info.experiment_id],
                                                         f"tags.`mlflow.parentRunId` = '{parent}'")}
    assert sorted(r.info.run_name for r in runs.values()) == [
        "trial-0 (prompt_len 16, lr 0.0347)", "trial-1 (prompt_len 4, lr 0.00366)",
        "trial-1 (prompt_len 4, lr 0.00366) (retry 1)"]
    for run in runs.values():
        assert {k: run.data.tags.get(k) for k in ("ptv2.kind", "ptv2.task", "ptv2.study_name")} == {
            "ptv2.kind": "trial", "ptv2.task": "trec", "ptv2.study_name": "ptv2-trec-x"}, run.info.run_name
        assert run.data.params["seed"] == "0" and run.data.tags["ptv2.code_version"].startswith("0.1.0")
        assert re.fullmatch("[0-9a-f]{40}", run.data.tags["mlflow.source.git.commit"])  # the UI's "Source" commit
    mlflow.set_tracking_uri(uri)
    best = mlflow.search_runs(experiment_names=["ptv2-search"],
                              filter_string="tags.`ptv2.best` = 'true' and tags.`ptv2.task` = 'trec'")
    assert best["run_id"].tolist() == [log._runs["t0"]]


def test_the_parent_run_records_the_code_and_no_python_none(store):
    client, _, parent = store
    run = client.get_run(parent)
    assert run.data.params == {"task": "trec", "seed": "0", "init": "none"}
    assert run.data.tags["ptv2.code_version"].startswith("0.1.0+g") and "mlflow.source.git.commit" in run.data.tags


def test_the_parents_result_metrics_carry_the_trials_names():
    from optuna_studies.finish import result_metrics

    got = result_metrics("dev_score", 0.625, {"accuracy": 0.59, "macro_f1": 0.49, "score": 0.59, "loss": 1.2})
    assert got == {"best_score": 0.625, "best_test_score": 0.59, "dev_score": 0.625, "test_accuracy": 0.59,
                   "test_macro_f1": 0.49, "test_score": 0.59, "test_loss": 1.2}


def test_a_versions_description_says_its_configuration_scores_and_search():
    from components.registry.metadata import AdapterInfo, version_description
    from ptv2_core.tasks import load_task

    spec, _ = load_task("trec", max_train=1, max_eval=1)
    tags = {"task": "trec", "task_type": "sequence", "prompt_len": "16", "lr": "0.0347", "base_model": "minilm",
            "dev_accuracy": "0.625", "test_accuracy": "0.59375", "test_examples": "32", "split_seed": "0",
            "code_version": "0.1.0+gabc", "study": "ptv2-trec-x", "ptv2.search_run_id": "p1", "ptv2.trial_run_id": "t3",
            "ptv2.search_tracking_uri": "sqlite:///m.db"}
    text = version_description(AdapterInfo(Path("a"), {}, {}, spec, "trec", 0, 32, "sha256:x", [], tags))
    assert text.splitlines() == [
        "ptv2 adapter for task trec (sequence): prompt_len 16, lr 0.0347, base model minilm.",
        "dev accuracy 0.625, test accuracy 0.59375 on 32 test examples (split seed 0).",
        f"labels (6): {', '.join(spec.labels)}.", "code 0.1.0+gabc.", "study ptv2-trec-x.", "search run p1, trial run t3 (store sqlite:///m.db)."]


def test_a_registrations_run_leads_on_to_the_search_and_the_code():
    from components.registry.metadata import AdapterInfo, registration_run_tags
    from ptv2_core.tasks import load_task

    spec, _ = load_task("trec", max_train=1, max_eval=1)
    tags = {"task": "trec", "code_version": "0.1.0+gabc", "ptv2.search_run_id": "p1", "ptv2.trial_run_id": "t3",
            "ptv2.search_tracking_uri": "sqlite:///m.db", "ptv2.registration_id": "r", "study": "s"}
    got = registration_run_tags(AdapterInfo(Path("a"), {}, {}, spec, "trec", 0, 32, "sha256:x", [], tags))
    assert {k: v for k, v in got.items() if k != "mlflow.source.git.commit"} == {
        "ptv2.search_run_id": "p1", "ptv2.trial_run_id": "t3", "ptv2.search_tracking_uri": "sqlite:///m.db",
        "ptv2.code_version": "0.1.0+gabc"}
    assert re.fullmatch("[0-9a-f]{40}", got["mlflow.source.git.commit"])



def test_the_trials_table_gives_times_a_reviewer_reads(tmp_path):
    """trials.csv (an artifact of the parent run): start and end as UTC times, not seconds since 1970."""
    import csv

    from optuna_studies.plots import write_table

    record = {"number": 0, "prompt_len": 8, "lr": 0.0099, "status": "completed", "best_score": 0.53,
              "started": 1796636894.99, "ended": 1796636933.73, "duration_s": 38.739409, "mlflow_run_id": "r0"}
    write_table([record], tmp_path / "trials.csv")
    with open(tmp_path / "trials.csv") as f:
        (row,) = csv.DictReader(f)
    assert (row["started"], row["ended"], row["duration_s"]) == ("2026-12-07T09:48:14Z", "2026-12-07T09:48:53Z", "38.7")
    assert (row["lr"], row["mlflow_run_id"], row["failure"]) == ("0.0099", "r0", "")
