"""Per-task search of prompt length × learning rate: Optuna TPE on Ray Tune with ASHA over epochs.

``run_search`` is the plain entry point the command line (``ptv2 search``) and the Kubeflow
component call: ``check → study → MLflow parent run → Ray Tune → best trial → output``.
"""
from __future__ import annotations

import contextlib
import json
import logging
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import optuna

from ptv2_core.errors import Ptv2Error, Ptv2Interrupted
from ptv2_core.tasks.subsample import subset_rule
from optuna_studies import records, settings, tracking
from optuna_studies.best_metrics import best_metrics
from optuna_studies.capacity import check_capacity
from optuna_studies.cluster import require_one_host, require_stores_in_shared
from optuna_studies.output import search_lock, write_output
from optuna_studies.plan import SearchPlan, check_count, plan_search
from optuna_studies.plots import FILES as ARTIFACTS
from optuna_studies.plots import write_artifacts
from optuna_studies.ray_session import one_line, ray_session
from optuna_studies.quiet import quiet_logger
from optuna_studies.study import PARENT_RUN_ATTR, StudyState, finished_count, mask_url, open_storage, prepare_study
from optuna_studies.study_lock import study_lock
from optuna_studies.work import adopt_legacy, check_owner, claim
from ptv2_core.wording import count_of

EXPERIMENT = "ptv2-search"


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


def run_search(task: str, model: str, out_dir: str | Path, *, trials: int | None = None,
               space: str | Path | None = None, storage: str | None = None, init: str | Path | None = None,
               max_train: int | None = None, max_eval: int | None = None, epochs: int | None = None,
               concurrency: int = 2, cpus_per_trial: float = 1, gpus_per_trial: float = 0, max_failures: int = 2,
               resume: bool = False, overwrite: bool = False, mlflow_uri: str | None = None,
               ray_address: str | None = None, ray_cpus: int | None = None, study_name: str | None = None,
               seed: int = 0, experiment: str = EXPERIMENT, shared_dir: str | Path | None = None,
               echo: Callable[[str], None] | None = None, originals: dict[str, str] | None = None) -> SearchResult:
    """Search prompt length × learning rate for one task; write ``best.json`` and ``adapter/``.

    run_search(task, model, out_dir, *, trials=None, space=None, storage=None, init=None,
               max_train=None, max_eval=None, epochs=None, concurrency=2, cpus_per_trial=1,
               gpus_per_trial=0, max_failures=2, resume=False, overwrite=False, mlflow_uri=None,
               ray_address=None, ray_cpus=None, study_name=None, seed=0,
               experiment="ptv2-search", shared_dir=None, echo=None, originals=None) -> SearchResult

    - ``task``: trec, rt, wnut16, bbc, a task YAML file or hub:<name>; ``model``: minilm, a
      folder or a hub name. ``space``: a space YAML (default: the task's packaged one, or
      default.yaml for user tasks); ``trials``/``epochs`` override its budget.
    - ``storage``: Optuna RDB URL (default ``PTV2_OPTUNA_STORAGE`` or sqlite in ``PTV2_HOME``);
      ``study_name`` defaults to one derived from task, model and ``out_dir``.
    - ``init``: a pre-trained prompt folder (multi-task pre-training) every trial starts from.
    - ``concurrency`` trials run at once, each with ``cpus_per_trial``/``gpus_per_trial``; a
      trial whose worker dies is retried up to ``max_failures`` times; a diverging one fails alone.
    - ``ray_address`` (or ``RAY_ADDRESS``) joins a cluster; otherwise a local Ray with ``ray_cpus``.
      A cluster with nodes on other machines needs ``shared_dir`` (or ``PTV2_SHARED_DIR``): a folder
      every node mounts at the same path, for the work folder and the trials' file inputs.
    - ``resume`` continues the study of the same ``out_dir``: finished trials are kept, not rerun.
    - ``echo`` receives the progress lines: one as each trial starts, one (``[k/N] ...``) as it ends.
    - ``originals``: what ``model``, ``init`` and ``space`` are copies of (``{"model": ...,
      "init": ..., "space_file": ...}``), recorded as the parent run's params instead of the
      copies' paths, and the model's name in the plots' titles and best.json (the pipeline's
      search step stages its inputs in a shared folder; the copies go when the step ends).

    Raises Ptv2Error for bad input (before anything is written) or when no trial produced a score,
    and Ptv2Interrupted for a search that stopped before its last trial (Ctrl-C, a KeyboardInterrupt
    included; run again with ``resume=True``), its message saying how many trials finished.
    """
    say = echo or (lambda line: None)
    check_count("--max-failures", max_failures, 0)
    check_count("--ray-cpus", ray_cpus, 1)
    ready: list[optuna.Study] = []  # the study, once _search has prepared it: what a Ctrl-C reports on
    try:
        plan = plan_search(task, model, out_dir, trials=trials, space=space, storage=storage, init=init,
                           max_train=max_train, max_eval=max_eval, epochs=epochs, concurrency=concurrency,
                           cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial, overwrite=overwrite,
                           study_name=study_name, seed=seed, shared_dir=shared_dir, mlflow_uri=mlflow_uri,
                           resume=resume)
        plan = replace(plan, originals={k: v for k, v in (originals or {}).items() if v})
        # Ray before the study: a cluster that cannot be reached or cannot hold one trial is refused
        # before the study, the MLflow run or the work folder exist (the tuner reuses this connection)
        with ray_session(ray_address, num_cpus=ray_cpus):
            address = settings.ray_address(ray_address)
            check_capacity(plan.cpus_per_trial, plan.gpus_per_trial, joined=bool(address), say=say)
            if plan.shared is None and address:
                require_one_host(address)
            if plan.shared is not None and address and address.startswith("ray://"):
                stores = {"study storage": plan.storage, "MLflow store": settings.mlflow_tracking_uri(mlflow_uri)}
                require_stores_in_shared(plan.shared, address, stores)
            # one process per study and output; Optuna's INFO lines ("A new study created in RDB ...", then, as
            # Ray Tune's OptunaSearch loads it, "Using an existing study ...") off: the search names its study itself
            with search_lock(plan.study_name, plan.out_dir), study_lock(plan.storage, plan.study_name), \
                    quiet_logger("optuna"):
                return _search(plan, max_failures, resume, mlflow_uri, ray_address, experiment, say, ready)
    except KeyboardInterrupt:  # a Ctrl-C Tune did not take (a second one, one outside fit, or under Ray Client)
        if not ready:  # before the study was ready: no trial of this run started
            raise Ptv2Interrupted("interrupted before the search started: run the same command again") from None
        raise Ptv2Interrupted(stopped_message(_finished_or_none(ready[0]), plan.space.trials)) from None


