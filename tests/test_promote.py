"""Promotion: the paired bootstrap (exact metrics, the decision rule) and promote() end to end
on a real sqlite MLflow registry with real trained adapters: better challenger promoted, worse
one not, the majority-class floor, a forced promotion with its audit tags, and a failure
halfway that leaves the aliases as they were."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from components.registry.bootstrap import example_stats, metric_from_sums, paired_bootstrap
from ptv2_core.errors import Ptv2Error
from ptv2_core.metrics import compute_metrics
from ptv2_core.tasks import TaskSpec
from test_registry_support import adapters_fixture, registry_state

TREC = TaskSpec("trec", "sequence", ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"), "accuracy")
TREC_F1 = TaskSpec("trec", "sequence", TREC.labels, "macro_f1")
EVAL = 100  # test examples scored per promotion (2 shared CPU cores)
NER = TaskSpec("ner", "token", ("O", "B-loc", "I-loc", "B-per", "I-per"), "span_f1", "tokens", "tags")


def _random_seq(rng: random.Random, n: int, k: int, skill: float) -> tuple[list[int], list[int]]:
    gold = [rng.randrange(k) for _ in range(n)]
    return [g if rng.random() < skill else rng.randrange(k) for g in gold], gold


def _random_tags(rng: random.Random, n: int) -> tuple[list[list[int]], list[list[int]]]:
    preds, golds = [], []
    for _ in range(n):
        length = rng.randrange(1, 12)
        golds.append([rng.choice([0, 0, 0, 1, 2, 3, 4]) for _ in range(length)])
        preds.append([g if rng.random() < 0.7 else rng.randrange(5) for g in golds[-1]])
    return preds, golds


@pytest.mark.parametrize("spec", [TREC, TREC_F1, NER], ids=["accuracy", "macro_f1", "span_f1"])
def test_statistic_equals_core_metric_on_full_and_resampled_sets(spec):
    rng = random.Random(1)
    preds, golds = _random_tags(rng, 60) if spec.type == "token" else _random_seq(rng, 80, 6, 0.5)
    stats = example_stats(spec, preds, golds)
    assert metric_from_sums(spec, stats.sum(0)) == pytest.approx(compute_metrics(spec, preds, golds)["score"], abs=1e-12)
    # a resample with repeats is the same as scoring the repeated examples
    idx = [rng.randrange(len(golds)) for _ in range(len(golds))]
    sub_p, sub_g = [preds[i] for i in idx], [golds[i] for i in idx]
    assert metric_from_sums(spec, stats[idx].sum(0)) == pytest.approx(compute_metrics(spec, sub_p, sub_g)["score"], abs=1e-12)


def test_bootstrap_is_seeded_and_paired():
    rng = random.Random(2)
    better, gold = _random_seq(rng, 300, 6, 0.8)
    worse = [g if rng.random() < 0.4 else rng.randrange(6) for g in gold]
    a, b = example_stats(TREC, better, gold), example_stats(TREC, worse, gold)
    r1 = paired_bootstrap(TREC, a, b, resamples=500, seed=7)
    r2 = paired_bootstrap(TREC, a, b, resamples=500, seed=7)
    assert r1 == r2
    assert r1.low <= r1.diff <= r1.high and r1.low > 0.2  # clearly better: the whole interval is positive
    same = paired_bootstrap(TREC, a, a, resamples=200)
    assert (same.low, same.high, same.diff) == (0.0, 0.0, 0.0)  # paired: identical models never differ
    reverse = paired_bootstrap(TREC, b, a, resamples=500, seed=7)
    assert reverse.high < 0 and reverse.low == pytest.approx(-r1.high)


def test_bootstrap_interval_covers_a_small_true_difference():
    rng = random.Random(3)
    gold = [rng.randrange(2) for _ in range(400)]
    a = [g if rng.random() < 0.71 else 1 - g for g in gold]
    b = [g if rng.random() < 0.70 else 1 - g for g in gold]
    spec = TaskSpec("bin", "sequence", ("n", "y"), "accuracy")
    r = paired_bootstrap(spec, example_stats(spec, a, gold), example_stats(spec, b, gold), resamples=1000)
    assert r.low <= r.diff <= r.high
    assert r.low < 0.01 < r.high  # the interval covers the true edge of 1 point
    assert r.low < 0.005  # and a 1-point edge on 400 examples does not clear a 0.5-point margin


# ---- end to end on sqlite --------------------------------------------------------------------

@pytest.fixture(scope="session")
def adapters(tmp_path_factory):
    return adapters_fixture(tmp_path_factory)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One sqlite store for the module (creating its tables takes seconds)."""
    home = tmp_path_factory.mktemp("promote-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.setenv("PTV2_HOME", str(home))
        uri = f"sqlite:///{home / 'mlflow.db'}"
        from mlflow import MlflowClient

        MlflowClient(tracking_uri=uri, registry_uri=uri).search_registered_models()  # the tables, for any test first
        yield uri


def _tags(uri: str, name: str, version: int) -> dict:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version(name, str(version)).tags


def test_promotion_both_ways_forced_and_failure_halfway(adapters, store, monkeypatch):
    from components.registry.promote import promote
    from components.registry.register import register_adapter

    name = "ptv2-trec"
    v1 = register_adapter(adapters["bad"], "trec", tracking_uri=store)
    assert (v1.version, v1.aliases) == (1, ("challenger",))

    # first version: the floor is the majority class, and the untrained adapter does not clear it
    d = promote("trec", tracking_uri=store, max_eval=EVAL)
    assert not d.promoted and d.champion is None and "majority" in d.reason
    assert registry_state(store, name)[0] == {"challenger": 1}
    assert _tags(store, name, 1)["promotion.decision"] == "not promoted (floor not cleared)"

    with pytest.raises(Ptv2Error, match="needs a reason"):
        promote("trec", tracking_uri=store, force=True)

    # forced: promoted whatever the scores say, with the reason and both scores on record
    d = promote("trec", tracking_uri=store, max_eval=EVAL, force=True, reason="bootstrap the registry")
    assert d.promoted and d.forced
    assert registry_state(store, name)[0] == {"challenger": 1, "champion": 1}
    t1 = _tags(store, name, 1)
    assert t1["promotion.forced"] == "true" and t1["promotion.decision"] == "promoted (forced)"
    assert "bootstrap the registry" in t1["promotion.reason"]
    assert float(t1["promotion.challenger_score"]) == pytest.approx(d.scores["challenger"], abs=1e-6)
    assert t1["promotion.champion_version"] == "majority-class floor"
    # the command line on a challenger that already is champion: said once, not as "not promoted"
    from conftest import run_cli

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    res = run_cli("promote", "--task", "trec")
    assert res.returncode == 0 and res.stdout == "ptv2-trec: version 1 is already champion; nothing scored or changed\n"
    assert "(0.5 points)" in d.reason  # the margin in the unit --margin takes, beside the fraction

    # a clearly better challenger is promoted, and the decision is tagged on both versions
    v2 = register_adapter(adapters["good"], "trec", tracking_uri=store, tags={"study": "unit-study"})
    assert v2.version == 2 and registry_state(store, name)[0] == {"challenger": 2, "champion": 1}
    d = promote("trec", tracking_uri=store, max_eval=EVAL)
    assert d.promoted and (d.challenger, d.champion) == (2, 1)
    assert d.interval[0] > 0.005 and d.scores["challenger"] > d.scores["champion"] + 0.2
    assert registry_state(store, name)[0] == {"challenger": 2, "champion": 2}
    for v in (1, 2):
        t = _tags(store, name, v)
        assert t["promotion.decision"] == "promoted" and t["promotion.challenger_version"] == "2"
        assert float(t["promotion.interval_low"]) == pytest.approx(d.interval[0], abs=1e-6)
        assert t["promotion.forced"] == "false"
    assert _tags(store, name, 2)["study"] == "unit-study"

    # a worse challenger is not promoted
    v3 = register_adapter(adapters["bad"], "trec", tracking_uri=store)
    assert v3.version == 3
    d = promote("ptv2-trec", tracking_uri=store, max_eval=EVAL)
    assert not d.promoted and d.interval[1] < 0 and (d.challenger, d.champion) == (3, 2)
    assert registry_state(store, name)[0] == {"challenger": 3, "champion": 2}
    assert _tags(store, name, 3)["promotion.decision"] == "kept champion"
    assert _tags(store, name, 2)["promotion.champion_score"] == _tags(store, name, 3)["promotion.champion_score"]

    # failure halfway: the champion's stored artifact is corrupt → error, aliases untouched
    from mlflow import MlflowClient

    src = MlflowClient(tracking_uri=store, registry_uri=store).get_model_version_download_uri(name, "2")
    weights = Path(src.removeprefix("file://")) / "artifacts" / "adapter" / "adapter.safetensors"
    weights.write_bytes(weights.read_bytes()[:-16])
    with pytest.raises(Ptv2Error, match="corrupt"):
        promote("trec", tracking_uri=store, max_eval=EVAL, force=True, reason="should not happen")
    assert registry_state(store, name) == ({"challenger": 3, "champion": 2}, [1, 2, 3])


def test_a_run_promotes_its_own_version_and_never_replaces_a_champion_it_did_not_compare_with(adapters, store,
                                                                                            monkeypatch):
    """Two pipeline runs of one task at once (seen with two `ptv2 run`): run A's promote step used to
    decide on whatever `challenger` pointed at, which run B had already moved to its own version,
    and both steps decided against the floor, the last to write winning. Now A decides on the
    version it registered, and when B's promotion moves `champion` while A scores, A decides
    again against B's champion. The interleaving is made exact by running B's promotion, a real
    one on the same store, from inside A's scoring step."""
    import components.registry.promote as promote_mod
    from components.registry.register import register_adapter

    name = "race-trec"
    assert register_adapter(adapters["good"], "trec", name=name, tracking_uri=store).version == 1  # run A
    assert register_adapter(adapters["bad"], "trec", name=name, tracking_uri=store).version == 2  # run B, since
    assert registry_state(store, name)[0] == {"challenger": 2}

    real, first = promote_mod._decide, []

    def scoring_while_run_b_promotes(*args, **kwargs):
        d = real(*args, **kwargs)
        if not first:
            first.append(d)
            b = promote_mod.promote(name, tracking_uri=store, max_eval=EVAL, version=2, force=True, reason="run B")
            assert b.promoted and b.champion is None
        return d

    monkeypatch.setattr(promote_mod, "_decide", scoring_while_run_b_promotes)
    d = promote_mod.promote(name, tracking_uri=store, max_eval=EVAL, version=1)
    assert (first[0].challenger, first[0].champion) == (1, None)  # A first scored against the floor
    assert d.promoted and (d.challenger, d.champion) == (1, 2)  # then again, against B's champion
    assert registry_state(store, name)[0] == {"challenger": 2, "champion": 1}
    assert _tags(store, name, 1)["promotion.champion_version"] == "2"
    with pytest.raises(Ptv2Error, match="has no version 9"):
        promote_mod.promote(name, tracking_uri=store, version=9)


def test_promote_unknown_model_is_an_error(store):
    from components.registry.promote import promote

    with pytest.raises(Ptv2Error, match="no registered model 'ptv2-nope'"):
        promote("nope", tracking_uri=store)


def test_a_hub_task_is_promoted_under_the_name_register_gave_it(store):
    """`promote --task hub:user/data` asked MLflow for a model named 'hub:user/data' (refused as an
    invalid name, reported as the store failing), then would have looked for 'ptv2-hub-user-data';
    register names it ptv2-user-data."""
    from mlflow import MlflowClient

    from components.registry.promote import promote

    MlflowClient(tracking_uri=store, registry_uri=store).create_registered_model("ptv2-user-data")
    with pytest.raises(Ptv2Error, match="^registered model 'ptv2-user-data' has no 'challenger' version to promote$"):
        promote("hub:user/data", tracking_uri=store)
    with pytest.raises(Ptv2Error, match="^no registered model 'ptv2-other-none' for 'hub:other/none' in sqlite:"):
        promote("hub:other/none", tracking_uri=store)
    with pytest.raises(Ptv2Error, match="^no registered model 'ptv2-a-b' for 'a:b' in sqlite:"):
        promote("a:b", tracking_uri=store)  # a name MLflow refuses is no model there, not a failing store


def test_a_roll_back_is_not_undone_by_the_next_promotion_by_the_rule(store, tmp_path):
    """After `promote --version 1 --force --reason "roll back"` over champion 2, `challenger` still
    named version 2: the next plain `promote` scored 2 against 1 and moved `champion` back to it."""
    from components.registry.promote import PromotionDecision, _record, promote

    name = "rollback-trec"
    c = _two_versions(store, name, tmp_path)
    for v in ("1", "2"):
        c.set_model_version_tag(name, v, "task", "trec")
    c.set_registered_model_alias(name, "champion", "2")  # version 2 was promoted; now roll back to 1
    tags = {"promotion.decision": "promoted (forced)", "promotion.reason": "forced: roll back",
            "promotion.forced": "true", "promotion.at": "2026-12-06T00:00:00+00:00", "promotion.by": "me"}
    d = _record(c, store, name, PromotionDecision(True, 1, 2, {}, (0.0, 0.0), "forced: roll back", name,
                                                  forced=True, tags=tags))
    assert (d.demoted, d.challenger_moved) == (2, True)
    assert registry_state(store, name)[0] == {"champion": 1}  # `challenger` no longer names the demoted version
    assert _tags(store, name, 2)["promotion.demoted"].startswith("version 1 was promoted over it by force: roll back")
    with pytest.raises(Ptv2Error, match="has no 'challenger' version to promote"):
        promote(name, tracking_uri=store)
    with pytest.raises(Ptv2Error, match=r"version 2 was demoted by a forced promotion .*only --force promotes it again"):
        promote(name, tracking_uri=store, version=2)
    assert registry_state(store, name)[0] == {"champion": 1}
    # promoted again by force: no longer marked demoted
    _record(c, store, name, PromotionDecision(True, 2, 1, {}, (0.0, 0.0), "forced: fixed", name, forced=True,
                                              tags=tags | {"promotion.reason": "forced: fixed"}))
    assert "promotion.demoted" not in _tags(store, name, 2) and "promotion.demoted" in _tags(store, name, 1)
    assert registry_state(store, name)[0] == {"champion": 2}


def test_a_roll_back_whose_demotion_mark_cannot_be_written_moves_no_alias(store, tmp_path, monkeypatch):
    """The mark that keeps a roll-back (``promotion.demoted`` on the champion it replaces) was
    written after ``champion`` had moved: a store failing then ended the command with an error
    although the promotion had happened, and left the replaced version unmarked, for the next plain
    `promote` to move ``champion`` back to it. It is written before the alias now: failing, it
    fails the promotion whole (``champion`` where it was, no version marked, the decision failed)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from components.registry.promote import PromotionDecision, _record

    name = "rollback-fails-trec"
    c = _two_versions(store, name, tmp_path)
    c.set_registered_model_alias(name, "champion", "2")
    before = registry_state(store, name)[0]
    real = MlflowClient.set_model_version_tag

    def failing(self, model, version, key, value):
        if key == "promotion.demoted":
            raise MlflowException("the store went away")
        return real(self, model, version, key, value)

    monkeypatch.setattr(MlflowClient, "set_model_version_tag", failing)
    tags = {"promotion.decision": "promoted (forced)", "promotion.reason": "forced: roll back",
            "promotion.forced": "true", "promotion.at": "2026-12-06T00:00:00+00:00", "promotion.by": "me"}
    with pytest.raises(Ptv2Error, match="the store went away"):  # tried twice, as every store call
        _record(c, store, name, PromotionDecision(True, 1, 2, {}, (0.0, 0.0), "forced: roll back", name,
                                                  forced=True, tags=tags))
    assert registry_state(store, name)[0] == before and before["champion"] == 2
    for v in (1, 2):
        assert "promotion.demoted" not in _tags(store, name, v)
        assert _tags(store, name, v)["promotion.decision"].startswith("failed")


@pytest.mark.parametrize("kwargs, needle", [
    ({"max_eval": 0}, "max_eval must be a positive integer, got 0"),
    ({"max_eval": -3}, "max_eval must be a positive integer, got -3"),
    ({"batch_size": 0}, "batch size must be a positive integer, got 0"),
    ({"batch_size": 2.5}, "batch size must be a positive integer, got 2.5"),
    ({"resamples": 0}, "resamples must be a positive integer, got 0"),
    ({"margin": float("inf")}, "margin must be a finite number >= 0 of percentage points, got inf"),
    ({"alpha": 1.0}, r"alpha must be in \(0, 1\), got 1.0"),
])
def test_promote_refuses_bad_sizes_before_reading_the_registry(tmp_path, kwargs, needle):
    """Checked up front: before, a --max-eval of 0 or less failed only after both versions had been
    loaded, and a batch size of 0 deep in the scoring loop."""
    from components.registry.promote import promote

    uri = f"sqlite:///{tmp_path / 'never.db'}"
    with pytest.raises(Ptv2Error, match=needle):
        promote("trec", tracking_uri=uri, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_reading_a_registry_that_was_never_written_is_an_error_and_creates_none(tmp_path, monkeypatch):
    """predict --model and promote on a fresh PTV2_HOME: one error line naming the missing store, and
    no new empty mlflow.db (nor MLflow's log lines as it makes one)."""
    from conftest import run_cli

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    for args in (["predict", "--model", "models:/ptv2-trec@champion", "hi"], ["promote", "--task", "trec"]):
        res = run_cli(*args)
        assert res.returncode == 2 and res.stderr.strip() == (
            f"error: no MLflow store at {tmp_path / 'home' / 'mlflow.db'}: nothing is registered there yet "
            "(register a model with `ptv2 register`, or point MLFLOW_TRACKING_URI or PTV2_HOME at the store)")
    assert not (tmp_path / "home").exists()  # nor the state folder (it was made to name the store)


def test_versions_that_cannot_be_compared_fairly_are_refused_unless_forced(adapters, store, monkeypatch):
    """The test split is drawn by the split seed: a champion trained under another seed had most of
    the challenger's test rows among its training rows (trec seed 1 against seed 0: 443 of 539) and
    was scored on them; so was one trained on data that has changed since."""
    from mlflow import MlflowClient

    from components.registry.promote import promote
    from components.registry.register import register_adapter

    name, c = "fair-trec", MlflowClient(tracking_uri=store, registry_uri=store)
    register_adapter(adapters["good"], "trec", name=name, tracking_uri=store)
    assert promote(name, tracking_uri=store, max_eval=EVAL, force=True, reason="first").promoted
    c.set_model_version_tag(name, "1", "split_seed", "1")  # as if trained with --seed 1
    register_adapter(adapters["bad"], "trec", name=name, tracking_uri=store)
    with pytest.raises(Ptv2Error, match=r"version 1 \(champion\) has split_seed '1', version 2 has '0': the champion "
                                        r"would be scored on rows it was trained on.*--force"):
        promote(name, tracking_uri=store, max_eval=EVAL)
    assert registry_state(store, name)[0] == {"challenger": 2, "champion": 1}
    assert "promotion.decision" not in _tags(store, name, 2)
    d = promote(name, tracking_uri=store, max_eval=EVAL, force=True, reason="new data seed")
    assert d.promoted and "not a fair comparison" in d.reason and "split_seed" in d.reason
    assert registry_state(store, name)[0] == {"challenger": 2, "champion": 2}
    # the champion a forced promotion replaced is marked so: the rule alone does not bring it back
    assert "version 2 was promoted over it by force: new data seed" in _tags(store, name, 1)["promotion.demoted"]
    assert d.demoted == 1 and not d.challenger_moved

    register_adapter(adapters["good"], "trec", name=name, tracking_uri=store)
    assert _tags(store, name, 3)["data_hash"] == _tags(store, name, 2)["data_hash"]
    assert _tags(store, name, 3)["subset"] == "stratified"
    c.set_model_version_tag(name, "3", "data_hash", "sha256:" + "0" * 64)  # registered on other data
    with pytest.raises(Ptv2Error, match="the data of task 'trec' changed since fair-trec version 3 was registered"):
        promote(name, tracking_uri=store, max_eval=EVAL)
    assert registry_state(store, name)[0] == {"challenger": 3, "champion": 2}

    # version 2 as registered before 2026-12-06: no subset tag, its data_hash over the plain random
    # subset of the same test split that max_eval drew then; still the same data, so compared
    from components.registry.scoring import test_split
    from ptv2_core.tasks.splits import TEST_STREAM, split_hash
    from ptv2_core.tasks.subsample import random_subset

    t2 = _tags(store, name, 2)
    n = int(t2["test_examples"])
    spec, full, _ = test_split("trec", 0, None)
    assert n < len(full)
    c.set_model_version_tag(name, "2", "data_hash", split_hash(spec, random_subset(full, n, 0, TEST_STREAM)))
    assert _tags(store, name, 2)["data_hash"] != t2["data_hash"]  # the random subset has other rows
    c.set_model_version_tag(name, "3", "data_hash", t2["data_hash"])
    with pytest.raises(Ptv2Error, match="the data of task 'trec' changed since fair-trec version 2 was registered"):
        promote(name, tracking_uri=store, max_eval=EVAL)  # a version tagged stratified has no such excuse
    c.delete_model_version_tag(name, "2", "subset")
    import components.registry.promote as promote_module

    loads = []  # the test split is read once for both versions' check (it was read 3 times), once to score
    monkeypatch.setattr(promote_module, "test_split", lambda *a: loads.append(a) or test_split(*a))
    d = promote(name, tracking_uri=store, max_eval=EVAL)  # compared, not refused
    assert (d.challenger, d.champion) == (3, 2) and "not a fair comparison" not in d.reason
    assert loads == [("trec", 0, None), ("trec", 0, EVAL)]


def test_a_tag_write_failing_midway_marks_the_promotion_failed(adapters, store):
    """The challenger was tagged "promoted", then writing the champion's tags failed: the error
    was raised with that tag standing and `champion` never moved (only a failure of the alias call
    itself was marked)."""
    from mlflow import MlflowClient

    from components.registry.promote import PromotionDecision, _record
    from components.registry.register import register_adapter

    name = "midway-trec"
    for which in ("good", "bad"):
        register_adapter(adapters[which], "trec", name=name, tracking_uri=store)
    real = MlflowClient(tracking_uri=store, registry_uri=store)

    class FailsOnVersion1:
        def __getattr__(self, attr):
            return getattr(real, attr)

        def set_model_version_tag(self, n, version, key, value):
            if version == "1" and key != "promotion.decision":
                raise RuntimeError("store went away")
            return real.set_model_version_tag(n, version, key, value)

    d = PromotionDecision(True, 2, 1, {"challenger": 0.9, "champion": 0.5}, (0.1, 0.5), "wins", name,
                          tags={"promotion.decision": "promoted", "promotion.reason": "wins"})
    with pytest.raises(Ptv2Error, match="tagging midway-trec version 1 failed"):
        _record(FailsOnVersion1(), store, name, d)
    assert _tags(store, name, 2)["promotion.decision"] == "failed: champion alias not moved"
    assert registry_state(store, name)[0] == {"challenger": 2}


class _Recorded:
    """The real client, with its writes recorded in order; ``stop_at(i)`` makes the i-th write
    raise KeyboardInterrupt instead (Ctrl-C landing between two of the decision's calls)."""

    def __init__(self, real, stop_at: int | None = None):
        self.real, self.stop_at, self.writes = real, stop_at, []

    def __getattr__(self, attr):
        return getattr(self.real, attr)

    def _write(self, call: str, *args):
        if len(self.writes) == self.stop_at:
            self.stop_at = None  # one Ctrl-C: the cleanup's own writes go through
            raise KeyboardInterrupt
        self.writes.append((call, *args))
        return getattr(self.real, call)(*args)

    def set_model_version_tag(self, *args):
        return self._write("set_model_version_tag", *args)

    def set_registered_model_alias(self, *args):
        return self._write("set_registered_model_alias", *args)


def _two_versions(store: str, name: str, tmp_path):
    """``name`` with version 1 as champion and version 2 as challenger (no scoring needed here)."""
    from mlflow import MlflowClient

    c = MlflowClient(tracking_uri=store, registry_uri=store)
    c.create_registered_model(name)
    for _ in range(2):
        c.create_model_version(name, str(tmp_path))
    c.set_registered_model_alias(name, "champion", "1")
    c.set_registered_model_alias(name, "challenger", "2")
    return c


def _decision(name: str):
    from components.registry.promote import PromotionDecision

    tags = {"promotion.decision": "promoted", "promotion.reason": "wins", "promotion.challenger_version": "2",
            "promotion.champion_version": "1", "promotion.diff": "0.2"}
    return PromotionDecision(True, 2, 1, {"challenger": 0.9, "champion": 0.7}, (0.1, 0.3), "wins", name, tags=tags)


def test_the_decision_tag_is_written_last_after_the_alias(store, tmp_path):
    """It was the first of about 18 tag calls per version: anything stopping the promotion after it
    left a version saying "promoted" with `champion` not moved."""
    from components.registry.promote import _record

    name = "order-trec"
    client = _Recorded(_two_versions(store, name, tmp_path))
    _record(client, store, name, _decision(name))
    calls = [(w[0], *w[2:4]) for w in client.writes]  # (call, version, tag) or (call, alias, version)
    assert calls[-3:] == [("set_registered_model_alias", "champion", "2"),
                          ("set_model_version_tag", "2", "promotion.decision"),
                          ("set_model_version_tag", "1", "promotion.decision")], calls
    assert len(calls) == 2 * 5 + 1
    assert _tags(store, name, 2)["promotion.decision"] == "promoted"
    assert registry_state(store, name)[0] == {"challenger": 2, "champion": 2}


@pytest.mark.parametrize("stop_at", [1, 5, 8])  # details of the challenger, of the champion, the alias call
def test_ctrl_c_during_the_decision_leaves_no_version_saying_promoted(store, tmp_path, stop_at):
    """KeyboardInterrupt is no Exception: the cleanup that marks the promotion failed did not run."""
    from components.registry.promote import _record

    name = f"interrupted-{stop_at}-trec"
    client = _Recorded(_two_versions(store, name, tmp_path), stop_at=stop_at)
    with pytest.raises(KeyboardInterrupt):
        _record(client, store, name, _decision(name))
    assert registry_state(store, name)[0] == {"challenger": 2, "champion": 1}
    for v in (1, 2):
        assert _tags(store, name, v).get("promotion.decision") == "failed: champion alias not moved", v


def test_the_pipeline_keeps_the_champion_of_another_split_seed_and_says_why(adapters, store, capsys):
    """A second `ptv2 run` with another seed registered a version its champion cannot be compared with:
    the promote step failed, the whole run exited 1, and the reason was only in the log file. The step
    now keeps the champion and records why on the version, for the run's summary table."""
    from mlflow import MlflowClient

    from components.promote_step import promote_step
    from components.registry.promote import promote
    from components.registry.register import register_adapter

    name, c = "seeds-trec", MlflowClient(tracking_uri=store, registry_uri=store)
    register_adapter(adapters["good"], "trec", name=name, tracking_uri=store)
    assert promote(name, tracking_uri=store, max_eval=EVAL, force=True, reason="first").promoted
    c.set_model_version_tag(name, "1", "split_seed", "1")  # the first run's seed
    register_adapter(adapters["bad"], "trec", name=name, tracking_uri=store)
    before = _tags(store, name, 1)
    assert promote_step("trec", name, "2", 0.5, store, EVAL) == "kept"
    assert registry_state(store, name)[0] == {"challenger": 2, "champion": 1}
    tags = _tags(store, name, 2)
    assert tags["promotion.decision"] == "kept (not comparable)", tags
    assert tags["promotion.reason"].startswith("seeds-trec version 1 (champion) has split_seed '1', version 2 has '0'")
    assert (tags["promotion.champion_version"], tags["promotion.challenger_version"]) == ("1", "2")
    assert tags["promotion.forced"] == "false" and "promotion.at" in tags
    assert _tags(store, name, 1) == before  # the champion's own record is left as it was
    assert "kept (not comparable): seeds-trec version 1 (champion) has split_seed" in capsys.readouterr().out
    # anything else still fails the step
    with pytest.raises(Ptv2Error, match="no registered model"):
        promote_step("trec", "no-such-model", "1", 0.5, store, EVAL)
