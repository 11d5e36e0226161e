"""Ray Tune's OptunaSearch (TPE) on the study's RDB storage, with these study-keeping rules.

1. A trial that ends with a ``failure`` (diverged, bad configuration) is told to Optuna as
   FAIL; Ray Tune sees it end normally, so it is never retried.
2. A trial ASHA stopped before the last epoch is told as PRUNED (its value: the last running best
   it reported), so the study, ``optuna-dashboard`` and TPE tell it apart from a finished one.
   Ray hands the result ASHA stopped it on to ``on_trial_complete`` only, never to
   ``on_trial_result``, so that epoch is reported to Optuna first: without it a trial stopped at
   epoch 2 kept epoch 1's value, and one stopped at epoch 1 had none (TPE ranked every such trial
   the same, last).
3. The study may keep the prompt length as its rank (``optuna_studies/params.py``); the trial
   config Ray runs always holds the length itself (and the Optuna trial, as user attribute).
4. Every Optuna trial carries its Ray trial id (user attribute ``ray_trial_id``), and every
   trial config its Optuna trial number (``optuna_number``), so the study, the Tune experiment
   and the MLflow runs can be joined, also where Tune's driver holds a copy of this searcher
   (Ray Client).
5. A trial's end that the storage refuses for a moment (a busy sqlite file, a dropped connection)
   is told again, after 1, 2 and 4 s: Ray's OptunaSearch logs the failure as a warning and goes
   on, so the finished trial stayed RUNNING in the study, and ``--resume`` ran it again.
6. No storage password in a pickle: Tune writes the searcher into the work folder (``tuner.pkl``,
   ``searcher-state-*.pkl``), and Optuna's storage pickles its URL, password included. The pickle
   keeps the URL masked; unpickling opens the storage again with the URL this process opened it
   with, else ``PTV2_OPTUNA_STORAGE`` when it is the same URL (the Ray head under Ray Client has
   it: ``k8s/base/raycluster.yaml``). A URL without a password travels as it is.
"""
from __future__ import annotations

import logging
import pickle
import time
import warnings
from typing import Any, Mapping

import optuna
from ray.tune.result import TRAINING_ITERATION
from ray.tune.search.optuna import OptunaSearch

from optuna_studies.params import distributions, from_study
from optuna_studies.space import SearchSpace
from optuna_studies.study import open_storage
from optuna_studies.urls import keep_secret, recall_secret

TELL_WAITS_S = (1.0, 2.0, 4.0)  # rule 5
log = logging.getLogger(__name__)

__all__ = ["StudySearch", "distributions", "sampler", "started_trials", "trial_status"]


def trial_status(last: Mapping[str, Any], epochs: int) -> str:
    """completed, pruned (stopped by ASHA before the last epoch), diverged or failed."""
    failure = last.get("failure")
    if failure:
        return "diverged" if str(failure).startswith("diverged") else "failed"
    return "completed" if int(last.get("epoch", 0)) >= epochs else "pruned"


def sampler(space: SearchSpace, started: int = 0) -> optuna.samplers.TPESampler:
    """TPE; ``constant_liar`` keeps concurrent trials from all sampling the same point.

    ``started``: trials the study ran before this searcher (a resumed search). A sampler seeded as
    the first one was would draw the same random start-up points again (a resumed trec search
    re-ran its trial 0's exact configuration), so it is seeded ``sampler.seed + started`` (modulo 2**32): a new
    study draws as before, and a resumed one is as reproducible, from where it stopped."""
    return optuna.samplers.TPESampler(n_startup_trials=space.n_startup_trials, seed=(space.seed + started) % 2**32,
                                      multivariate=True, constant_liar=True)


def started_trials(storage: optuna.storages.BaseStorage, study_name: str) -> int:
    """Trials of the study that ran or run (enqueued, WAITING ones have not)."""
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return 0
    return sum(t.state != optuna.trial.TrialState.WAITING for t in storage.get_all_trials(study_id, deepcopy=False))