def stopped_message(done: int | None, total: int) -> str:
    """The error line of a search stopped before its last trial: what the study keeps and how to go
    on. ``done``: the study's trials that ended (None: its storage did not say)."""
    if done is None:
        return ("search stopped; the trials that finished, if any, are kept in the study: run the same command "
                "with --resume to go on")
    if done == 0:  # --resume: without it, a study with trials is refused (interrupted ones count)
        return (f"search stopped before any of its {count_of(total, 'trial')} finished: run the same command with "
                "--resume to start it again")
    return f"search stopped after {done} of {total} trials; run the same command with --resume to finish it"


def _finished_or_none(study: optuna.Study) -> int | None:
    try:
        return finished_count(study)
    except Exception:  # noqa: BLE001 (a storage that fails now: the line says less, the Ctrl-C is what counts)
        return None


def trial_settings(plan: SearchPlan) -> dict:
    """What every trial of the study shares besides the space: a resume must keep it, or its trials
    and the earlier ones would be ranked together though trained and scored differently. The task
    too (``--resume --task rt`` continued a trec study), and a task file's content, with its data
    files', by their digest."""
    import hashlib

    keep = ("model", "epochs", "max_train", "max_eval", "seed", "init")
    doc = {k: plan.constants.get(k) for k in keep} | {"fixed": dict(sorted(plan.space.fixed.items()))}
    doc["task"] = plan.task_name  # a task file by its name and content, not its path: it may move
    doc |= subset_rule(doc["max_train"], doc["max_eval"])  # which rows a cap keeps (random until 2026-12-06)
    if Path(plan.task).is_file():  # a task YAML (made absolute by the plan) and the data it names
        from ptv2_core.tasks.spec import load_task_yaml

        h = hashlib.sha256(Path(plan.task).read_bytes())
        for split, path in load_task_yaml(plan.task)[1].splits().items():
            for f in sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file()):
                h.update(f"{split}:{f.relative_to(path) if f != path else ''}".encode() + f.read_bytes())
        doc["task_sha256"] = h.hexdigest()[:16]
    return doc


