"""How a study samples: Latin-hypercube start-up trials (``sampler.startup: lhs``) and the prompt
length kept as its rank (``sampler.length: rank``), the points and how a study gets them."""
from __future__ import annotations

import dataclasses
import math

import pytest
from optuna.trial import TrialState

from ptv2_core.errors import Ptv2Error
from optuna_studies.space import parse_space
from optuna_studies.startup import startup_points

RANGE = {"low": 3e-3, "high": 5e-2, "log": True}


def space(**kw):
    doc = {"prompt_len": [8, 16, 32, 64, 128], "lr": RANGE, "trials": 10,
           "sampler": {"n_startup_trials": 5, "seed": 0, "startup": "lhs", "length": "rank"}} | kw
    return parse_space(doc)


def seeded(s, seed):
    return dataclasses.replace(s, seed=seed)  # the space's sampler.seed


def strata_of(points):
    lo, hi = math.log(RANGE["low"]), math.log(RANGE["high"])
    return sorted(int((math.log(p["lr"]) - lo) / (hi - lo) * len(points)) for p in points)


def test_as_many_points_as_lengths_try_every_length_once_with_one_lr_per_stratum():
    for seed in range(20):
        points = startup_points(seeded(space(), seed))
        assert sorted(p["prompt_len"] for p in points) == [8, 16, 32, 64, 128]
        assert strata_of(points) == [0, 1, 2, 3, 4]
        assert all(RANGE["low"] <= p["lr"] <= RANGE["high"] for p in points)
    assert startup_points(space()) == startup_points(space())  # the space's seed decides
    assert startup_points(seeded(space(), 1)) != startup_points(seeded(space(), 2))


def test_fewer_points_than_lengths_spread_over_short_and_long():
    s = space(sampler={"n_startup_trials": 2, "seed": 0, "startup": "lhs"})
    for seed in range(20):
        lens = sorted(p["prompt_len"] for p in startup_points(seeded(s, seed)))
        assert lens[0] in (8, 16, 32) and lens[1] in (32, 64, 128) and lens[0] != lens[1]


def test_more_points_than_lengths_repeat_each_length_evenly():
    s = parse_space({"prompt_len": [4, 8], "lr": RANGE, "trials": 10,
                     "sampler": {"n_startup_trials": 6, "startup": "lhs"}})
    lens = [p["prompt_len"] for p in startup_points(s)]
    assert sorted(lens) == [4, 4, 4, 8, 8, 8]


def test_the_budget_and_the_spaces_own_points_come_first():
    assert len(startup_points(space(trials=3))) == 3  # never more start-up trials than trials
    s = space(enqueue=[{"prompt_len": 16, "lr": 1e-2}])
    assert len(startup_points(s)) == 4  # an enqueued point is a start-up trial too
    assert startup_points(space(sampler={"n_startup_trials": 5, "startup": "random"})) == []
    default = parse_space({"prompt_len": [4], "lr": RANGE})
    assert (default.startup, default.length) == ("random", "categorical")  # the defaults
    assert startup_points(default) == []


def test_a_bad_startup_design_or_length_kind_is_refused():
    with pytest.raises(Ptv2Error, match="sampler.startup must be lhs or random"):
        space(sampler={"startup": "sobol"})
    with pytest.raises(Ptv2Error, match="sampler.length must be rank or categorical"):
        space(sampler={"length": "ordinal"})


def test_a_new_study_holds_the_points_as_waiting_trials_and_a_resumed_one_gets_none_again(tmp_path):
    import optuna

    from optuna_studies.searcher import distributions
    from optuna_studies.study import open_storage, prepare_study

    s = space()
    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    study = prepare_study(storage, "s", s, resume=False).study
    waiting = study.get_trials(states=(TrialState.WAITING,))
    ranks = {8: 0, 16: 1, 32: 2, 64: 3, 128: 4}
    assert [t.system_attrs["fixed_params"] for t in waiting] == [
        {"prompt_len_rank": ranks[p["prompt_len"]], "lr": p["lr"]} for p in startup_points(s)]
    first = study.ask(distributions(s))
    assert first.params == {"prompt_len_rank": ranks[startup_points(s)[0]["prompt_len"]],
                            "lr": startup_points(s)[0]["lr"]}  # the search runs them first
    study.tell(first, 0.5)
    again = prepare_study(storage, "s", s, resume=True).study
    assert len(again.get_trials(states=(TrialState.WAITING,))) == 4  # not enqueued twice
    assert len(optuna.load_study(study_name="s", storage=storage).trials) == 5


def test_rank_and_categorical_spaces_keep_the_length_their_own_way():
    from optuna.distributions import CategoricalDistribution, IntDistribution

    from optuna_studies.params import distributions, from_study, to_study

    ranked = space()
    plain = space(sampler={"length": "categorical"})
    assert ranked.length == "rank" and plain.length == "categorical"
    assert distributions(ranked)["prompt_len_rank"] == IntDistribution(0, 4)
    assert distributions(plain)["prompt_len"] == CategoricalDistribution([8, 16, 32, 64, 128])
    for n in (8, 64, 128):
        point = {"prompt_len": n, "lr": 0.01}
        assert from_study(ranked, to_study(ranked, point)) == point == from_study(plain, to_study(plain, point))
    assert to_study(ranked, {"prompt_len": 64, "lr": 0.01}) == {"prompt_len_rank": 3, "lr": 0.01}
    assert from_study(ranked, {"prompt_len_rank": 0, "lr": 0.02, "task": "t"}) == {"prompt_len": 8, "lr": 0.02, "task": "t"}


def test_a_study_started_categorical_resumes_only_as_categorical(tmp_path):
    from optuna_studies.searcher import distributions
    from optuna_studies.study import open_storage, prepare_study

    plain = space(sampler={"length": "categorical", "startup": "random"})
    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    study = prepare_study(storage, "s", plain, resume=False).study
    study.tell(study.ask(distributions(plain)), 0.5)
    with pytest.raises(Ptv2Error, match="another search space"):
        prepare_study(storage, "s", space(), resume=True)  # its trials hold lengths, not ranks
    assert prepare_study(storage, "s", plain, resume=True).resumed


def test_the_searcher_hands_ray_the_length_and_tells_optuna_the_rank(tmp_path):
    from optuna_studies.searcher import StudySearch
    from optuna_studies.study import open_storage, prepare_study

    s = space()
    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    prepare_study(storage, "s", s, resume=False)
    search = StudySearch(s, "s", storage, "best_objective")
    seen = []
    for k in range(7):  # the 5 start-up points, then TPE's own
        config = search.suggest(f"t{k}")
        assert set(config) == {"prompt_len", "lr", "optuna_number"} and config["prompt_len"] in s.prompt_lens
        seen.append(config["prompt_len"])
        last = {"best_objective": 0.1 * config["prompt_len"] / 128, "epoch": s.epochs, "training_iteration": s.epochs}
        search.on_trial_result(f"t{k}", last)
        search.on_trial_complete(f"t{k}", result=last)
    assert sorted(seen[:5]) == [8, 16, 32, 64, 128]  # the Latin hypercube tried every length first
    import optuna

    trials = optuna.load_study(study_name="s", storage=storage).trials
    assert all(t.user_attrs["prompt_len"] == sorted(s.prompt_lens)[t.params["prompt_len_rank"]] for t in trials)
