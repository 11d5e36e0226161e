"""Search on real Ray, real Optuna storage (sqlite, PostgreSQL) and real MLflow, in this process on
a local Ray shared by the module: end to end, failing and killed trials, the pipeline's step, MLflow
store failures and lost trial records. A tiny random BERT keeps each trial to seconds. Signals to
a search run as a process are in test_search_signals.py, clusters of processes in
test_search_cluster.py.
"""
from __future__ import annotations

import csv
import json
import os
import re
import secrets
import shutil
import signal
import threading
import time
import uuid
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from optuna_studies.search import run_search
from optuna_studies.study import default_study_name, delete_study, mask_url, open_storage, with_driver
from optuna_studies.work import work_dir
from ptv2_core.wording import count_of
from search_ray_support import (  # noqa: F401  (fixtures are used by name)
    SMALL, write_space, study_states, record_states, markers, ptv2_home, trace_dir, mlflow_uri, local_ray,
    mlflow_runs, trial_runs,
)
from test_search import tiny_model, tiny_pretrained  # noqa: F401  (module fixtures: a tiny BERT, a prompt of it)


def test_local_search_end_to_end_a_diverging_trial_fails_alone(local_ray, tiny_model, tmp_path, trace_dir,
                                                              mlflow_uri, monkeypatch):
    """lr 1e30 makes the loss NaN (checked in test_search.py): that trial ends FAIL, not retried,
    and the study still finishes with a best trial, its adapter and every artifact."""
    from ptv2_core.adapter import load_adapter

    space = write_space(tmp_path, prompt_len=[2, 4, 8], lr={"low": 1e-3, "high": 1e31, "log": True}, trials=3,
                        enqueue=[{"prompt_len": 2, "lr": 1e30}, {"prompt_len": 4, "lr": 1e-2}],
                        sampler={"n_startup_trials": 2, "seed": 0, "startup": "lhs", "length": "rank"})
    storage = f"sqlite:///{tmp_path}/optuna.db"
    before = {m["trial_id"] for m in markers(trace_dir)}
    result = run_search("trec", tiny_model, tmp_path / "out", space=space, storage=storage, mlflow_uri=mlflow_uri,
                        concurrency=2, **SMALL)

    by_lr = {r["lr"]: r for r in result.trials}
    assert len(result.trials) == 3
    assert by_lr[1e30]["status"] == "diverged" and by_lr[1e30]["retries"] == 0
    assert by_lr[1e-2]["status"] in ("completed", "pruned") and by_lr[1e-2]["best_score"] is not None
    ran = [m for m in markers(trace_dir) if m["trial_id"] not in before]
    assert sum(m["trial_id"] == by_lr[1e30]["ray_trial_id"] for m in ran) == 1  # not retried
    assert len(ran) == 3

    study = optuna.load_study(study_name=result.study_name, storage=storage)
    assert study_states(study) == record_states(result.trials)
    assert study_states(study)[by_lr[1e30]["ray_trial_id"]] == TrialState.FAIL
    assert study.best_value == pytest.approx(result.best_score)

    out = tmp_path / "out"
    assert sorted(os.listdir(out)) == ["adapter", "best.json", "length_lr.html", "length_lr.png", "length_score.png",
                                       "trials.csv", "trials_over_time.png"]
    best = json.loads((out / "best.json").read_text())
    # the study keeps the length's rank among [2, 4, 8] (sampler.length: rank) and the length itself
    # (trials tied on the best score go to the shortest prompt; Optuna's best_trial is the first of them)
    ties = [t for t in study.trials if t.state == TrialState.COMPLETE and t.value == pytest.approx(study.best_value)]
    assert ties and all([2, 4, 8][t.params["prompt_len_rank"]] == t.user_attrs["prompt_len"] for t in ties)
    assert (best["best_config"]["prompt_len"] == result.best_config["prompt_len"]
            == min(t.user_attrs["prompt_len"] for t in ties))
    # the best of the completed trials (the study's best_trial is a COMPLETE one); a pruned one only if none completed
    completed = [r["best_score"] for r in result.trials if r["status"] == "completed"]
    assert best["best_of"] == ("completed" if completed else "pruned: no trial completed")
    assert best["best_score"] == pytest.approx(max(completed or [r["best_score"] for r in result.trials
                                                                 if r["best_score"] is not None]))
    loaded = load_adapter(out / "adapter")
    assert loaded.model.prompt_config.prompt_len == result.best_config["prompt_len"]
    # the adapter is complete, as `ptv2 train --out` writes it: scored again on dev (the trial's own
    # score) and once on test, so `ptv2 register` takes it as it is
    metrics = json.loads((out / "adapter" / "metrics.json").read_text())
    assert metrics["dev"]["score"] == pytest.approx(best["best_score"], abs=1e-9)
    assert metrics["test"]["score"] == best["test"]["score"] == result.test["score"]
    assert (metrics["prompt_len"], metrics["study"]) == (result.best_config["prompt_len"], result.study_name)
    assert result.test == metrics["test"]
    # what produced them, as `ptv2 train` records it: best.json the best adapter's own provenance (not the
    # finishing code's), its metrics.json the seeds, the rows its trial trained on (the trial's record,
    # the rows trec gives with the search's seed and caps) and where the trial trained (a Ray worker's CPU)
    from ptv2_core.tasks import load_task
    from ptv2_core.tasks.splits import split_hash

    config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert best["provenance"] == config["provenance"] and best["provenance"]["code_version"].startswith("0.1.0")
    assert (metrics["train_seed"], metrics["data_seed"]) == (config["extra"]["train_config"]["seed"],) * 2 == (0, 0)
    spec, data = load_task("trec", seed=0, **SMALL)
    assert metrics["data_hashes"] == config["extra"]["search"]["data_hashes"] == {
        name: split_hash(spec, data[name]) for name in ("train", "dev", "test")}
    assert metrics["runtime"] == config["extra"]["search"]["runtime"] == {"device": "cpu", "torch_threads": 1}
    assert "init" not in config["extra"] and "init" not in metrics  # a cold search: no pre-trained prompt
    from components.registry.register import register_adapter
    from mlflow.tracking import MlflowClient
    version = register_adapter(out / "adapter", "trec", tracking_uri=mlflow_uri)
    tags = MlflowClient(mlflow_uri).get_model_version(version.name, str(version.version)).tags
    assert (tags["study"], tags["test_score"]) == (result.study_name, f"{metrics['test']['score']:.6g}")
    # the version links to the search that made it: the study's parent run and the best trial's run
    lineage = {"ptv2.search_run_id": result.parent_run_id, "ptv2.trial_run_id": best["trial"]["mlflow_run_id"],
               "ptv2.search_tracking_uri": mlflow_uri}
    assert {k: tags.get(k) for k in lineage} == lineage and (metrics["search_run_id"], metrics["trial_run_id"]) == (
        result.parent_run_id, best["trial"]["mlflow_run_id"])
    # an output of a search from before the adapter recorded them: the same tags, from best.json beside it,
    # through `ptv2 register`
    from conftest import run_cli as ptv2

    older = shutil.copytree(out, tmp_path / "older")
    (older / "adapter" / "metrics.json").write_text(json.dumps(
        {k: v for k, v in metrics.items() if k not in ("search_run_id", "trial_run_id", "search_tracking_uri")}))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    res = ptv2("register", "--adapter", str(older / "adapter"))
    assert res.returncode == 0 and f"registered ptv2-trec version {version.version + 1} " in res.stdout, res.stderr
    tags = MlflowClient(mlflow_uri).get_model_version("ptv2-trec", str(version.version + 1)).tags
    assert {k: tags.get(k) for k in lineage} == lineage
    from components.registry.lineage import lineage_tags  # but not from another search's best.json

    stale = json.loads((older / "adapter" / "metrics.json").read_text())
    assert lineage_tags(older / "adapter", stale) == lineage
    assert lineage_tags(older / "adapter", stale | {"trial": stale["trial"] + 1}) == {}
    assert lineage_tags(older / "adapter", stale | {"study": "another"}) == {}
    shutil.rmtree(older)
    # the work folder is gone and nothing else was left beside the output
    # (a sqlite study storage keeps the lock file it is created under beside it: schema_race.py)
    assert {p.name for p in tmp_path.iterdir()} - {"home"} == {"out", "space.yaml", "optuna.db", "optuna.db.lock"}

    client, parent, children = mlflow_runs(mlflow_uri, result.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.params["study_storage"] == storage
    assert (parent.data.params["startup"], parent.data.params["length_as"]) == ("lhs", "rank")  # how it sampled
    assert {k: v for k, v in parent.data.params.items() if k.startswith("fixed.")} == {"fixed.batch_size": "16"}
    assert parent.data.tags["ptv2.best_run_id"] == best["trial"]["mlflow_run_id"]
    assert len(children) == 3
    status = {float(c.data.params["lr"]): (c.info.status, c.data.tags["ptv2.status"]) for c in children}
    assert status[1e30] == ("FAILED", "diverged")
    best_runs = [c for c in children if c.data.tags.get("ptv2.best") == "true"]
    assert len(best_runs) == 1 and "dev_score" in best_runs[0].data.metrics
    # what a reviewer reads in MLflow: a trial's run named by its configuration, its task and study as tags (the
    # filter for a task's best trial found nothing), the seed and the code that ran; the parent's result under
    # the trials' metric names, with the data and base model it rests on
    for c in children:
        number, length, lr = c.data.params["optuna_number"], c.data.params["prompt_len"], float(c.data.params["lr"])
        assert c.info.run_name == f"trial-{number} (prompt_len {length}, lr {lr:.3g})"
        assert {k: c.data.tags.get(k) for k in ("ptv2.kind", "ptv2.task", "ptv2.study_name")} == {
            "ptv2.kind": "trial", "ptv2.task": "trec", "ptv2.study_name": result.study_name}
        assert c.data.params["seed"] == "0" and len(c.data.tags["mlflow.source.git.commit"]) >= 40
    import mlflow
    mlflow.set_tracking_uri(mlflow_uri)
    found = mlflow.search_runs(experiment_names=["ptv2-search"], filter_string=(
        f"tags.`ptv2.best` = 'true' and tags.`ptv2.task` = 'trec' and tags.`ptv2.study_name` = '{result.study_name}'"))
    assert found["run_id"].tolist() == [best["trial"]["mlflow_run_id"]]
    assert (parent.data.params["seed"], parent.data.params["init"]) == ("0", "none")  # not Python's "None"
    assert parent.data.tags["ptv2.code_version"].startswith("0.1.0+g") and "mlflow.source.git.commit" in parent.data.tags
    assert parent.data.tags["ptv2.test_data_hash"] == metrics["test_data_hash"]
    assert parent.data.tags["ptv2.base_fingerprint"] == loaded.config["base_model"]["fingerprint"]
    assert parent.data.metrics["dev_score"] == pytest.approx(best["best_score"])
    assert parent.data.metrics["test_score"] == pytest.approx(metrics["test"]["score"])
    registered = MlflowClient(mlflow_uri).get_model_version(version.name, str(version.version))
    described = registered.description
    source = MlflowClient(mlflow_uri).get_run(registered.run_id).data.tags  # the version's source run leads on
    assert (source["ptv2.search_run_id"], source["ptv2.trial_run_id"]) == (result.parent_run_id,
                                                                           best["trial"]["mlflow_run_id"])
    assert all(part in described for part in (f"prompt_len {metrics['prompt_len']}", "dev accuracy", "test accuracy",
                                               result.study_name, result.parent_run_id)), described
    artifacts = {a.path for a in client.list_artifacts(result.parent_run_id)}
    assert {"trials.csv", "length_lr.png", "length_lr.html", "length_score.png", "trials_over_time.png",
            "best.json"} <= artifacts


def test_a_search_whose_every_trial_fails_says_why_on_its_error_line(local_ray, tiny_model, tmp_path, mlflow_uri):
    """It said only "see .../trials.csv and the MLflow runs for why"."""
    from ptv2_core.errors import Ptv2Error

    import warnings

    space = write_space(tmp_path, prompt_len=[2, 4], lr={"low": 1e29, "high": 1e30, "log": True}, trials=2)
    with pytest.raises(Ptv2Error) as err, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_search("trec", tiny_model, tmp_path / "out", space=space, storage=f"sqlite:///{tmp_path}/optuna.db",
                   mlflow_uri=mlflow_uri, concurrency=2, **SMALL)
    # ASHA's cut-off over a rung holding only the failed trials' NaN printed numpy's "RuntimeWarning:
    # All-NaN slice encountered" and its source line on the command's stderr
    assert not [w for w in caught if "All-NaN" in str(w.message)], [str(w.message) for w in caught]
    message = str(err.value)
    assert "finished with a score (2 trials: 1 × diverged: loss became nan at epoch 1" in message, message
    assert message.count("diverged: loss became nan") == 2 and "trials.csv" in message
    assert not (tmp_path / "out").exists()
    # the parent run says why it is FAILED (it gave no reason), as its trial runs do
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_uri)
    (parent,) = client.search_runs([client.get_experiment_by_name("ptv2-search").experiment_id],
                                   f"attributes.run_name = '{default_study_name('trec', tiny_model, tmp_path / 'out')}'")
    assert parent.info.status == "FAILED" and parent.data.tags["ptv2.status"] == "failed"
    assert parent.data.tags["ptv2.failure"].startswith("no trial finished with a score (2 trials: ")

    # another study into the same --out (another --model or --study-name) has a work folder of its own:
    # the work folder was named after --out alone, and the new study deleted the first one's records
    # and adapters (a later --resume of it was refused, or ranked the other study's adapters)
    first = default_study_name("trec", tiny_model, tmp_path / "out")
    kept = sorted(p.name for p in (work_dir(tmp_path / "out", first) / "trials").glob("*.json"))
    assert len(kept) == 2
    with pytest.raises(Ptv2Error, match="finished with a score"):
        run_search("trec", tiny_model, tmp_path / "out", space=space, storage=f"sqlite:///{tmp_path}/optuna.db",
                   mlflow_uri=mlflow_uri, concurrency=2, trials=1, study_name="other", **SMALL)
    assert sorted(p.name for p in (work_dir(tmp_path / "out", first) / "trials").glob("*.json")) == kept
    assert len(list((work_dir(tmp_path / "out", "other") / "trials").glob("*.json"))) == 1
    # a study of the same name in another storage does not take the first one's work folder either
    with pytest.raises(Ptv2Error, match=f"holds the unfinished search of study '{first}' in sqlite:///{tmp_path}/"
                                        f"optuna.db, not of study '{first}' in sqlite:///{tmp_path}/other.db"):
        run_search("trec", tiny_model, tmp_path / "out", space=space, storage=f"sqlite:///{tmp_path}/other.db",
                   mlflow_uri=mlflow_uri, **SMALL)
    assert not (tmp_path / "other.db").exists()

    # a search interrupted under the old name of the work folder, .out.search (one per --out, no study.json):
    # its --resume said the work folder was gone. It is taken when its records are the study's trials
    ours, others, legacy = work_dir(tmp_path / "out", first), work_dir(tmp_path / "out", "other"), tmp_path / ".out.search"
    ours.rename(tmp_path / "aside")
    others.rename(legacy)
    (legacy / "study.json").unlink()
    with pytest.raises(Ptv2Error, match=f"has no work folder {ours}, and the old-style one of its --out, {legacy} .*holds "
                                        "1 of 1 trial record.* not this study's trials .* was left as it is"):
        run_search("trec", tiny_model, tmp_path / "out", space=space, storage=f"sqlite:///{tmp_path}/optuna.db",
                   mlflow_uri=mlflow_uri, resume=True, **SMALL)
    assert len(list((legacy / "trials").glob("*.json"))) == 1 and not ours.exists()  # nothing moved
    shutil.rmtree(legacy)
    (tmp_path / "aside").rename(legacy)
    (legacy / "study.json").unlink()
    lines: list[str] = []
    with pytest.raises(Ptv2Error, match="finished with a score \\(2 trials: "):  # its 2 records were read
        run_search("trec", tiny_model, tmp_path / "out", space=space, storage=f"sqlite:///{tmp_path}/optuna.db",
                   mlflow_uri=mlflow_uri, resume=True, echo=lines.append, **SMALL)
    assert f"took the work folder {legacy} (named before each study had its own) as {ours}" in lines, lines
    assert sorted(p.name for p in (ours / "trials").glob("*.json")) == kept and not legacy.exists()
    assert json.loads((ours / "study.json").read_text())["study_name"] == first


