"""The search's start-up trials as a Latin hypercube over prompt length × learning rate.

TPE proposes at random until ``n_startup_trials`` trials have finished. With 4-5 start-up trials
and 4-5 prompt lengths, random draws often repeat a length and leave another (often the longest,
which a hard task needs) untried. A Latin hypercube spreads them: with n points, each of n
equal strata of the length axis (the sorted choices) and of the (log) learning-rate range holds
exactly one point, paired at random. With as many points as lengths, every length is tried once.
The points are enqueued before the first trial, so TPE sees them as its start-up trials.
"""
from __future__ import annotations

import math
import random
from typing import Any

from optuna_studies.params import to_study
from optuna_studies.space import SearchSpace


def startup_points(space: SearchSpace) -> list[dict[str, Any]]:
    """The space's start-up trials (``sampler.startup: lhs``): ``min(n_startup_trials, trials)``
    points, less those the space enqueues itself, drawn with the space's ``sampler.seed``; none for
    ``startup: random``."""
    if space.startup != "lhs":
        return []
    n = max(min(space.n_startup_trials, space.trials) - len(space.enqueue), 0)
    rng = random.Random(space.seed)
    lens = sorted(space.prompt_lens)
    points = []
    for s_len, s_lr in zip(_strata(n, rng), _strata(n, rng)):
        u_len, u_lr = (s_len + rng.random()) / n, (s_lr + rng.random()) / n
        if space.lr_log:
            lr = math.exp(math.log(space.lr_low) + u_lr * (math.log(space.lr_high) - math.log(space.lr_low)))
        else:
            lr = space.lr_low + u_lr * (space.lr_high - space.lr_low)
        lr = min(max(lr, space.lr_low), space.lr_high)  # exp/log rounding stays inside the range
        points.append({"prompt_len": lens[min(int(u_len * len(lens)), len(lens) - 1)], "lr": lr})
    return points


def first_points(space: SearchSpace) -> list[dict[str, Any]]:
    """What a new study enqueues, as its parameters: the space's own points, then its start-up trials."""
    return [to_study(space, p) for p in list(space.enqueue) + startup_points(space)]


def _strata(n: int, rng: random.Random) -> list[int]:
    order = list(range(n))
    rng.shuffle(order)
    return order