class StudySearch(OptunaSearch):
    """OptunaSearch with failed trials recorded as FAIL, stopped ones as PRUNED, and Ray trial ids
    on Optuna trials (Optuna numbers in trial configs)."""

    def __init__(self, space: SearchSpace, study_name: str, storage: optuna.storages.BaseStorage, metric: str):
        self._epochs, self._search_space = space.epochs, space
        super().__init__(space=distributions(space), metric=metric, mode=space.mode,
                         sampler=sampler(space, started_trials(storage, study_name)),
                         study_name=study_name, storage=storage)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        config = super().suggest(trial_id)
        if isinstance(config, dict):
            config = from_study(self._search_space, config)  # the length itself, also where the study keeps its rank
        trial = self._ot_trials.get(trial_id)
        if trial is not None and "ray_trial_id" not in trial.user_attrs:
            trial.set_user_attr("ray_trial_id", trial_id)
            if isinstance(config, dict) and "prompt_len" not in trial.params:
                trial.set_user_attr("prompt_len", config["prompt_len"])
        if trial is not None and isinstance(config, dict):
            config["optuna_number"] = trial.number
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        status = trial_status(result, self._epochs) if result and not error else None
        if status in ("diverged", "failed"):
            result, error = None, True  # Optuna: FAIL (a NaN value would be refused and stay RUNNING)
        elif status == "pruned":  # no value and no error: OptunaSearch tells PRUNED, Optuna keeps the last report
            self._report_stopping_epoch(trial_id, result)
            result = {k: v for k, v in result.items() if k != self.metric}
        super().on_trial_complete(trial_id, result=result, error=error)
        self._tell_again_if_refused(trial_id, result, error)

    def _tell_again_if_refused(self, trial_id: str, result: Mapping[str, Any] | None, error: bool) -> None:
        """Tell the trial's end again while the study still has it RUNNING (rule 5)."""
        trial = self._ot_trials.get(trial_id)
        if trial is None:
            return
        value = (result or {}).get(self.metric)
        state = optuna.trial.TrialState.COMPLETE if value is not None else (
            optuna.trial.TrialState.FAIL if error else optuna.trial.TrialState.PRUNED)
        problem: Exception | None = None
        for wait in (0.0, *TELL_WAITS_S):
            time.sleep(wait)
            try:
                if self._storage.get_trial(trial._trial_id).state.is_finished():
                    return
                if wait:
                    self._ot_study.tell(trial, value, state=state)
                    return
            except Exception as e:  # noqa: BLE001 (the storage's own errors: try again)
                problem = e
        log.warning("trial %s (Optuna trial %s) could not be recorded in the study (%s): it stays RUNNING there, "
                    "and a --resume runs it again", trial_id, trial.number, problem)

    def __getstate__(self) -> dict[str, Any]:
        """The state with the storage as its masked URL, the study left out and live trials as ids."""
        state = self.__dict__.copy()
        state["_ptv2_storage"] = keep_secret(state.pop("_storage").url)
        state.pop("_ot_study", None)
        state["_ot_trials"] = {tid: trial._trial_id for tid, trial in state["_ot_trials"].items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        (url, secret), trials = state.pop("_ptv2_storage"), state.pop("_ot_trials")
        self.__dict__.update(state)
        self._storage = open_storage(recall_secret(url, secret, "PTV2_OPTUNA_STORAGE", "study storage"))
        self._ot_study = optuna.load_study(study_name=self._study_name, storage=self._storage, sampler=self._sampler,
                                           pruner=optuna.pruners.NopPruner())
        self._ot_trials = {tid: optuna.Trial(self._ot_study, db_id) for tid, db_id in trials.items()}

    def save(self, checkpoint_path: str) -> None:  # OptunaSearch pickles its __dict__: the storage's URL with it
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__getstate__(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__setstate__(pickle.load(f))

    def _report_stopping_epoch(self, trial_id: str, result: Mapping[str, Any]) -> None:
        """Report the epoch ASHA stopped the trial on, unless Optuna has it already."""
        trial, value, step = self._ot_trials.get(trial_id), result.get(self.metric), result.get(TRAINING_ITERATION)
        if trial is None or value is None or step is None:
            return
        with warnings.catch_warnings():  # a step reported already is kept as it is
            warnings.filterwarnings("ignore", message="The reported value is ignored")
            trial.report(float(value), int(step))