def test_worker_killed_mid_trial_is_retried(local_ray, tiny_model, tmp_path, trace_dir, mlflow_uri):
    """SIGKILL the process running the first trial once it has reported an epoch: Ray retries it
    from its first epoch and the search completes. The lost attempt's epochs count in the record's
    ``epochs_trained`` (compute), not in ``epochs_run`` (the attempt its score comes from), and each
    attempt has its own MLflow run (in one run, both attempts' epochs shared their steps)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_uri)
    before = {p.name for p in trace_dir.glob("*.json")}
    killed: dict = {}

    def trial_run_epochs(trial_id: str) -> int:  # epochs the driver logged for the trial's open run
        runs = client.search_runs(client.get_experiment_by_name("ptv2-search").experiment_id,
                                  f"tags.`ptv2.ray_trial_id` = '{trial_id}' and attributes.status = 'RUNNING'")
        return max((len(client.get_metric_history(r.info.run_id, "dev_score")) for r in runs), default=0)

    def kill_first_trial() -> None:
        deadline = time.time() + 120
        while time.time() < deadline:
            new = [p for p in trace_dir.glob("*.json") if p.name not in before]
            if new:
                m = json.loads(new[0].read_text())
                if trial_run_epochs(m["trial_id"]) >= 1:  # an epoch trained and logged: compute to lose
                    os.kill(m["pid"], signal.SIGKILL)
                    killed.update(m)
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_first_trial, daemon=True)
    killer.start()
    lines: list[str] = []
    # --resume on a study that has no trials yet starts it (so a retried pipeline step may always pass it);
    # 10 epochs (about 0.1 s each): time to see the first one logged and kill the trial before it ends
    result = run_search("trec", tiny_model, tmp_path / "out", space=write_space(tmp_path, epochs=10),
                        storage=f"sqlite:///{tmp_path}/optuna.db", mlflow_uri=mlflow_uri,
                        concurrency=1, max_failures=2, resume=True, echo=lines.append, **SMALL)
    assert lines[0].startswith("--resume: study ") and lines[0].endswith("has no trials yet; starting it"), lines
    killer.join(timeout=5)
    assert killed, "no trial started"
    record = next(r for r in result.trials if r["ray_trial_id"] == killed["trial_id"])
    assert record["retries"] == 1 and record["status"] in ("completed", "pruned")
    runs = [m for m in markers(trace_dir) if m["trial_id"] == killed["trial_id"]]
    assert len(runs) == 2 and killed["pid"] in {m["pid"] for m in runs}
    assert len(result.trials) == 2 and (tmp_path / "out" / "best.json").is_file()
    # one line as each trial starts (once, though the killed one ran twice) and one as it ends, counted
    # against the study's budget; one at a time, so in this order
    # (the retry line says how many epochs the lost attempt trained: one retry, so all the record's extra ones)
    expected = []
    for k, r in enumerate(sorted(result.trials, key=lambda r: r["number"]), 1):
        params = f"prompt_len {r['prompt_len']}, lr {r['lr']:.3g}"
        lost_epochs = r["epochs_trained"] - r["epochs_run"]
        expected += [f"trial {r['number']} started ({params})",
                     *[f"trial {r['number']}: worker lost after {count_of(lost_epochs, 'epoch')}, retrying ({n})"
                       for n in range(1, r["retries"] + 1)],
                     f"[{k}/2] trial {r['number']} ({params}): {r['status']}, dev_score {r['best_score']:.4f} "
                     f"after {count_of(r['epochs_run'], 'epoch')}"]
    assert [line for line in lines if line.startswith(("trial ", "["))] == expected, lines

    # the lost attempt's run: KILLED, its own curve; the retry's run: the record's, one point per epoch
    trial_runs = client.search_runs(client.get_experiment_by_name("ptv2-search").experiment_id,
                                    f"tags.`ptv2.ray_trial_id` = '{killed['trial_id']}'")
    assert len(trial_runs) == 2, [(r.info.run_name, r.info.status) for r in trial_runs]
    lost = next(r for r in trial_runs if r.info.run_id != record["mlflow_run_id"])
    final = next(r for r in trial_runs if r.info.run_id == record["mlflow_run_id"])
    assert (lost.info.status, lost.data.tags["ptv2.status"], lost.data.tags["ptv2.attempt"]) == ("KILLED", "lost", "1")
    assert (final.data.tags["ptv2.attempt"], final.data.tags["ptv2.retry_of_run"]) == ("2", lost.info.run_id)
    assert final.data.tags["ptv2.status"] == record["status"] and final.info.run_name.endswith("(retry 1)")
    assert final.data.params == lost.data.params and final.data.tags["mlflow.parentRunId"] == result.parent_run_id
    lost_steps = [m.step for m in client.get_metric_history(lost.info.run_id, "dev_score")]
    final_steps = [m.step for m in client.get_metric_history(final.info.run_id, "dev_score")]
    assert lost_steps and sorted(lost_steps) == list(range(1, len(lost_steps) + 1))
    assert sorted(final_steps) == list(range(1, record["epochs_run"] + 1)) == [h["epoch"] for h in record["history"]]
    # epochs_run: the attempt the score comes from; epochs_trained: the lost attempt's epochs too
    assert record["epochs_trained"] == record["epochs_run"] + len(lost_steps) > record["epochs_run"]
    other = next(r for r in result.trials if r is not record)
    assert other["retries"] == 0 and other["epochs_trained"] == other["epochs_run"] >= 1
    with open(tmp_path / "out" / "trials.csv") as f:
        row = next(r for r in csv.DictReader(f) if r["ray_trial_id"] == killed["trial_id"])
    assert int(row["epochs_trained"]) == record["epochs_trained"]
    best = json.loads((tmp_path / "out" / "best.json").read_text())
    winner = next(r for r in result.trials if r["number"] == best["trial"]["number"])
    assert best["trial"]["epochs_trained"] == winner["epochs_trained"] >= best["trial"]["epochs_run"]


def test_postgres_study_with_concurrent_trials(local_ray, tiny_model, tmp_path):
    url = os.environ.get("PTV2_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("PTV2_TEST_POSTGRES_URL is not set (.ci/run sets it to the local PostgreSQL)")
    from sqlalchemy.engine import make_url

    # a marker password (the test server trusts local connections, so any password is accepted), in
    # the study storage's URL and in the MLflow store's (a database of its own, bare postgresql://): no
    # file of the work folder may hold it (Tune pickled the searcher, storage URL and all, into
    # tuner.pkl and searcher-state-*.pkl, and the trial callback, tracking URI and all, into tuner.pkl);
    # looked at as each line is printed, the last one as the best adapter is scored, when the Tune
    # experiment is complete and the work folder not yet removed
    from test_registry_support import postgres_database

    databases = postgres_database(url)
    secret = f"pw-{secrets.token_hex(6)}"
    url = make_url(url).set(password=secret).render_as_string(hide_password=False)
    name = f"ptv2-test-{uuid.uuid4().hex[:10]}"
    work, seen, backwards = work_dir(tmp_path / "out", name), [], secret[::-1]

    def look(line: str) -> None:  # Tune pickles it (into tuner.pkl, with TrialLog): it keeps the password backwards
        files = [p for p in work.rglob("*") if p.is_file()]
        seen.append((line, {p.name for p in files}, [str(p) for p in files if backwards[::-1].encode() in p.read_bytes()]))

    mlflow_pg = make_url(next(databases)).set(password=secret).render_as_string(hide_password=False)
    try:
        result = run_search("trec", tiny_model, tmp_path / "out", space=write_space(tmp_path, trials=2),
                            storage=url, study_name=name, mlflow_uri=mlflow_pg,
                            concurrency=2, echo=look, **SMALL)
        assert seen[-1][0].startswith("scoring the best trial's adapter"), seen
        assert "tuner.pkl" in seen[-1][1] and any(n.startswith("searcher-state") for n in seen[-1][1]), seen[-1]
        assert [hit for _, _, hit in seen if hit] == [], seen
        study = optuna.load_study(study_name=name, storage=open_storage(url))
        assert study_states(study) == record_states(result.trials)
        assert {t.state for t in study.trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
        assert {t.user_attrs["ray_trial_id"] for t in study.trials} == {r["ray_trial_id"] for r in result.trials}
        a, b = sorted(result.trials, key=lambda r: r["started"])
        assert b["started"] < a["ended"], "the two trials did not run at the same time"
        _, parent, trial_runs = mlflow_runs(with_driver(mlflow_pg), result.parent_run_id)
        assert parent.data.params["study_storage"] == mask_url(url) == result.storage
        assert secret not in result.storage
        assert len(trial_runs) == len(result.trials) == 2  # the trial callback logged them there
    finally:
        try:
            delete_study(url, name)
        except KeyError:
            pass
        databases.close()  # drops the MLflow database


def test_pipeline_search_step_stages_its_inputs_in_the_shared_folder(local_ray, tiny_model, tiny_pretrained, tmp_path,
                                                                      mlflow_uri, monkeypatch):
    """With PTV2_SHARED_DIR (a multi-machine cluster), the search step copies the prepared task,
    the model folder (one in the image, outside the shared folder) and the pre-trained prompt
    into the shared folder, searches there, and cleans up. The task is named as a hub data set's
    task is (`hub:someone-intents` is task `someone-intents`; a name holding '/' is refused since
    2026-12-06, so no folder or study name can take it for a path separator)."""
    from components.data import prepare_data
    from components.search_step import search_task
    from test_pipeline_steps import user_task

    prepared = tmp_path / "data"
    prepare_data(["trec", user_task(tmp_path / "mine", "someone-intents")], prepared, max_train=48, max_eval=24)
    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setenv("PTV2_SHARED_DIR", str(shared))
    res = search_task(prepared, "someone-intents", tmp_path / "adapter", tmp_path / "plot.html", model=str(tiny_model),
                      lengths=[2, 4], lr_range=(3e-3, 3e-2), trials=2, epochs=1, concurrency=2, cpus_per_trial=0.5,
                      mlflow_uri=mlflow_uri, init_dir=tiny_pretrained)
    assert res["study"].startswith("ptv2-someone-intents-"), res["study"]
    from mlflow import MlflowClient

    params = MlflowClient(mlflow_uri).get_run(res["parent_run_id"]).data.params  # the pipeline's parameter, passed on
    assert (params["cpus_per_trial"], params["gpus_per_trial"]) == ("0.5", "0.0")
    assert params["model"] == str(tiny_model)  # the model the step was given, not the copy its trials read
    # the space: the packaged one it started from, and the file as run (a temporary one) as an artifact
    from optuna_studies.space import space_path

    assert params["space_file"].startswith(f"{space_path('someone-intents')} with the pipeline's"), params["space_file"]
    run_files = {a.path for a in MlflowClient(mlflow_uri).list_artifacts(res["parent_run_id"])}
    assert "someone-intents-space.yaml" in run_files, run_files
    space_doc = yaml.safe_load(Path(MlflowClient(mlflow_uri).download_artifacts(
        res["parent_run_id"], "someone-intents-space.yaml", str(tmp_path / "dl"))).read_text())
    assert space_doc["prompt_len"] == [2, 4] and space_doc["trials"] == 2
    # the plots and best.json name the model given too (the copy is a folder named 'model')
    plot = (tmp_path / "plot.html").read_text().replace("\\u002f", "/")  # plotly's JSON escapes '/'
    assert f"someone-intents / {Path(tiny_model).name}: length" in plot
    best = json.loads(Path(MlflowClient(mlflow_uri).download_artifacts(
        res["parent_run_id"], "best.json", str(tmp_path / "dl"))).read_text())
    assert best["model"] == str(tiny_model)
    task = Path(res["best_config"]["task"])  # what the trials read
    assert (shared / "ptv2-inputs") in task.parents and task.name == "task.yaml", task
    model = Path(res["best_config"]["model"])  # what the trials read: a copy in the work folder
    assert (shared / "ptv2-inputs") in model.parents and model.is_relative_to(task.parent.parent), model
    # the adapter handed over names the model the step was given: the copy goes with the step
    from ptv2_core.adapter import load_adapter

    loaded = load_adapter(tmp_path / "adapter")
    assert not model.exists() and loaded.config["base_model"]["name"] == str(tiny_model)
    assert loaded.config["extra"]["train_config"]["model"] == str(tiny_model)
    handed = json.loads((tmp_path / "adapter" / "metrics.json").read_text())
    assert handed["model"] == str(tiny_model)
    # and the pre-trained prompt given (its copy named the trials' adapters' prompt: it goes with the step)
    assert loaded.config["extra"]["init"] == handed["init"] == str(tiny_pretrained.resolve())
    assert loaded.config["extra"]["init_sha256"] == handed["init_sha256"]
    # and the runs that made it, for the registered version's tags: the parent run and its best trial's run
    trial_run = MlflowClient(mlflow_uri).get_run(handed["trial_run_id"])
    assert handed["search_run_id"] == res["parent_run_id"] == trial_run.data.tags["mlflow.parentRunId"]
    assert trial_run.data.tags["ptv2.best"] == "true"
    assert (tmp_path / "adapter" / "adapter_config.json").is_file() and res["n_trials"] == 2
    assert list((shared / "ptv2-inputs").iterdir()) == [] and list((shared / "ptv2-searches").iterdir()) == []
    # a failed search cleans up too: a pipeline run never resumes it (its work folder, with every trial's
    # checkpoint, stayed in the shared volume)
    from ptv2_core.errors import Ptv2Error

    with pytest.raises(Ptv2Error, match="finished with a score"):
        search_task(prepared, "trec", tmp_path / "adapter2", tmp_path / "plot2.html", model=str(tiny_model), lengths=[2],
                    lr_range=(1e29, 1e30), trials=1, epochs=1, concurrency=1, mlflow_uri=mlflow_uri)
    assert list((shared / "ptv2-inputs").iterdir()) == [] and list((shared / "ptv2-searches").iterdir()) == []


def test_an_mlflow_store_failing_mid_search_costs_the_trials_runs_not_the_search(local_ray, tiny_model, tmp_path):
    """The trial callbacks' MLflow calls (a trial's run opened, its epochs, its end) raised into Ray
    Tune's driver, which ended the whole search on a store's hiccup. The store fails here from the
    study's line (the parent run opened) until the last trial ended: every trial still runs and is
    recorded, best.json names the best, and stderr says it once; the store back as the search ends,
    the trials' runs are logged then from their records (``ptv2.backfilled``)."""
    import contextlib
    import io
    import sqlite3

    from mlflow.tracking import MlflowClient

    from pipelines.cli import main

    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    MlflowClient(uri).search_experiments()

    def rename(a: str, b: str) -> None:  # a real store failure: every MLflow call reads or writes the runs table
        with sqlite3.connect(db) as con:
            con.execute(f"ALTER TABLE {a} RENAME TO {b}")

    class Stderr(io.StringIO):  # the store fails as the study's line is printed, and is back after the last trial's
        def write(self, text: str) -> int:
            if text.startswith("study '"):
                rename("runs", "runs_gone")
            elif text.startswith("[2/2] "):
                rename("runs_gone", "runs")
            return super().write(text)

    err = Stderr()
    args = ["search", "--task", "trec", "--model", tiny_model, "--space", str(write_space(tmp_path, trials=2)),
            "--max-train", "48", "--max-eval", "48", "--concurrency", "1", "--storage", f"sqlite:///{tmp_path}/o.db",
            "--mlflow-uri", uri, "--out", str(tmp_path / "out")]
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_:
        main(args)
    text = err.getvalue()
    assert exit_.value.code == 0, text[-3000:]
    warned = [line for line in text.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 1 and "MLflow" in warned[0] and "no such table: runs" in warned[0], text[-3000:]
    assert "Traceback" not in text and "ERROR mlflow" not in text, text[-3000:]  # its one line, not MLflow's own
    assert [line.split("]")[0] for line in text.splitlines() if line.startswith("[")] == ["[1/2", "[2/2"], text
    best = json.loads((tmp_path / "out" / "best.json").read_text())
    assert best["trials"]["total"] == 2 and (tmp_path / "out" / "adapter" / "metrics.json").is_file()
    # the parent run, opened before and ended after the failure, has the search's result; the trials'
    # runs, which could not be opened while the store failed, were logged from the records at the end
    _, parent, children = mlflow_runs(uri, best["mlflow"]["parent_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags["ptv2.best_trial"] == str(best["trial"]["number"])
    assert len(children) == 2 and all(c.data.tags.get("ptv2.backfilled") == "true" for c in children), children
    assert all(c.info.status == "FINISHED" and "dev_accuracy" in c.data.metrics for c in children), children
    with open(tmp_path / "out" / "trials.csv") as f:
        ids = [r["mlflow_run_id"] for r in csv.DictReader(f)]
    assert sorted(ids) == sorted(c.info.run_id for c in children) and best["trial"]["mlflow_run_id"] in ids


def test_a_search_run_again_on_its_interrupted_trial_is_told_to_resume_and_the_resume_runs_it(
        local_ray, tiny_model, tmp_path, mlflow_uri):
    """A search stopped or killed while its trial ran leaves the trial RUNNING in the study. The same
    command without --resume said "none with a score: start a new search", as if it had failed; it
    names --resume now, and the same command with --resume runs the trial again and finishes."""
    from conftest import run_cli

    from optuna_studies.params import distributions
    from optuna_studies.plan import plan_search
    from optuna_studies.search import trial_settings
    from optuna_studies.study import prepare_study

    space, storage, out = write_space(tmp_path, trials=1, epochs=1), f"sqlite:///{tmp_path}/optuna.db", tmp_path / "out"
    plan = plan_search("trec", tiny_model, out, trials=None, space=space, storage=storage, init=None, max_train=48,
                       max_eval=48, epochs=None, concurrency=1, cpus_per_trial=1, gpus_per_trial=0, overwrite=False,
                       study_name=None, seed=0, mlflow_uri=mlflow_uri)
    study = prepare_study(open_storage(storage), plan.study_name, plan.space, False, trial_settings(plan)).study
    study.ask(distributions(plan.space))  # as the stopped search's searcher asked it: RUNNING
    args = ["search", "--task", "trec", "--model", tiny_model, "--space", str(space), "--max-train", "48",
            "--max-eval", "48", "--concurrency", "1", "--storage", storage, "--mlflow-uri", mlflow_uri, "--out", str(out)]
    refused = run_cli(*args)
    assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [
        f"error: study '{plan.study_name}' has 1 trial, none ended: the search was stopped or killed while it ran; run "
        "the same command with --resume to run it again and go on, or start a new search with --study-name NAME or "
        "another --out (the study keeps its trials)"], refused.stderr[-3000:]
    assert not out.exists() and [t.state for t in optuna.load_study(study_name=plan.study_name, storage=storage).trials
                                 ] == [TrialState.RUNNING]  # untouched
    resumed = run_cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming study '{plan.study_name}': 0 of 1 trials done, 1 interrupted trial to run again" in resumed.stderr
    assert json.loads((out / "best.json").read_text())["trials"]["total"] == 1


@pytest.mark.parametrize("loss", ["deleted and garbled", "no trials folder"])
def test_a_finished_trial_without_its_record_is_run_again_by_resume(local_ray, tiny_model, tmp_path, mlflow_uri, loss):
    """Ray Tune tells the searcher that a trial ended (the study has it COMPLETE or PRUNED) before the
    callback that keeps its adapter and writes its record runs. A driver killed between the two (SIGKILL,
    a pod evicted), a copy that failed, or a record a crash cut short left a finished trial without a
    record: the search ranked only the records, so its output dropped the trial, even the best one, and
    --resume counted it as done and never ran it again (a garbled record was a JSONDecodeError traceback).
    Here records go as the last trial ends: the first trial's record deleted and the second's cut short,
    the third's kept (one search for both kinds of loss: each search costs a Ray worker's start), or the
    only trial's record and its folder. The search says so instead of writing an output without them,
    and --resume runs them again, counted, and ranks them with the kept trial."""
    from ptv2_core.errors import Ptv2Error

    trials = 1 if loss == "no trials folder" else 3
    out = tmp_path / "out"
    study = default_study_name("trec", tiny_model, out)
    folder = work_dir(out, study) / "trials"
    lost: list[dict] = []

    def lose(line: str) -> None:  # the last trial's record is written as its line is printed
        if line.startswith(f"[{trials}/{trials}] "):
            paths = sorted(folder.glob("*.json"), key=lambda p: json.loads(p.read_text())["number"])
            lost.extend(json.loads(p.read_text()) | {"path": p} for p in paths[:max(trials - 1, 1)])
            if loss == "no trials folder":  # the first trial's end: no record, nor its folder, written
                shutil.rmtree(folder)
            else:
                paths[0].unlink()  # a record never written
                paths[1].write_text(paths[1].read_text()[:40])  # a record a crash cut short

    kw = dict(space=write_space(tmp_path, trials=trials, epochs=1), storage=f"sqlite:///{tmp_path}/optuna.db",
              mlflow_uri=mlflow_uri, concurrency=1, **SMALL)
    with pytest.raises(Ptv2Error) as err:
        run_search("trec", tiny_model, out, echo=lose, **kw)
    numbers = [r["number"] for r in lost]
    them = "it" if len(lost) == 1 else "them"
    kept = "its score and adapter" if len(lost) == 1 else "their scores and adapters"
    named = f"trial{'s' * (len(lost) > 1)} {', '.join(map(str, numbers))}"
    assert str(err.value) == (
        f"{named} of study '{study}' ended, but {work_dir(out, study)} holds no readable record of {them} "
        f"({kept}, which the search ranks): run the same command with --resume to run {them} again and "
        "finish the search"), str(err.value)
    assert not out.exists()

    lines: list[str] = []
    result = run_search("trec", tiny_model, out, resume=True, echo=lines.append, **kw)
    rerunning = count_of(len(lost), "interrupted trial")
    assert f"resuming study '{study}': {trials - len(lost)} of {trials} trials done, {rerunning} to run again" \
        in lines, lines
    assert (f"{named} ended in the study, but {work_dir(out, study)} holds no readable record of {them} "
            f"(the search stopped before it kept {'its adapter' if len(lost) == 1 else 'their adapters'}): "
            f"{'it runs' if len(lost) == 1 else 'they run'} again") in lines, lines
    if loss != "no trials folder":
        assert [line for line in lines if line.startswith("warning: ")] == [
            f"warning: the trial record {lost[1]['path']} is not valid JSON (a crash as it was written?): it is left "
            "out, and a finished trial without a record is run again"], lines
    reruns = optuna.load_study(study_name=study, storage=kw["storage"]).trials[trials:]
    assert sorted(t.user_attrs["ptv2_retry_of"] for t in reruns) == numbers
    assert {t.state for t in reruns} == {TrialState.COMPLETE}
    for rerun in reruns:
        again = next(r for r in result.trials if r["number"] == rerun.number)
        was = next(r for r in lost if r["number"] == rerun.user_attrs["ptv2_retry_of"])
        assert (again["prompt_len"], again["lr"]) == (was["prompt_len"], was["lr"])
    assert any(line.startswith(f"[{trials}/{trials}] trial {reruns[-1].number} ") for line in lines), lines
    # the reruns are ranked with the kept trials: best.json counts and considers them
    best = json.loads((out / "best.json").read_text())
    assert best["trials"]["total"] == trials == len(result.trials)
    assert {r["number"] for r in result.trials} == set(range(trials + len(lost))) - set(numbers)
    assert best["best_score"] == max(r["best_score"] for r in result.trials)


def test_an_mlflow_store_failing_as_the_search_ends_is_finished_by_resume(local_ray, tiny_model, tmp_path, trace_dir):
    """The store fails after the last trial ended, as the search logs its result on the parent run
    (it was MLflow's traceback): one error: line naming --resume, exit 2, nothing in --out, the
    trials kept; once the store works again, --resume writes best.json and the adapter and logs the
    result on the same parent run, running no trial again."""
    import contextlib
    import io
    import sqlite3

    from mlflow.tracking import MlflowClient

    from optuna_studies.plots import FILES
    from pipelines.cli import main

    db, out = tmp_path / "mlflow.db", tmp_path / "out"
    uri = f"sqlite:///{db}"
    MlflowClient(uri).search_experiments()

    def rename(a: str, b: str) -> None:  # a real store failure: every MLflow call reads or writes the runs table
        with sqlite3.connect(db) as con:
            con.execute(f"ALTER TABLE {a} RENAME TO {b}")

    class Stderr(io.StringIO):  # the store fails as the last trial's end is printed: every trial ran
        def write(self, text: str) -> int:
            if text.startswith("[2/2] "):
                rename("runs", "runs_gone")
            return super().write(text)

    args = ["search", "--task", "trec", "--model", tiny_model, "--space", str(write_space(tmp_path, epochs=1)),
            "--max-train", "48", "--max-eval", "48", "--concurrency", "1", "--storage", f"sqlite:///{tmp_path}/o.db",
            "--mlflow-uri", uri, "--out", str(out)]
    err = Stderr()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_:
        main(args)
    text, lines = err.getvalue(), err.getvalue().strip().splitlines()
    assert exit_.value.code == 2, text[-3000:]
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], text[-3000:]
    study = default_study_name("trec", tiny_model, out)
    assert lines[-1] == (f"error: the MLflow store failed to log the search's result (no such table: runs) after every "
                         f"trial of study '{study}' ran; the trials are kept (in the study and {work_dir(out, study)}): "
                         "once the store works again, run the same command with --resume to finish the search without "
                         "running any trial again"), lines[-1]
    assert "Traceback" not in text and "ERROR mlflow" not in text, text[-3000:]
    assert not out.exists()
    assert len(list((work_dir(out, study) / "trials").glob("*.json"))) == 2  # the trials' records, kept
    (parent_id,) = re.findall(r"MLflow run (\w+)", text)
    ran = len(markers(trace_dir))

    # a --resume while the store still fails: its one line too (it was MLflow's traceback as the parent run opened)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_:
        main([*args, "--resume"])
    lines = err.getvalue().strip().splitlines()
    assert exit_.value.code == 2 and [line for line in lines if line.startswith("error:")] == lines[-1:], lines
    assert lines[-1] == ("error: the MLflow store failed to open the search's run (no such table: runs): no trial ran; "
                         "once the store works again, run the same command again"), lines
    assert "Traceback" not in err.getvalue() and len(markers(trace_dir)) == ran and not out.exists()

    rename("runs_gone", "runs")  # the store works again
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_:
        main([*args, "--resume"])
    text = err.getvalue()
    assert exit_.value.code == 0, text[-3000:]
    assert f"resuming study '{study}': 2 of 2 trials done" in text and "scoring the best trial's adapter" in text
    assert len(markers(trace_dir)) == ran and not re.search(r"^(\[|trial \d+ started)", text, re.M), text  # none ran
    best = json.loads((out / "best.json").read_text())
    assert best["trials"]["total"] == 2 and (out / "adapter" / "metrics.json").is_file()
    assert best["mlflow"]["parent_run_id"] == parent_id and not work_dir(out, study).exists()
    client, parent, children = mlflow_runs(uri, parent_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["ptv2.best_trial"] == str(best["trial"]["number"])
    assert {a.path for a in client.list_artifacts(parent_id)} >= set(FILES) | {"best.json"}
    assert sorted(c.info.status for c in children) == ["FINISHED", "FINISHED"]


def test_a_trial_run_whose_end_mlflow_missed_is_ended_as_its_trial_when_the_search_finishes(local_ray, tiny_model,
                                                                                           tmp_path):
    """The store fails from the second trial's start (its run opened) to its end: the trial callbacks
    skip its epochs and its end, with a warning, and the search finishes. Its run stayed RUNNING under
    a FINISHED parent run (stale runs were ended only when a search did not finish); it is ended as
    its trial did, FINISHED and tagged with the trial's status."""
    import contextlib
    import io
    import sqlite3

    from mlflow.tracking import MlflowClient

    from pipelines.cli import main

    db, out = tmp_path / "mlflow.db", tmp_path / "out"
    uri = f"sqlite:///{db}"
    MlflowClient(uri).search_experiments()

    def rename(a: str, b: str) -> None:
        with sqlite3.connect(db) as con:
            con.execute(f"ALTER TABLE {a} RENAME TO {b}")

    class Stderr(io.StringIO):
        started = 0

        def write(self, text: str) -> int:
            if re.match(r"trial \d+ started", text):
                self.started += 1
                if self.started == 2:
                    rename("runs", "runs_gone")
            elif text.startswith("[2/2] "):
                rename("runs_gone", "runs")
            return super().write(text)

    err = Stderr()
    args = ["search", "--task", "trec", "--model", tiny_model, "--space", str(write_space(tmp_path, epochs=1)),
            "--max-train", "48", "--max-eval", "48", "--concurrency", "1", "--storage", f"sqlite:///{tmp_path}/o.db",
            "--mlflow-uri", uri, "--out", str(out)]
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_:
        main(args)
    text = err.getvalue()
    assert exit_.value.code == 0 and err.started == 2, text[-3000:]
    assert len([line for line in text.splitlines() if line.startswith("warning: MLflow failed")]) == 1, text[-3000:]
    best = json.loads((out / "best.json").read_text())
    with open(out / "trials.csv") as f:
        trials = {r["mlflow_run_id"]: r["status"] for r in csv.DictReader(f)}
    _, parent, children = mlflow_runs(uri, best["mlflow"]["parent_run_id"])
    assert parent.info.status == "FINISHED" and len(children) == 2 and set(trials) == {c.info.run_id for c in children}
    assert {c.info.run_id: (c.info.status, c.data.tags["ptv2.status"]) for c in children} == {
        run: ("FINISHED", status) for run, status in trials.items()}


def test_a_retried_trial_whose_retry_run_mlflow_missed_keeps_its_run(tmp_path):
    """The store fails as a lost worker's trial is retried (its next attempt's run cannot open): the
    callback lost the trial's run id, so its run stayed RUNNING until it was ended as 'interrupted'
    (and the record named no run). It keeps the run: the trial's end ends it. The warning gives the
    database's own reason, not SQLAlchemy's wrapper ("(sqlite3.OperationalError) ...")."""
    import sqlite3

    import mlflow
    from mlflow.tracking import MlflowClient
    from ray.tune.experiment import Trial

    from optuna_studies.space import parse_space
    from optuna_studies.tracking_setup import use_mlflow
    from optuna_studies.trial_log import TrialLog

    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    lines: list[str] = []
    try:
        use_mlflow("retry", uri)
        client = MlflowClient(uri)
        parent = client.create_run(mlflow.get_experiment_by_name("retry").experiment_id).info.run_id
        space = parse_space({"prompt_len": [4, 8], "lr": {"low": 1e-3, "high": 1e-1}, "epochs": 1, "trials": 1})
        log = TrialLog(parent, tmp_path, space, uri, echo=lines.append)
        log.setup()
        trial = Trial("__stub", config={"optuna_number": 0, "prompt_len": 4, "lr": 0.01, "epochs": 1}, trial_id="t1",
                      stub=True)
        log.on_trial_start(0, [trial], trial)
        (run_id,) = log._runs.values()
        with sqlite3.connect(db) as con:
            con.execute("ALTER TABLE runs RENAME TO runs_gone")
        log.on_trial_recover(0, [trial], trial)
        with sqlite3.connect(db) as con:
            con.execute("ALTER TABLE runs_gone RENAME TO runs")
        log.on_trial_error(0, [trial], trial)
    finally:
        mlflow.set_tracking_uri(None)
    assert lines[1].startswith("warning: MLflow failed to open trial 0's run for its retry (no such table: runs); "), lines
    run = client.get_run(run_id)
    assert (run.info.status, run.data.tags["ptv2.status"]) == ("FAILED", "error")
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "trials").glob("*.json")]
    assert record["mlflow_run_id"] == run_id and record["retries"] == 1


def test_a_search_without_a_scored_trial_whose_store_fails_is_not_told_to_resume(tmp_path):
    """No trial scored, and the store fails as the trials' table is logged: the error advised
    --resume once the store works, which can only end in "no trial finished with a score". It is
    that error, with the store's failure beside it."""
    import sqlite3

    import mlflow
    from mlflow.tracking import MlflowClient
    from ray.tune.experiment import Trial

    from optuna_studies.finish import finish_search
    from optuna_studies.plan import SearchPlan
    from optuna_studies.space import parse_space
    from optuna_studies.tracking_setup import use_mlflow
    from optuna_studies.trial_log import TrialLog
    from ptv2_core.errors import Ptv2Error

    db, work = tmp_path / "mlflow.db", tmp_path / "work"
    uri = f"sqlite:///{db}"
    space = parse_space({"prompt_len": [4, 8], "lr": {"low": 1e-3, "high": 1e-1}, "epochs": 1, "trials": 1})
    plan = SearchPlan("trec", "trec", "m", space, f"sqlite:///{tmp_path}/o.db", "s", tmp_path / "out", work, None,
                      1, 0, 1, {"max_eval": 8})
    try:
        use_mlflow("noscore", uri)
        parent = MlflowClient(uri).create_run(mlflow.get_experiment_by_name("noscore").experiment_id).info.run_id
        log = TrialLog(parent, work, space, uri)
        log.setup()
        trial = Trial("__stub", config={"optuna_number": 0, "prompt_len": 4, "lr": 0.01, "epochs": 1}, trial_id="t1",
                      stub=True)
        log.on_trial_start(0, [trial], trial)
        log.on_trial_error(0, [trial], trial)
        with sqlite3.connect(db) as con:
            con.execute("ALTER TABLE runs RENAME TO runs_gone")
        with pytest.raises(Ptv2Error) as err:
            finish_search(plan, parent, uri, lambda line: None)
    finally:
        mlflow.set_tracking_uri(None)
    message = str(err.value)
    assert message.startswith("no trial of study 's' finished with a score (1 trial: 1 × error: the trial's worker "
                              "failed)"), message
    assert f"see {work / 'artifacts' / 'trials.csv'}" in message, message
    assert message.endswith("the MLflow runs (the store failed to log the table on the search's run: no such table: "
                            "runs)"), message
    assert "--resume" not in message, message


def test_a_ray_client_init_failure_keeps_the_servers_reason_on_its_one_line():
    """Ray Client's init failure is a header line and the server's traceback: the error line keeps
    the traceback's last line, the reason (it said only "Initialization failure from server:")."""
    from optuna_studies.ray_session import one_line

    tb = ("Traceback (most recent call last):\n  File \"proxier.py\", line 772, in Datapath\n"
          "    raise RuntimeError(\nRuntimeError: Proxy failed to Connect to backend! Check `ray_client_server.err`")
    e = ConnectionAbortedError(f"Initialization failure from server:\n{tb}")
    assert one_line(e) == ("Initialization failure from server: RuntimeError: Proxy failed to Connect to backend! "
                           "Check `ray_client_server.err`")
    assert one_line(ConnectionError("Could not find any running Ray instance.\nPlease specify the address")) == \
        "Could not find any running Ray instance."
    assert one_line(RuntimeError("")) == "RuntimeError"


def test_a_ray_client_server_dying_as_it_starts_is_told_apart_from_other_join_failures():
    """The head's per-connection server dying as it starts (ray-project/ray#63202) reaches the client
    in two forms, both retried: the proxier saw it exit, or it died while the proxier read its command
    line (psutil.ZombieProcess, which failed the suite's Ray Client test in CI). Other init failures
    are not retried."""
    from optuna_studies.ray_session import client_server_died

    def init_failure(last: str) -> ConnectionAbortedError:
        return ConnectionAbortedError("Initialization failure from server:\nTraceback (most recent call last):\n"
                                      "  File \"proxier.py\", line 765, in Datapath\n" + last)

    assert client_server_died(init_failure("RuntimeError: Starting Ray client server failed. See "
                                           "ray_client_server_23000.err for detailed logs."))
    assert client_server_died(init_failure("psutil.ZombieProcess: PID still exists but it's a zombie (pid=26283)"))
    assert not client_server_died(init_failure("RuntimeError: Proxy failed to Connect to backend! Check "
                                               "`ray_client_server.err`"))
    assert not client_server_died(ConnectionError("ray client connection timeout"))


# The tests on one multi-node cluster share it (starting one takes ~10 s on 2 cores); they come
# last, so that it is up only while they run.
