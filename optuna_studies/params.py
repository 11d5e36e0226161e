"""How a trial's prompt length and learning rate are kept in the Optuna study.

The learning rate is a float (log) distribution. The prompt length is one of the space's
choices, kept one of two ways (``sampler.length``):

- ``rank``: its rank among the sorted choices, an integer ``prompt_len_rank``
  that TPE models as ordered, so what it learns about length 32 informs 16 and 64 (the best
  length rises with a task's difficulty; a category cannot express "longer is better");
- ``categorical`` (the default): the length itself as an unordered category.

Trial configs, MLflow runs, ``best.json`` and the plots always carry the length itself
(``prompt_len``); in rank mode each Optuna trial also gets it as the user attribute ``prompt_len``.
"""
from __future__ import annotations

from typing import Any, Mapping

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from optuna_studies.space import SearchSpace

LENGTH_RANK = "prompt_len_rank"


def distributions(space: SearchSpace) -> dict[str, optuna.distributions.BaseDistribution]:
    """The sampled part of a trial, as the study keeps it."""
    lr = FloatDistribution(space.lr_low, space.lr_high, log=space.lr_log)
    if space.length == "rank":
        return {LENGTH_RANK: IntDistribution(0, len(space.prompt_lens) - 1), "lr": lr}
    return {"prompt_len": CategoricalDistribution(list(space.prompt_lens)), "lr": lr}


def to_study(space: SearchSpace, point: Mapping[str, Any]) -> dict[str, Any]:
    """``{prompt_len, lr}`` as the study's parameters (to enqueue)."""
    if space.length == "rank":
        return {LENGTH_RANK: sorted(space.prompt_lens).index(point["prompt_len"]), "lr": point["lr"]}
    return {"prompt_len": point["prompt_len"], "lr": point["lr"]}


def from_study(space: SearchSpace, params: Mapping[str, Any]) -> dict[str, Any]:
    """The study's parameters (or a suggested config) with the length itself as ``prompt_len``."""
    out = {k: v for k, v in params.items() if k != LENGTH_RANK}
    if LENGTH_RANK in params:
        out["prompt_len"] = sorted(space.prompt_lens)[int(params[LENGTH_RANK])]
    return out
