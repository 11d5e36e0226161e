"""The study in its Optuna RDB storage: URL checks, password masking, naming, resuming.

The storage outlives any driver: it is what ``--resume`` trusts. Finished trials stay as they
are; trials left RUNNING by a killed driver ("orphans") are marked FAIL and their parameters
enqueued again, so they run once more and nothing finished runs twice. A trial the study has
ended whose record the search's work folder lacks (``rerun_lost``: Ray Tune tells the study before
the driver keeps the trial's adapter and record) is run again too: the study keeps it as it ended
(Optuna refuses to change a finished trial) and names it in ``ptv2_lost``.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from ptv2_core.errors import Ptv2Error
from optuna_studies.schema_race import open_once
from optuna_studies.sqlite_file_check import check_sqlite_file
from optuna_studies.space import SearchSpace
from optuna_studies.startup import first_points
from ptv2_core.wording import count_of
from optuna_studies.urls import check_password_has_no_at, mask_url, with_driver  # noqa: F401 (imported from here too)

SCHEMES = ("sqlite", "postgresql", "mysql")
ORPHAN_ATTR = "ptv2_orphaned"
RETRY_ATTR = "ptv2_retry_of"  # an enqueued rerun of an orphan (or of a lost trial): its number
LOST_ATTR = "ptv2_lost"  # the study's: numbers of the ended trials whose record was lost, run again
SPACE_ATTR = "ptv2_space"
SETTINGS_ATTR = "ptv2_settings"
PARENT_RUN_ATTR = "mlflow_parent_run_id"


def check_storage_url(url: str, *, folder_here: bool = True) -> str:
    """The URL itself if it names an RDB Optuna can use (sqlite, postgresql, mysql); Ptv2Error
    otherwise. Nothing is created or connected to here. ``folder_here`` false: a sqlite file is
    opened on another machine (a step's pod), so its folder is not looked for here."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    check_password_has_no_at(url, "study storage URL")
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        raise Ptv2Error(f"bad study storage URL '{mask_url(url)}': expected e.g. sqlite:///optuna.db or "
                        "postgresql://user:password@host:5432/db") from None
    if parsed.get_backend_name() not in SCHEMES:
        raise Ptv2Error(f"unsupported study storage '{parsed.get_backend_name()}' in '{mask_url(url)}': "
                        f"use one of {', '.join(SCHEMES)}")
    check_sqlite_file(url, "study storage", "sqlite:///path/optuna.db",
                      "name another storage", folder_here=folder_here)
    return url


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Connect to (and, if new, create the tables of) the study storage; processes creating the
    same new storage at once open it again until one has (``optuna_studies/schema_race.py``)."""
    check_storage_url(url)
    sqlite = url.startswith("sqlite")
    try:
        return open_once(url, lambda: optuna.storages.RDBStorage(
            with_driver(url), engine_kwargs=None if sqlite else {"pool_pre_ping": True}))
    except Exception as e:  # sqlalchemy/driver errors: unreachable host, bad credentials, ...
        raise Ptv2Error(f"cannot open study storage '{mask_url(url)}': {str(e).splitlines()[0]}") from None


def default_study_name(task: str, model: str, out_dir: Path) -> str:
    """A stable name per (task, model, output folder): the same command resumes the same study."""
    slug = lambda s: re.sub(r"[^A-Za-z0-9]+", "-", Path(s).stem if "/" in s or s.endswith(".yaml") else s).strip("-")
    digest = hashlib.sha1(str(Path(out_dir).resolve()).encode()).hexdigest()[:8]
    return f"ptv2-{slug(task)}-{slug(model)}-{digest}"


@dataclass
class StudyState:
    """Where a study stands before this run: how many trials are done, how many interrupted ones
    (orphans) wait to run again."""

    study: optuna.Study
    finished: int
    orphans: int
    resumed: bool


def prepare_study(storage: optuna.storages.RDBStorage, name: str, space: SearchSpace, resume: bool,
                  settings: dict | None = None) -> StudyState:
    """Create the study, or (``resume``) reopen it: orphans → FAIL + enqueued again.

    Without ``resume`` an existing study with trials is an error. With it, a study created for
    another search space, or whose trials ran with other ``settings`` (what every trial shares:
    task, epochs, fixed settings, data limits, seed, base model, pre-trained prompt), is an error too:
    its trials would not be comparable. A study that never ran a trial is made anew for this
    space (it kept the old direction and enqueued points: a point outside the new space failed
    inside Tune).
    """
    space_doc = json.dumps(_space_key(space), sort_keys=True)
    settings_doc = json.dumps(settings or {}, sort_keys=True, default=str)
    try:
        existing = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        existing = None
    started = check_study(existing, name, space, resume, settings)
    if existing is not None and not started and (existing.user_attrs.get(SPACE_ATTR, space_doc) != space_doc
                                                 or existing.direction != space.direction):
        optuna.delete_study(study_name=name, storage=storage)  # nothing ran: nothing is lost
        existing = None
    study = existing or optuna.create_study(study_name=name, storage=storage, direction=space.direction)
    study.set_user_attr(SPACE_ATTR, space_doc)
    if settings is not None and (not started or SETTINGS_ATTR not in study.user_attrs):
        study.set_user_attr(SETTINGS_ATTR, settings_doc)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        storage.set_trial_user_attr(t._trial_id, ORPHAN_ATTR, True)
        storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={RETRY_ATTR: t.number})
    # the reruns still to run: those enqueued now, and those of a resume refused or stopped after it marked
    # its orphans (they stay enqueued, and this run runs them)
    orphans = sum(RETRY_ATTR in t.user_attrs for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    if not started:  # the space's own points, then its Latin-hypercube start-up trials (if any)
        for point in first_points(space):
            study.enqueue_trial(point, skip_if_exists=True)
    return StudyState(study, finished_count(study), orphans, bool(started))


def check_study(existing: optuna.Study | None, name: str, space: SearchSpace, resume: bool,
                settings: dict | None = None) -> list[optuna.trial.FrozenTrial]:
    """``prepare_study``'s refusals, read-only (a search makes them before Ray too): a study with
    trials without ``resume``, or one started with another space or other ``settings``. Returns
    the study's started trials (enqueued ones alone never ran)."""
    space_doc = json.dumps(_space_key(space), sort_keys=True)
    settings_doc = json.dumps(settings or {}, sort_keys=True, default=str)
    # enqueued (WAITING) trials alone do not make a study started: they never ran
    started = [t for t in existing.trials if t.state != TrialState.WAITING] if existing is not None else []
    fresh = "start a new search with --study-name NAME or another --out (the study keeps its trials)"
    if started and not resume:
        raise _not_resumed(name, started, fresh, set(existing.user_attrs.get(LOST_ATTR, ())))
    if started and existing.user_attrs.get(SPACE_ATTR, space_doc) != space_doc:
        raise Ptv2Error(f"study '{name}' was started with another search space "
                        f"({existing.user_attrs[SPACE_ATTR]}); resume it with the same one, or {fresh}")
    if started and settings is not None:
        before = json.loads(existing.user_attrs.get(SETTINGS_ATTR, settings_doc))
        if "subset" not in before and (before.get("max_train") or before.get("max_eval")):
            # a capped study from before the rule was recorded: no option gives back its random rows
            raise Ptv2Error(f"study '{name}' kept a random subset of the rows for --max-train/--max-eval (as ptv2 did "
                            "before 2026-12-06); they are stratified by label now, so new trials would train and "
                            f"score on other rows than its trials: {fresh}")
        # a setting a study of an earlier version did not record is not held against it
        differ = _differences(before, {k: v for k, v in json.loads(settings_doc).items() if k in before})
        if differ:
            raise Ptv2Error(f"study '{name}' ran its trials with other settings ({differ}); resume it with the same "
                            f"ones, or {fresh}{_old_token_space(space, before)}")
    return started


def _old_token_space(space: SearchSpace, before: dict) -> str:
    """The way on for a user token task's study started before its space became ``default_token.yaml``
    (8 epochs, first rung at 2: ``default.yaml``'s 5 and 1 before 2026-12-07), whose resume its epochs refuse."""
    source = Path(space.source)
    old = source.with_name("default.yaml")
    if source.name != "default_token.yaml" or before.get("epochs") == space.epochs or not old.is_file():
        return ""
    import yaml

    if before.get("epochs") != (yaml.safe_load(old.read_text(encoding="utf-8")) or {}).get("epochs"):
        return ""  # not default.yaml's epochs: another --epochs, not the old space
    return (f"; a user token task's search ran on default.yaml until 2026-12-07: to resume a study started before, "
            f"give --space {old}")


def _not_resumed(name: str, started: list[optuna.trial.FrozenTrial], fresh: str, lost: set[int]) -> Ptv2Error:
    """The refusal of a study with trials, run again without ``--resume``: what its trials are and
    the ways on. Interrupted trials (left RUNNING by a Ctrl-C or a killed driver, or marked orphans
    or ``lost`` by a resume that went no further) are not failed ones: ``--resume`` runs them again."""
    interrupted = sum(t.state == TrialState.RUNNING or bool(t.user_attrs.get(ORPHAN_ATTR)) or t.number in lost
                      for t in started)
    ended = len(started) - interrupted
    trials = count_of(len(started), "trial")
    if not ended:
        return Ptv2Error(f"study '{name}' has {trials}, none ended: the search was stopped or killed while "
                         f"{'they' if interrupted > 1 else 'it'} ran; run the same command with --resume to run "
                         f"{'them' if interrupted > 1 else 'it'} again and go on, or {fresh}")
    # a pruned trial has a score too (its last epoch's; the best if none completed)
    if not any(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in started):  # say, every trial diverged
        if interrupted:
            return Ptv2Error(f"study '{name}' already has {trials}: {ended} ended without a score and {interrupted} "
                             f"{'were' if interrupted > 1 else 'was'} interrupted; run the same command with --resume "
                             f"to run the interrupted {'ones' if interrupted > 1 else 'one'} again and go on, "
                             f"or {fresh}")
        # --resume would fail again (or, with another space, be refused)
        return Ptv2Error(f"study '{name}' already has {trials}, none with a score: {fresh}")
    return Ptv2Error(f"study '{name}' already has {trials}: pass --resume to continue it, or {fresh}")


def finished_count(study: optuna.Study) -> int:
    """Trials that count against the budget: finished, except orphans and lost ones (they run again)."""
    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    lost = set(study.user_attrs.get(LOST_ATTR, ()))
    return sum(1 for t in study.get_trials(deepcopy=False, states=done)
               if not t.user_attrs.get(ORPHAN_ATTR) and t.number not in lost)


def lost_trials(study: optuna.Study, recorded: set[str]) -> list[int]:
    """The numbers of the trials the study has COMPLETE or PRUNED whose Ray trial id is not in
    ``recorded`` (the ids of the work folder's readable records), leaving out those already run again.

    Ray Tune tells the study that a trial ended before the driver keeps its adapter and writes its
    record (``trial_log.py``): a driver killed between the two (SIGKILL, an evicted pod), or a copy
    or write that failed, leaves such a trial. The search ranks the records, so without a rerun its
    output would silently leave it out, even when it was the best. (A FAIL trial has no adapter to
    lose: its missing record costs a row of ``trials.csv`` only.)"""
    done = set(study.user_attrs.get(LOST_ATTR, ()))
    return [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
            if t.user_attrs.get("ray_trial_id") and t.user_attrs["ray_trial_id"] not in recorded
            and t.number not in done]


def rerun_lost(study: optuna.Study, recorded: set[str]) -> list[int]:
    """Mark the ``lost_trials`` (study attribute ``ptv2_lost``) and enqueue their parameters again
    (``ptv2_retry_of``), as ``prepare_study`` does for orphans; returns their numbers. Marked first: a
    process killed between the two leaves a trial that no longer counts (the budget runs a new one in
    its place), never one enqueued twice."""
    numbers = lost_trials(study, recorded)
    if numbers:
        study.set_user_attr(LOST_ATTR, sorted(set(study.user_attrs.get(LOST_ATTR, ())) | set(numbers)))
        trials = {t.number: t for t in study.get_trials(deepcopy=False)}
        for n in numbers:
            study.enqueue_trial(trials[n].params, user_attrs={RETRY_ATTR: n})
    return numbers


def delete_study(storage_url: str, name: str) -> None:
    """Remove a study and its trials (tests and clean-ups)."""
    optuna.delete_study(study_name=name, storage=open_storage(storage_url))


def _differences(before: dict, now: dict) -> str:
    """``"epochs 4 → 6, max_train 200 → None"`` for the keys whose values differ."""
    keys = sorted(set(before) | set(now))
    return ", ".join(f"{k} {before.get(k)} → {now.get(k)}" for k in keys if before.get(k) != now.get(k))


def _space_key(space: SearchSpace) -> dict:
    """What makes trials comparable: choices, range, metric and direction (not the budget)."""
    key = {"prompt_lens": list(space.prompt_lens), "lr": [space.lr_low, space.lr_high, space.lr_log],
           "metric": space.metric, "mode": space.mode}
    # the length's rank and the length itself are different parameters to Optuna (and a study
    # from before ranks existed, keyed without this, stays resumable as categorical)
    return key | ({"length": "rank"} if space.length == "rank" else {})
