"""Per-task search of prompt length × learning rate: Optuna TPE on Ray Tune with ASHA over epochs.

``run_search`` is the plain entry point the command line (``ptv2 search``) and the Kubeflow
component call: ``check → study → MLflow parent run → Ray Tune → best trial → output``.
"""
from __future__ import annotations

import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable

import optuna

from ptv2_core.errors import Ptv2Error, Ptv2Interrupted
from ptv2_core.tasks.subsample import subset_rule
from optuna_studies import records, settings, tracking
from optuna_studies.capacity import check_capacity, check_local_gpus, scale_wait
from optuna_studies.cluster import require_one_host, require_stores_in_shared
from optuna_studies.node_check import check_nodes
from optuna_studies.finish import (SearchResult, after_stop, backfill_runs, end_parent, end_trial_runs_left_open,
                                   finish_search, server_down)
from optuna_studies.output import search_lock
from optuna_studies.plan import SearchPlan, check_count, plan_search
from optuna_studies.quiet import quiet_logger
from optuna_studies.ray_session import ray_session
from optuna_studies.store_guard import mlflow_guard
from optuna_studies.study import (PARENT_RUN_ATTR, StudyState, check_study, finished_count, lost_trials, mask_url,
                                  open_storage, prepare_study, rerun_lost)
from optuna_studies.study_lock import study_lock
from optuna_studies.tracking_http import bounded_http
from optuna_studies.work import OWNER, adopt_legacy, check_owner, claim, legacy_work_dir
from ptv2_core.wording import count_of
from ptv2_core.provenance import hash_file

EXPERIMENT = "ptv2-search"
__all__ = ["EXPERIMENT", "SearchResult", "check_before_ray", "run_search", "stopped_message", "trial_settings"]


