"""How a search ends: a finished one's result (the best trial's record, scored on its dev and test
splits, into ``best.json`` and the adapter in ``--out``, the study's table and pictures, all logged
on the parent run), an unfinished one's clean-up (its trial runs left RUNNING, the finished trials'
pictures), and the end of its parent run. ``search.py`` runs the search up to here."""
from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ptv2_core.errors import Ptv2Error
from ptv2_core.wording import count_of
from optuna_studies import records, settings, tracking
from optuna_studies.best_metrics import best_metrics
from optuna_studies.output import write_output
from optuna_studies.plan import SearchPlan, task_metric
from optuna_studies.plots import FILES as ARTIFACTS
from optuna_studies.plots import write_artifacts
from optuna_studies.quiet import quiet_logger
from optuna_studies.store_guard import mlflow_guard, quietly, why
from optuna_studies.tracking_http import HEALTH_TIMEOUT_S, answers
from optuna_studies.study import mask_url


@dataclass
class SearchResult:
    """What a finished search found: the best trial's config and score, its adapter in the
    output folder, every trial's record, and where the study and its MLflow runs are."""

    best_config: dict[str, Any]
    best_score: float
    adapter_dir: Path
    trials: list[dict[str, Any]]
    parent_run_id: str
    study_name: str = ""
    storage: str = ""  # masked: no password
    out_dir: Path = field(default_factory=Path)
    test: dict[str, Any] = field(default_factory=dict)  # the best adapter's test metrics (its metrics.json)


