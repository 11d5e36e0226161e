"""Ray Tune's OptunaSearch (TPE) on the study's RDB storage, with two study-keeping rules.

1. A trial that ends with a ``failure`` (diverged, bad configuration) is told to Optuna as
   FAIL; Ray Tune sees it end normally, so it is never retried.
2. Every Optuna trial carries its Ray trial id (user attribute ``ray_trial_id``), so the
   study, the Tune experiment and the MLflow runs can be joined.
"""
from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from ray.tune.search.optuna import OptunaSearch

from optuna_studies.space import SearchSpace


def distributions(space: SearchSpace) -> dict[str, optuna.distributions.BaseDistribution]:
    """The sampled part of a trial config."""
    return {
        "prompt_len": CategoricalDistribution(list(space.prompt_lens)),
        "lr": FloatDistribution(space.lr_low, space.lr_high, log=space.lr_log),
    }


def sampler(space: SearchSpace) -> optuna.samplers.TPESampler:
    """TPE; ``constant_liar`` keeps concurrent trials from all sampling the same point."""
    return optuna.samplers.TPESampler(n_startup_trials=space.n_startup_trials, seed=space.seed,
                                      multivariate=True, constant_liar=True)


class StudySearch(OptunaSearch):
    """OptunaSearch with failed trials recorded as FAIL and Ray trial ids on Optuna trials."""

    def __init__(self, space: SearchSpace, study_name: str, storage: optuna.storages.BaseStorage, metric: str):
        super().__init__(space=distributions(space), metric=metric, mode=space.mode, sampler=sampler(space),
                         study_name=study_name, storage=storage)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        config = super().suggest(trial_id)
        trial = self._ot_trials.get(trial_id)
        if trial is not None and "ray_trial_id" not in trial.user_attrs:
            trial.set_user_attr("ray_trial_id", trial_id)
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if result and result.get("failure"):
            result, error = None, True  # Optuna: FAIL (a NaN value would be refused and stay RUNNING)
        super().on_trial_complete(trial_id, result=result, error=error)

    def optuna_number(self, trial_id: str) -> int | None:
        """The study's number for a Ray trial of this run."""
        trial = self._ot_trials.get(trial_id)
        return None if trial is None else trial.number