def run_search(task: str, model: str, out_dir: str | Path, *, trials: int | None = None,
               space: str | Path | None = None, storage: str | None = None, init: str | Path | None = None,
               max_train: int | None = None, max_eval: int | None = None, epochs: int | None = None,
               concurrency: int = 2, cpus_per_trial: float = 1, gpus_per_trial: float = 0, max_failures: int = 2,
               resume: bool = False, overwrite: bool = False, mlflow_uri: str | None = None,
               ray_address: str | None = None, ray_cpus: int | None = None, study_name: str | None = None,
               seed: int = 0, experiment: str = EXPERIMENT, shared_dir: str | Path | None = None,
               echo: Callable[[str], None] | None = None, originals: dict[str, str] | None = None,
               ray_address_given_by: str = "--ray-address", mlflow_uri_given_by: str = "--mlflow-uri") -> SearchResult:
    """Search prompt length × learning rate for one task; write ``best.json`` and ``adapter/``.

    run_search(task, model, out_dir, *, trials=None, space=None, storage=None, init=None,
               max_train=None, max_eval=None, epochs=None, concurrency=2, cpus_per_trial=1,
               gpus_per_trial=0, max_failures=2, resume=False, overwrite=False, mlflow_uri=None,
               ray_address=None, ray_cpus=None, study_name=None, seed=0,
               experiment="ptv2-search", shared_dir=None, echo=None, originals=None,
               ray_address_given_by="--ray-address", mlflow_uri_given_by="--mlflow-uri") -> SearchResult

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
      ``ray_address_given_by`` names the knob a cluster that does not answer is reported against
      (the pipeline's search step: "the ray_address parameter"); ``mlflow_uri_given_by`` likewise
      for an MLflow store that cannot be reached ("the mlflow_uri parameter").
    - ``resume`` continues the study of the same ``out_dir``: finished trials are kept, not rerun.
    - ``echo`` receives the progress lines: one as each trial starts, one (``[k/N] ...``) as it ends.
    - ``originals``: what ``model``, ``init`` and ``space`` are copies of (``{"model": ...,
      "init": ..., "space_file": ...}``), recorded as the parent run's params instead of the
      copies' paths, and the model's name in the plots' titles and best.json (the pipeline's
      search step stages its inputs in a shared folder; the copies go when the step ends).

    Raises Ptv2Error for bad input (before anything is written) or when no trial produced a score,
    and Ptv2Interrupted for a search that stopped before its last trial (Ctrl-C, a KeyboardInterrupt
    included; run again with ``resume=True``), its message saying how many trials finished; one after the
    output was written (the clean-up left) says so and names the output folder.
    """
    say = echo or (lambda line: None)
    check_count("--max-failures", max_failures, 0)
    check_count("--ray-cpus", ray_cpus, 1)
    scale_wait()  # a bad PTV2_RAY_SCALE_WAIT is refused here, not after joining Ray and only when short of a node
    ready: list[optuna.Study] = []  # the study, once _search has prepared it: what a Ctrl-C reports on
    written: list[SearchResult] = []  # the result, once finish_search wrote it (and deleted the work folder)
    try:
        plan = plan_search(task, model, out_dir, trials=trials, space=space, storage=storage, init=init,
                           max_train=max_train, max_eval=max_eval, epochs=epochs, concurrency=concurrency,
                           cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial, overwrite=overwrite,
                           study_name=study_name, seed=seed, shared_dir=shared_dir, mlflow_uri=mlflow_uri,
                           resume=resume, mlflow_uri_given_by=mlflow_uri_given_by, say=say)
        plan = replace(plan, originals={k: v for k, v in (originals or {}).items() if v})
        held = trial_settings(plan)  # once: it reads the task file's data and the prompt's weights
        address = settings.ray_address(ray_address)
        check_before_ray(plan, address, ray_cpus, mlflow_uri)  # what needs no cluster state: before Ray is touched
        # the study's refusals too (trials without --resume, another space or settings), read-only, under the
        # locks (a running search's trials are not interrupted ones: it is refused as running); the locks are
        # taken again, and the study checked again, as it is prepared after the join
        with search_lock(plan.study_name, plan.out_dir), study_lock(plan.storage, plan.study_name):
            check_study_before_ray(plan, resume, held)
        # Ray before the study: a cluster that cannot be reached or cannot hold one trial is refused
        # before the study, the MLflow run or the work folder exist (the tuner reuses this connection)
        with ray_session(ray_address, num_cpus=ray_cpus, given_by=ray_address_given_by):
            # the checks that need the joined cluster's state: its nodes' resources, and their hosts
            check_capacity(plan.cpus_per_trial, plan.gpus_per_trial, joined=bool(address), say=say)
            if plan.shared is None and address:
                require_one_host(address)
            if address:  # every node sees the shared folder and runs this ptv2 and torch
                check_nodes(address, plan.shared)
            # one process per study and output; Optuna's INFO lines ("A new study created in RDB ...", then, as
            # Ray Tune's OptunaSearch loads it, "Using an existing study ...") off: the search names its study itself
            # MLflow's HTTP retries bounded (a dead tracking server: 7 s a call, not 4 minutes)
            with search_lock(plan.study_name, plan.out_dir), study_lock(plan.storage, plan.study_name), \
                    quiet_logger("optuna"), bounded_http():
                return _search(plan, held, max_failures, resume, mlflow_uri, ray_address, experiment, say, ready,
                               written)
    except KeyboardInterrupt:  # a Ctrl-C Tune did not take (a second one, one outside fit, or under Ray Client)
        if written:  # only clean-up was left (trial runs, Ray, the locks); --resume would be refused: no work folder
            raise Ptv2Interrupted(f"interrupted after the search finished; its result is written to "
                                  f"{written[0].out_dir}") from None
        if not ready:  # before the study was ready: no trial of this run started
            raise Ptv2Interrupted("interrupted before the search started: run the same command again") from None
        raise Ptv2Interrupted(stopped_message(_finished_or_none(ready[0]), plan.space.trials)) from None


def check_before_ray(plan: SearchPlan, address: str | None, ray_cpus: int | None, mlflow_uri: str | None) -> None:
    """The cluster checks that need only the flags, the address and the paths, made before Ray is
    touched (joining a cluster, or starting a local Ray, takes seconds; a dead address is waited on):
    the stores under Ray Client with a shared folder, and a trial larger than the local Ray that
    ``--ray-cpus`` sizes. What needs the cluster's nodes (their resources, their hosts) is checked
    once joined, in ``run_search``."""
    if plan.shared is not None and address and address.startswith("ray://"):
        stores = {"study storage": plan.storage, "MLflow store": settings.mlflow_tracking_uri(mlflow_uri)}
        require_stores_in_shared(plan.shared, address, stores)
    ray = sys.modules.get("ray")  # a Ray this process already runs is used as it is, whatever --ray-cpus says
    if not address and not (ray and ray.is_initialized()):
        check_local_gpus(plan.cpus_per_trial, plan.gpus_per_trial)
    if not address and ray_cpus is not None and plan.cpus_per_trial > ray_cpus and not (ray and ray.is_initialized()):
        raise Ptv2Error(f"a trial needs {plan.cpus_per_trial:g} CPU and {plan.gpus_per_trial:g} GPU on one node, but "
                        f"the Ray cluster has {ray_cpus} CPU (--ray-cpus {ray_cpus}): lower --cpus-per-trial or "
                        "raise --ray-cpus")