def finish_search(plan: SearchPlan, parent: str, mlflow_uri: str | None, say: Callable[[str], None],
                  down: str | None = None) -> SearchResult:
    """Pick the best trial, log the study's artifacts, write the output folder. ``down``: why the
    MLflow store is known to be down (``server_down``): its error at once, without calling it."""
    trials = records.read_records(plan.work)
    best = records.best_record(trials, plan.space.mode)
    art = _draw(plan, trials)
    if best is None:  # the error to tell, whether the store takes the table or not (a --resume cannot score)
        reasons = records.failure_summary(trials)
        # why the parent run ends FAILED, on the run itself (a reviewer saw FAILED and no reason); best
        # effort, as _runs_or_why: the search's own error is the one raised
        if down is None:
            quietly(tracking.set_tags, parent, {"ptv2.status": "failed",
                                                "ptv2.failure": f"no trial finished with a score ({reasons})"[:4000]})
        runs = (_runs_or_why(parent, art) if down is None else
                f"the MLflow runs (the store failed to log the table on the search's run: {down})")
        raise Ptv2Error(f"no trial of study '{plan.study_name}' finished with a score ({reasons}): "
                        f"see {art / 'trials.csv'} and {runs}")
    with mlflow_guard(*_result_failed(plan), down):
        tracking.log_artifacts(parent, art)
    best_config = {k: v for k, v in plan.constants.items() if k not in ("metric", "mode", "device")} | {
        "prompt_len": best["prompt_len"], "lr": best["lr"], "best_epoch": best["best_epoch"]}
    doc = {
        "task": plan.task, "task_name": plan.task_name, "model": plan.shown_model, "metric": plan.space.metric,
        "direction": plan.space.direction, "best_score": best["best_score"], "best_config": best_config,
        "trial": {k: best.get(k) for k in ("number", "ray_trial_id", "status", "mlflow_run_id", "epochs_run",
                                                "epochs_trained")},
        "study": {"name": plan.study_name, "storage": mask_url(plan.storage)},
        "mlflow": {"parent_run_id": parent, "tracking_uri": mask_url(settings.mlflow_tracking_uri(mlflow_uri))},
        "trials": _counts(trials), "space": plan.space.to_dict(),
        # the best is a completed trial; a pruned one only when none completed (its score is after fewer epochs)
        "best_of": "completed" if best["status"] == "completed" else "pruned: no trial completed",
    }
    if best["status"] != "completed":
        say(f"note: no trial ran all {plan.space.epochs} epochs; the best is trial {best['number']}, "
            f"pruned after {count_of(best.get('epochs_run') or 0, 'epoch')}")
    say(f"scoring the best trial's adapter (trial {best['number']}) on its dev and test splits")
    metrics = best_metrics(Path(best["adapter"]), best, plan.task, plan.study_name, plan.constants["max_eval"])
    # the runs that made the adapter, in the adapter itself: a registered version links to them
    metrics |= {"search_run_id": parent, "trial_run_id": best.get("mlflow_run_id"),
                "search_tracking_uri": doc["mlflow"]["tracking_uri"]}
    (Path(best["adapter"]) / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    doc["test"] = metrics["test"]
    # the code and libraries that trained the best adapter, as its adapter_config.json records them (a
    # resumed search's trials may be another code's than the code finishing it)
    doc |= _provenance(Path(best["adapter"]))
    (art / "best.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    with mlflow_guard(*_result_failed(plan)):
        tracking.log_artifacts(parent, art)
        if best.get("mlflow_run_id"):
            tracking.set_tags(best["mlflow_run_id"], {"ptv2.best": "true"})
        tracking.set_tags(parent, {"ptv2.status": "finished", "ptv2.best_trial": best["number"], "ptv2.best_run_id": best.get("mlflow_run_id"),
                                   "ptv2.best_prompt_len": best["prompt_len"], "ptv2.best_lr": best["lr"]}
                          | _fingerprints(Path(best["adapter"]), metrics))
        tracking.log_epoch(parent, result_metrics(plan.space.metric, best["best_score"], metrics["test"]), 0)
    out = write_output(plan.out_dir, doc, Path(best["adapter"]), {name: art / name for name in ARTIFACTS})
    shutil.rmtree(plan.work, ignore_errors=True)
    for r in trials:  # the work folder is gone: only the best adapter remains, in the output
        r["adapter"] = str(out / "adapter") if r is best else None
    return SearchResult(best_config, best["best_score"], out / "adapter", trials, parent, plan.study_name,
                        mask_url(plan.storage), out, metrics["test"])


def result_metrics(metric: str, best_score: float, test: dict[str, Any]) -> dict[str, float]:
    """The parent run's metrics: ``best_score`` and ``best_test_score``, and the best adapter's scores
    under the names its trial runs use (the space's ``metric``, e.g. ``dev_score``, and ``test_<name>``
    for each test metric), so the parent sits in the same columns of MLflow's runs table and charts as
    its trials (it had only ``best_score``, a name no trial logs)."""
    named = {metric: best_score} | {f"test_{k}": v for k, v in test.items()}
    return {"best_score": best_score, "best_test_score": test["score"]} | named


def _fingerprints(adapter: Path, metrics: dict[str, Any]) -> dict[str, str]:
    """What the best adapter was trained and scored on, as tags of the parent run: the base model's
    weights (``ptv2.base_fingerprint``) and the test split's rows (``ptv2.test_data_hash``), as a
    registered version records them (``base_fingerprint``, ``data_hash``)."""
    from ptv2_core.adapter import read_adapter_config

    base = read_adapter_config(adapter).get("base_model") or {}
    tags = {"ptv2.base_model": base.get("name"), "ptv2.base_revision": base.get("revision"),
            "ptv2.base_fingerprint": base.get("fingerprint"),
            "ptv2.test_data_hash": metrics.get("test_data_hash")}
    return {k: str(v) for k, v in tags.items() if v}


def _provenance(adapter: Path) -> dict[str, Any]:
    """``{"provenance": …}`` of the best adapter's adapter_config.json (code version, commit,
    libraries); empty for an adapter trained before adapters recorded it."""
    from ptv2_core.adapter import read_adapter_config

    prov = read_adapter_config(adapter).get("provenance")
    return {"provenance": prov} if isinstance(prov, dict) else {}


def _result_failed(plan: SearchPlan) -> tuple[str, str]:
    """What a store failing as the search logs its result says: the trials are kept, in the study
    and the work folder, and a --resume logs and writes the result without running any of them."""
    return ("log the search's result", f" after every trial of study '{plan.study_name}' ran; the trials are kept (in "
            f"the study and {plan.work}): once the store works again, run the same command with --resume to finish "
            "the search without running any trial again")


def _runs_or_why(parent: str, art: Path) -> str:
    """The trials' table and pictures of a search that scored no trial, on its parent run: where else
    to look, "the MLflow runs", or why the store failed to take them."""
    try:
        with quiet_logger("mlflow", logging.CRITICAL):
            tracking.log_artifacts(parent, art)
    except Exception as e:  # noqa: BLE001 (any store or client error: the search's own error is told)
        return f"the MLflow runs (the store failed to log the table on the search's run: {why(e)})"
    return "the MLflow runs"


def _counts(trials: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {"total": len(trials)}
    for r in trials:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return counts


def _short_model(model: str) -> str:
    """A model as the pictures' titles name it: a folder's or hub name's last part, a commit it is
    pinned to by its first 7 digits (``tiny@a1b2c3d``)."""
    from ptv2_core.model_ref import is_commit_sha, split_model_ref

    try:
        name, revision = split_model_ref(model)
    except Ptv2Error:  # a title is no reason to fail a finished search
        return Path(model).name
    return Path(name).name + (f"@{revision[:7]}" if is_commit_sha(revision) else
                              f"@{revision}" if revision else "")


def _draw(plan: SearchPlan, trials: list[dict]) -> Path:
    """The study's table and pictures of ``trials`` in the work folder's ``artifacts/``; returns it."""
    art = plan.work / "artifacts"
    title = f"{plan.task_name} / {_short_model(plan.shown_model)}"
    write_artifacts(trials, art, plan.space.metric, plan.space.mode, title, plan.space.prompt_lens,
                    task_metric=task_metric(plan.task))
    return art


def log_stopped_artifacts(plan: SearchPlan, parent: str) -> bool:
    """The table and pictures of the trials a stopped search finished, on its parent run (it ended
    without them, though trials had finished; a resumed search that finishes replaces them, with
    best.json). Nothing when no trial finished. Returns whether it logged them."""
    trials = records.read_records(plan.work)
    if trials:
        tracking.log_artifacts(parent, _draw(plan, trials))
    return bool(trials)


def after_stop(plan: SearchPlan, parent: str, draw: bool) -> None:
    """A search that ends unfinished: its trial runs left RUNNING ended (``end_stale_trial_runs``); its
    finished trials' table and pictures on the parent run (``draw``). Best effort: the search's own error is the one
    raised (MLflow's ERROR line for a failure here printed that error's traceback; it is kept off)."""
    with quiet_logger("mlflow", logging.CRITICAL):
        try:
            tracking.end_stale_trial_runs(parent, records.read_records(plan.work))
        except Exception:  # noqa: BLE001 (a store that fails now: --resume marks them; the first error counts)
            return  # nor would it take the pictures: they must not wait on it
        if draw:
            try:
                log_stopped_artifacts(plan, parent)
            except (Exception, KeyboardInterrupt):  # noqa: BLE001 (the pictures are extra: a failure, or a
                pass  # Ctrl-C while they are drawn, skips them)


def server_down(plan: SearchPlan) -> str | None:
    """Why the search's end leaves its tracking server alone: its trials' runs missed calls (the trial
    callbacks found the server down, ``tracking_http.Outage``, and their records say so: the Outage
    lives in Tune's driver, under Ray Client another process) and one probe of its ``/health`` still
    gets no answer. Each end call (the backfill, the result, the clean-up, the parent run's end) waited
    out MLflow's retries, 6.5 s a call, for the error the search already knew. None otherwise: a
    database store, no call missed, or a server that answers again (it gets the runs it missed)."""
    import mlflow

    from optuna_studies.backfill import missed

    uri = mlflow.get_tracking_uri()
    if not uri.startswith(("http://", "https://")) or not missed(records.read_records(plan.work)):
        return None
    if answers(uri, HEALTH_TIMEOUT_S):
        return None
    return f"server unreachable (its /health gave no answer within {HEALTH_TIMEOUT_S:g} s, as while the trials ran)"


def backfill_runs(plan: SearchPlan, parent: str, say: Callable[[str], None]) -> str | None:
    """The trial runs the MLflow store missed while it was down, logged from the trials' records
    (``backfill.py``) before the result is: a store still down is left to the result's own error
    (or warning), which says what to do. Returns the warning to give once the result is written, when
    this failed and the store then took the result: the work folder, the records this needs, goes with
    the result, so nothing can log them later (a ``--resume`` of a finished search is refused)."""
    from optuna_studies.backfill import backfill_trial_runs, missed

    trials = records.read_records(plan.work)
    if not missed(trials):
        return None
    params = {"epochs": plan.space.epochs, "seed": plan.constants["seed"]}
    done, e = quietly(backfill_trial_runs, parent, plan.work, trials, params)
    if e is None:
        say(f"logged what the MLflow store missed while it was down, from the trial records: {count_of(done, 'trial run')}")
        return None
    left = sorted(r.get("number") for r in missed(trials) if r.get("number") is not None)
    return (f"warning: MLflow failed to log what the trial runs missed while the store was down ({why(e)}); the "
            f"search's result is written, and the runs of trial{'s' * (len(left) != 1)} {', '.join(map(str, left))} "
            f"stay incomplete for good (no run, or epochs or their end missing): each trial's result is in "
            f"{plan.out_dir / 'trials.csv'}")


def end_trial_runs_left_open(parent: str, trials: list[dict], say: Callable[[str], None]) -> None:
    """After a finished search: a trial run whose end the store failed to log mid-search (the trial
    callbacks went on) is ended as its trial did; it stayed RUNNING under the FINISHED parent run. A
    failure now is a warning: the result is written."""
    _, e = quietly(tracking.end_stale_trial_runs, parent, trials)
    if e is not None:
        say(f"warning: MLflow failed to end the trial runs left RUNNING ({why(e)}); the search's result is written")


def end_parent(parent: str, outcome: str, say: Callable[[str], None]) -> None:
    """End the parent run ``outcome``. A store that fails now leaves it RUNNING (a --resume reopens
    it): a warning says so after a finished search (its result is written); otherwise the search's
    own error is the one raised (MLflow's replaced it)."""
    _, e = quietly(tracking.end_run, parent, outcome)
    if e is not None and outcome == "FINISHED":
        say(f"warning: MLflow failed to end the search's run {parent} ({why(e)}): it stays RUNNING "
            "there; the search's result is written")