def _search(plan: SearchPlan, max_failures: int, resume: bool, mlflow_uri: str | None, ray_address: str | None,
            experiment: str, say: Callable[[str], None], ready: list[optuna.Study]) -> SearchResult:
    """The checked search, with Ray connected: study → MLflow parent run → Ray Tune → output. The
    study goes into ``ready`` once prepared."""
    check_owner(plan.work, plan.study_name, plan.storage)  # again, under the locks: plan_search ran before them
    rdb = open_storage(plan.storage)
    # prepare_study marks the orphans (FAIL, their reruns enqueued) before the checks below: a refusal leaves them
    # marked, and the next --resume runs (and counts) their reruns; adopt_legacy needs the study's trials anyway
    state = prepare_study(rdb, plan.study_name, plan.space, resume, trial_settings(plan))
    ready.append(state.study)
    if state.resumed and state.finished and not records.trials_dir(plan.work).is_dir():
        # a search interrupted under the old name of its work folder (.<out>.search, before each study had its
        # own) is taken; otherwise a search that finished deleted its work folder: only its best adapter is left
        # (in --out), so more trials would be ranked among themselves, and the output would forget the earlier best
        legacy = None
        if plan.shared is None:
            ids = {t.user_attrs["ray_trial_id"]: t.number for t in state.study.trials if "ray_trial_id" in t.user_attrs}
            legacy = adopt_legacy(plan.work, plan.out_dir, plan.study_name, plan.storage, ids)
        if legacy is None:
            raise Ptv2Error(f"study '{plan.study_name}' already finished {count_of(state.finished, 'trial')}, and "
                            f"their work folder {plan.work} is gone (a finished search deletes it and keeps only its result, "
                            "best.json and the best adapter, in its --out), so more trials could not be ranked "
                            "against the earlier ones: start a new search (another --out or --study-name) to try "
                            "more configurations")
        say(f"took the work folder {legacy} (named before each study had its own) as {plan.work}")
    if not state.resumed:  # leftovers of this study's own search that never got a trial (the folder is
        shutil.rmtree(plan.work, ignore_errors=True)  # this study's alone: work.py)
    claim(plan.work, plan.study_name, plan.storage)
    parent = _open_parent(plan, state, experiment, mlflow_uri)
    outcome, draw = "FAILED", True  # draw: the finished trials' pictures on the parent run, unless _finish does
    try:  # from here the parent run is ended, whatever happens (a Ctrl-C as the lines below are printed too)
        if state.resumed:
            say(f"resuming study '{plan.study_name}': {state.finished} of {plan.space.trials} trials done, "
                f"{count_of(state.orphans, 'interrupted trial')} to run again")
        elif resume:
            say(f"--resume: study '{plan.study_name}' has no trials yet; starting it")
        if not state.resumed:
            spc = plan.space
            say(f"study '{plan.study_name}' in {mask_url(plan.storage)}: {spc.trials} trial{'s' * (spc.trials != 1)} "
                f"of up to {spc.epochs} epoch{'s' * (spc.epochs != 1)}, prompt lengths {list(spc.prompt_lens)}, "
                f"lr {spc.lr_low:.3g}..{spc.lr_high:.3g}, {plan.concurrency} at a time; MLflow run {parent}")
        if state.finished < plan.space.trials:
            from optuna_studies.tuner import run_tuner

            run_tuner(plan, rdb, parent, state.finished, max_failures, ray_address, say,
                      settings.mlflow_tracking_uri(mlflow_uri))
        done = finished_count(state.study)
        if done < plan.space.trials:
            outcome = "KILLED"
            raise Ptv2Interrupted(stopped_message(done, plan.space.trials))
        draw = False  # _finish draws them itself (also when no trial has a score)
        result = _finish(plan, parent, mlflow_uri, say)
        outcome = "FINISHED"
        _end_trial_runs_left_open(parent, result.trials, say)
        return result
    except KeyboardInterrupt:  # a Ctrl-C Tune did not take (a second one, one outside fit, or under Ray Client)
        outcome = "KILLED"
        raise
    finally:
        try:
            if outcome != "FINISHED":  # Ctrl-C, or fit raising: the trials Tune stopped keep RUNNING runs
                _after_stop(plan, parent, draw)
        finally:  # a second Ctrl-C during the above still ends the parent run
            _end_parent(parent, outcome, say)