def check_study_before_ray(plan: SearchPlan, resume: bool, held: dict | None = None) -> None:
    """``prepare_study``'s refusals on the study as it stands (``held``: the plan's ``trial_settings``,
    made here when not given),
    read without creating or stamping anything: a storage that lacks Optuna's tables (a sqlite file not
    there, none or some of the tables, an empty version table) passes, as does a study not there;
    opening the storage after the join creates what it lacks, or says why it cannot. (A PostgreSQL
    storage that cannot be reached is refused before this, by the study lock: "cannot reach the study
    storage".)"""
    from sqlalchemy.exc import SQLAlchemyError

    from optuna_studies.study_read import read_only_storage

    with read_only_storage(plan.storage) as storage:
        if storage is None:
            return
        try:
            study = optuna.load_study(study_name=plan.study_name, storage=storage)
            settings = trial_settings(plan) if held is None else held
            started = check_study(study, plan.study_name, plan.space, resume, settings)
            finished = finished_count(study) if started else 0
            legacy = plan.shared is None and any((legacy_work_dir(plan.out_dir) / "trials").glob("*.json"))
            if finished and not legacy and _work_gone(plan):  # an old-style folder: taken (or refused) once joined
                raise _gone(plan, finished)
        except Ptv2Error:
            raise
        except (SQLAlchemyError, KeyError, RuntimeError):  # no such study, a storage that fails now: prepare_study decides
            return


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
    files', by their digest; likewise the pre-trained prompt's weights (``init_sha256``: one
    pre-trained again into the same folder is another). Reads those files (in blocks): a search
    computes it once."""
    import hashlib

    from ptv2_core.multitask.pretrained import started_from

    keep = ("model", "epochs", "max_train", "max_eval", "seed", "init")
    doc = {k: plan.constants.get(k) for k in keep} | {"fixed": dict(sorted(plan.space.fixed.items()))}
    doc["task"] = plan.task_name  # a task file by its name and content, not its path: it may move
    doc |= subset_rule(doc["max_train"], doc["max_eval"])  # which rows a cap keeps (random until 2026-12-06)
    if doc["init"]:  # a study that never recorded it (before 2026-12-07) is not held to it: study.check_study
        doc |= {k: v for k, v in started_from(doc["init"]).items() if k == "init_sha256"}
    if Path(plan.task).is_file():  # a task YAML (made absolute by the plan) and the data it names
        from ptv2_core.tasks.task_yaml import load_task_yaml

        h = hashlib.sha256()
        hash_file(h, Path(plan.task))
        for split, path in load_task_yaml(plan.task)[1].splits().items():
            for f in sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file()):
                h.update(f"{split}:{f.relative_to(path) if f != path else ''}".encode())
                hash_file(h, f)
        doc["task_sha256"] = h.hexdigest()[:16]  # the same digest as when each file was read whole
    return doc


def _work_gone(plan: SearchPlan) -> bool:
    """Whether the study's work folder is gone: no trial records, and no owner file (a work folder
    whose finished trials left no record, the driver killed first, is there: not gone)."""
    return not records.trials_dir(plan.work).is_dir() and not (plan.work / OWNER).is_file()


def _gone(plan: SearchPlan, finished: int) -> Ptv2Error:
    """The refusal to resume a study whose search finished: more trials could not be ranked."""
    return Ptv2Error(f"study '{plan.study_name}' already finished {count_of(finished, 'trial')}, and their "
                     f"work folder {plan.work} is gone (a finished search deletes it and keeps only its result, "
                     "best.json and the best adapter, in its --out), so more trials could not be ranked "
                     "against the earlier ones: start a new search (another --out or --study-name) to try "
                     "more configurations")


def _search(plan: SearchPlan, held: dict, max_failures: int, resume: bool, mlflow_uri: str | None,
            ray_address: str | None, experiment: str, say: Callable[[str], None], ready: list[optuna.Study],
            written: list[SearchResult]) -> SearchResult:
    """The checked search, with Ray connected: study → MLflow parent run → Ray Tune → output. The
    study goes into ``ready`` once prepared, the result into ``written`` once the output is written;
    ``held``: the plan's ``trial_settings``."""
    check_owner(plan.work, plan.study_name, plan.storage)  # again, under the locks: plan_search ran before them
    rdb = open_storage(plan.storage)
    # prepare_study marks the orphans (FAIL, their reruns enqueued) before the checks below: a refusal leaves them
    # marked, and the next --resume runs (and counts) their reruns; adopt_legacy needs the study's trials anyway
    state = prepare_study(rdb, plan.study_name, plan.space, resume, held)
    ready.append(state.study)
    if state.resumed and state.finished and not records.trials_dir(plan.work).is_dir():
        # a search interrupted under the old name of its work folder (.<out>.search, before each study had its
        # own) is taken; otherwise a search that finished deleted its work folder: only its best adapter is left
        # (in --out), so more trials would be ranked among themselves, and the output would forget the earlier best
        legacy = None
        if plan.shared is None:
            ids = {t.user_attrs["ray_trial_id"]: t.number for t in state.study.trials if "ray_trial_id" in t.user_attrs}
            legacy = adopt_legacy(plan.work, plan.out_dir, plan.study_name, plan.storage, ids)
        if legacy is None and _work_gone(plan):
            raise _gone(plan, state.finished)
        if legacy is not None:
            say(f"took the work folder {legacy} (named before each study had its own) as {plan.work}")
    if not state.resumed:  # leftovers of this study's own search that never got a trial (the folder is
        shutil.rmtree(plan.work, ignore_errors=True)  # this study's alone: work.py)
    claim(plan.work, plan.study_name, plan.storage)
    unreadable = records.unreadable_records(plan.work)
    # trials that ended in the study but left no record (the driver died before it kept them): run again, counted
    # with the orphans
    lost = rerun_lost(state.study, _recorded(plan)) if state.resumed else []
    if lost:
        state = replace(state, finished=finished_count(state.study), orphans=state.orphans + len(lost))
    parent = _open_parent(plan, state, experiment, mlflow_uri)
    outcome, draw = "FAILED", True  # draw: the finished trials' pictures on the parent run, unless finish_search's
    down = None  # why the tracking server is known to be down as the trials end: the end calls it no more
    try:  # from here the parent run is ended, whatever happens (a Ctrl-C as the lines below are printed too)
        if state.resumed:
            say(f"resuming study '{plan.study_name}': {state.finished} of {plan.space.trials} trials done, "
                f"{count_of(state.orphans, 'interrupted trial')} to run again")
            for path, why in unreadable:
                say(f"warning: the trial record {path} is {why}: it is left out, and a finished trial without a "
                    "record is run again")
            if lost:
                say(f"{_trials_text(lost)} ended in the study, but {plan.work} holds no readable record of "
                    f"{_them(lost)} (the search stopped before it kept {_them(lost, 'its', 'their')} adapter"
                    f"{'s' * (len(lost) != 1)}): {_them(lost, 'it runs', 'they run')} again")
        elif resume:
            say(f"--resume: study '{plan.study_name}' has no trials yet; starting it")
        if not state.resumed:
            spc = plan.space
            say(f"study '{plan.study_name}' in {mask_url(plan.storage)}: {spc.trials} trial{'s' * (spc.trials != 1)} "
                f"of up to {spc.epochs} epoch{'s' * (spc.epochs != 1)}, prompt lengths {list(spc.prompt_lens)}, "
                f"lr {spc.lr_low:.3g}..{spc.lr_high:.3g}, {plan.concurrency} at a time; MLflow run {parent}")
        if state.finished < plan.space.trials:
            from optuna_studies.tuner import run_tuner

            try:
                run_tuner(plan, rdb, parent, state.finished, max_failures, ray_address, say,
                          settings.mlflow_tracking_uri(mlflow_uri))
            except optuna.exceptions.StorageInternalError as e:  # the study's database went away mid-search
                raise storage_failed(plan, e) from None
        done = finished_count(state.study)
        if done < plan.space.trials:
            outcome = "KILLED"
            raise Ptv2Interrupted(stopped_message(done, plan.space.trials))
        lost = lost_trials(state.study, _recorded(plan))
        if lost:  # ranking the records without them would silently leave them out, even the best
            kept = _them(lost, "its score and adapter", "their scores and adapters")
            raise Ptv2Error(f"{_trials_text(lost)} of study '{plan.study_name}' ended, but {plan.work} holds no "
                            f"readable record of {_them(lost)} ({kept}, which the search ranks): run the same command "
                            f"with --resume to run {_them(lost)} again and finish the search")
        draw = False  # finish_search draws them itself (also when no trial has a score)
        down = server_down(plan)
        left_behind = backfill_runs(plan, parent, say) if down is None else None
        result = finish_search(plan, parent, mlflow_uri, say, down)
        outcome = "FINISHED"
        written.append(result)
        if left_behind:  # the store took the result after all: the records the backfill needs went with the work folder
            say(left_behind)
        end_trial_runs_left_open(parent, result.trials, say)
        return result
    except KeyboardInterrupt:  # a Ctrl-C Tune did not take (a second one, one outside fit, or under Ray Client)
        if not written:  # after the output is written the search finished, whatever is left to clean up
            outcome = "KILLED"
        raise
    finally:
        try:
            # Ctrl-C, or fit raising: the trials Tune stopped keep RUNNING runs (a server known down: left alone)
            if outcome != "FINISHED" and down is None:
                after_stop(plan, parent, draw)
        finally:  # a second Ctrl-C during the above still ends the parent run
            if down is None:  # else the runs stay RUNNING, as when these calls failed: --resume ends them
                end_parent(parent, outcome, say)