def _after_stop(plan: SearchPlan, parent: str, draw: bool) -> None:
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


def _end_trial_runs_left_open(parent: str, trials: list[dict], say: Callable[[str], None]) -> None:
    """After a finished search: a trial run whose end the store failed to log mid-search (the trial
    callbacks went on) is ended as its trial did; it stayed RUNNING under the FINISHED parent run. A
    failure now is a warning: the result is written."""
    try:
        with quiet_logger("mlflow", logging.CRITICAL):
            tracking.end_stale_trial_runs(parent, trials)
    except Exception as e:  # noqa: BLE001 (any store or client error)
        say(f"warning: MLflow failed to end the trial runs left RUNNING ({_why(e)}); the search's result is written")


def _end_parent(parent: str, outcome: str, say: Callable[[str], None]) -> None:
    """End the parent run ``outcome``. A store that fails now leaves it RUNNING (a --resume reopens
    it): a warning says so after a finished search (its result is written); otherwise the search's
    own error is the one raised (MLflow's replaced it)."""
    try:
        with quiet_logger("mlflow", logging.CRITICAL):
            tracking.end_run(parent, outcome)
    except Exception as e:  # noqa: BLE001 (any store or client error)
        if outcome == "FINISHED":
            say(f"warning: MLflow failed to end the search's run {parent} ({_why(e)}): it stays RUNNING "
                "there; the search's result is written")


@contextlib.contextmanager
def _mlflow(what: str, then: str) -> Iterator[None]:
    """MLflow calls the search needs (its parent run's): the store failing there (a server restarting,
    a locked or lost database) ends it with one error line, ``the MLflow store failed to <what>
    (<why>)<then>``, where it was MLflow's traceback (and its own ERROR line's)."""
    try:
        with quiet_logger("mlflow", logging.CRITICAL):
            yield
    except Ptv2Error:
        raise
    except Exception as e:  # noqa: BLE001 (any store or client error)
        raise Ptv2Error(f"the MLflow store failed to {what} ({_why(e)}){then}") from None


def _why(e: BaseException) -> str:
    """Why an MLflow call failed, on one line: the first cause's message (a database store's is the
    database's own, "no such table: runs", where MLflow's own first line may be SQLAlchemy's note)."""
    while e.__cause__ is not None:
        e = e.__cause__
    return one_line(e)[:300]


def _open_parent(plan: SearchPlan, state: StudyState, experiment: str, mlflow_uri: str | None) -> str:
    """The study's parent run: reopened on resume (its id is kept in the study). Its ``model``,
    ``init`` and ``space_file`` params name ``plan.originals`` where the trials read copies of them;
    a copied space file is one of its artifacts (the copy is deleted with its search)."""
    masked = mask_url(plan.storage)
    params = {"task": plan.task_name, "model": plan.model, "trials": plan.space.trials, "epochs": plan.space.epochs,
              "prompt_lens": list(plan.space.prompt_lens), "lr_low": plan.space.lr_low, "lr_high": plan.space.lr_high,
              "metric": plan.space.metric, "direction": plan.space.direction, "concurrency": plan.concurrency,
              "grace_period": plan.space.grace_period, "reduction_factor": plan.space.reduction_factor,
              "sampler_seed": plan.space.seed, "n_startup_trials": plan.space.n_startup_trials,
              "startup": plan.space.startup, "length_as": plan.space.length,
              "cpus_per_trial": plan.cpus_per_trial, "gpus_per_trial": plan.gpus_per_trial,
              "max_train": plan.constants["max_train"], "max_eval": plan.constants["max_eval"], "init": plan.init,
              "study_name": plan.study_name, "study_storage": masked, "space_file": plan.space.source} | {
        f"fixed.{k}": v for k, v in plan.space.fixed.items()}  # every trial's other settings (batch_size, ...)
    params |= {k: v for k, v in plan.originals.items() if k in ("model", "init", "space_file")}
    tags = {"ptv2.kind": "search", "ptv2.task": plan.task_name, "ptv2.study_name": plan.study_name,
            "ptv2.study_storage": masked, "ptv2.optuna_dashboard": f"optuna-dashboard {masked}"}
    # no trial ran yet: the same command starts (or resumes) it once the store works
    failed = ("open the search's run", ": no trial ran; once the store works again, run the same command again")
    with _mlflow(*failed):
        parent = tracking.open_parent_run(experiment, mlflow_uri, plan.study_name,
                                          state.study.user_attrs.get(PARENT_RUN_ATTR), params, tags)
    state.study.set_user_attr(PARENT_RUN_ATTR, parent)
    with _mlflow(*failed):
        if "space_file" in plan.originals and Path(plan.space.source).is_file():  # a copy, deleted with the step
            tracking.log_artifact(parent, Path(plan.space.source))
        if state.resumed:
            tracking.end_stale_trial_runs(parent, records.read_records(plan.work))
    return parent


def _draw(plan: SearchPlan, trials: list[dict]) -> Path:
    """The study's table and pictures of ``trials`` in the work folder's ``artifacts/``; returns it."""
    art = plan.work / "artifacts"
    title = f"{plan.task_name} / {Path(plan.shown_model).name}"
    write_artifacts(trials, art, plan.space.metric, plan.space.mode, title, plan.space.prompt_lens)
    return art


def log_stopped_artifacts(plan: SearchPlan, parent: str) -> bool:
    """The table and pictures of the trials a stopped search finished, on its parent run (it ended
    without them, though trials had finished; a resumed search that finishes replaces them, with
    best.json). Nothing when no trial finished. Returns whether it logged them."""
    trials = records.read_records(plan.work)
    if trials:
        tracking.log_artifacts(parent, _draw(plan, trials))
    return bool(trials)


def _finish(plan: SearchPlan, parent: str, mlflow_uri: str | None, say: Callable[[str], None]) -> SearchResult:
    """Pick the best trial, log the study's artifacts, write the output folder."""
    trials = records.read_records(plan.work)
    best = records.best_record(trials, plan.space.mode)
    art = _draw(plan, trials)
    with _mlflow(*_result_failed(plan)):
        tracking.log_artifacts(parent, art)
    if best is None:
        why = records.failure_summary(trials)
        raise Ptv2Error(f"no trial of study '{plan.study_name}' finished with a score ({why}): "
                        f"see {art / 'trials.csv'} and the MLflow runs")
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
    (art / "best.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    with _mlflow(*_result_failed(plan)):
        tracking.log_artifacts(parent, art)
        if best.get("mlflow_run_id"):
            tracking.set_tags(best["mlflow_run_id"], {"ptv2.best": "true"})
        tracking.set_tags(parent, {"ptv2.best_trial": best["number"], "ptv2.best_run_id": best.get("mlflow_run_id"),
                                   "ptv2.best_prompt_len": best["prompt_len"], "ptv2.best_lr": best["lr"]})
        tracking.log_epoch(parent, {"best_score": best["best_score"], "best_test_score": metrics["test"]["score"]}, 0)
    out = write_output(plan.out_dir, doc, Path(best["adapter"]), {name: art / name for name in ARTIFACTS})
    shutil.rmtree(plan.work, ignore_errors=True)
    for r in trials:  # the work folder is gone: only the best adapter remains, in the output
        r["adapter"] = str(out / "adapter") if r is best else None
    return SearchResult(best_config, best["best_score"], out / "adapter", trials, parent, plan.study_name,
                        mask_url(plan.storage), out, metrics["test"])


def _result_failed(plan: SearchPlan) -> tuple[str, str]:
    """What a store failing as the search logs its result says: the trials are kept, in the study
    and the work folder, and a --resume logs and writes the result without running any of them."""
    return ("log the search's result", f" after every trial of study '{plan.study_name}' ran; the trials are kept (in "
            f"the study and {plan.work}): once the store works again, run the same command with --resume to finish "
            "the search without running any trial again")


def _counts(trials: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {"total": len(trials)}
    for r in trials:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return counts