def storage_failed(plan: SearchPlan, e: BaseException) -> Ptv2Error:
    """The study storage failing while trials run (a database server restarted or unreachable): one
    line with the database's own reason, where it was Optuna's traceback and its note on "invalid data
    in the commit, e.g. exceeding max length". The trials that ended are kept (the study, their records)."""
    from optuna_studies.store_guard import why

    ended = count_of(len(records.read_records(plan.work)), "trial")
    return Ptv2Error(f"the study storage {mask_url(plan.storage)} failed while trials ran ({why(e)}); the trials that "
                     f"ended are kept ({ended}, in the study and {plan.work}): once it answers again, run the same "
                     "command with --resume to run the others")


def _recorded(plan: SearchPlan) -> set[str]:
    """The Ray trial ids of the work folder's readable records."""
    return {r.get("ray_trial_id") for r in records.read_records(plan.work)}


def _trials_text(numbers: list[int]) -> str:
    """``trial 3`` or ``trials 0, 3``."""
    return f"trial{'s' * (len(numbers) != 1)} {', '.join(map(str, numbers))}"


def _them(numbers: list[int], one: str = "it", more: str = "them") -> str:
    return one if len(numbers) == 1 else more


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
              "seed": plan.constants["seed"],
              "study_name": plan.study_name, "study_storage": masked, "space_file": plan.space.source} | {
        f"fixed.{k}": v for k, v in plan.space.fixed.items()}  # every trial's other settings (batch_size, ...)
    params |= {k: v for k, v in plan.originals.items() if k in ("model", "init", "space_file")}
    tags = {"ptv2.kind": "search", "ptv2.task": plan.task_name, "ptv2.study_name": plan.study_name,
            "ptv2.study_storage": masked, "ptv2.optuna_dashboard": f"optuna-dashboard {masked}"}
    # no trial ran yet: the same command starts (or resumes) it once the store works
    failed = ("open the search's run", ": no trial ran; once the store works again, run the same command again")
    with mlflow_guard(*failed):
        parent = tracking.open_parent_run(experiment, mlflow_uri, plan.study_name,
                                          state.study.user_attrs.get(PARENT_RUN_ATTR), params, tags)
    state.study.set_user_attr(PARENT_RUN_ATTR, parent)
    with mlflow_guard(*failed):
        if "space_file" in plan.originals and Path(plan.space.source).is_file():  # a copy, deleted with the step
            tracking.log_artifact(parent, Path(plan.space.source))
        if state.resumed:
            tracking.end_stale_trial_runs(parent, records.read_records(plan.work))
    return parent
