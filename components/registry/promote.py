"""Promote the ``challenger`` version of a registered model to ``champion`` when it is better.

Both versions are loaded from the registry (the serving path, with digest and fingerprint
checks) and scored on the same test split: the task and split seed recorded on the challenger,
optionally cut to ``max_eval`` examples. The decision (see ``bootstrap``): promote when the lower
end of the 95 % paired-bootstrap interval of challenger − champion is above ``margin``
percentage points. With no champion yet, the majority-class predictor plays the champion (the
floor). ``force`` promotes regardless, with a reason. The decision, both scores, the interval
and the reason become ``promotion.*`` tags on both versions; the ``champion`` alias moves after
them, in one call, so a failure at any earlier point leaves the aliases as they were, and
``promotion.decision`` is written last (``_record``).
"""
from __future__ import annotations

import datetime as dt
import getpass
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from components.registry import store
from components.registry.bootstrap import example_stats, paired_bootstrap
from components.registry.load import get_version, load_version
from components.registry.names import check_name, default_name
from components.registry.alias_lock import alias_lock
from components.registry.register import CHALLENGER, CHAMPION, read_aliases
from components.registry.scoring import majority_preds, predict_ids, test_split
from optuna_studies.tracking_setup import check_reachable
from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks import task_name
from ptv2_core.tasks.spec import stored_task_name
from ptv2_core.tasks.splits import TEST_STREAM, split_hash
from ptv2_core.tasks.subsample import random_subset, subsample

FLOOR = "majority-class floor"


class NotComparable(Ptv2Error):
    """The champion cannot be compared fairly with the challenger (``not_comparable``); nothing was
    scored or written. ``problem``: why; ``challenger`` and ``champion``: the versions."""

    def __init__(self, message: str, *, name: str, problem: str, challenger: int, champion: int | None):
        super().__init__(message)
        self.name, self.problem, self.challenger, self.champion = name, problem, challenger, champion


@dataclass(frozen=True)
class PromotionDecision:
    """What ``promote`` decided. ``champion`` is the champion version before the decision (None
    when the floor was the opponent); ``scores`` holds ``challenger`` and ``champion`` (or the
    floor's) score; ``interval`` bounds challenger − champion."""

    promoted: bool
    challenger: int | None
    champion: int | None
    scores: dict[str, float]
    interval: tuple[float, float]
    reason: str
    name: str = ""
    metric: str = ""
    forced: bool = False
    margin: float = 0.5
    tags: dict[str, str] = field(default_factory=dict)
    demoted: int | None = None  # the champion a forced promotion replaced, now tagged ``promotion.demoted``
    challenger_moved: bool = False  # ``challenger`` named the demoted version and was removed from it


def resolve_name(c, uri: str, task_or_name: str) -> str:
    """The name as given when such a registered model exists, else the name ``register`` gives the
    task's adapters, ``ptv2-<task's name>`` (``task_name``: a task YAML's ``name:``, a hub data
    set's folder name, ``hub:user/data`` → ``ptv2-user-data``)."""
    from mlflow.exceptions import MlflowException

    try:
        task = task_name(task_or_name)  # a task reference (packaged, hub:, YAML)
    except Ptv2Error:
        task = task_or_name  # a registered model name, or a name no task has
    for name in dict.fromkeys((task_or_name, default_name(task))):
        try:
            check_name(name)
        except Ptv2Error:
            continue  # a name MLflow cannot hold (hub:user/data): no model has it
        try:
            store.retry(lambda: c.get_registered_model(name), f"reading registered model '{name}'", uri)
            return name
        except MlflowException as e:  # INVALID_PARAMETER_VALUE: a name MLflow refuses, so no model has it
            if e.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise store.unreachable(uri, e) from None
    raise Ptv2Error(f"no registered model '{default_name(task)}' for '{task_or_name}' in {store.mask_url(uri)} "
                    "(register one with `ptv2 register`)")


def _fmt(x: float) -> str:
    return f"{x:.6f}"


def promote(
    task_or_name: str,
    *,
    margin: float = 0.5,
    force: bool = False,
    reason: str | None = None,
    tracking_uri: str | None = None,
    max_eval: int | None = None,
    alpha: float = 0.05,
    resamples: int = 1000,
    seed: int = 0,
    version: int | None = None,
    batch_size: int = 64,
    progress: bool = False,
    batch_option: str = "--batch-size",
) -> PromotionDecision:
    """Score ``challenger`` (or ``version``) against ``champion`` of ``task_or_name`` (a task, or
    a registered model name) and move ``champion`` when it wins by ``margin`` points (or when
    ``force`` is set; ``reason`` is then required). ``batch_size``: test rows scored at once (lower it
    when scoring runs out of memory; ``batch_option``: what that error tells the user to lower);
    ``progress``: a bar per version scored, on a terminal. Raises
    ``Ptv2Error``; aliases are unchanged unless the returned decision says promoted.

    ``version``: the version to decide on, whatever ``challenger`` points at now (a pipeline run
    promotes the version it registered: with two runs at once, ``challenger`` may already be the
    other run's). If ``champion`` moves while the scores are computed (another promotion), the
    decision is taken again against the new champion: it never replaces a champion it did not
    compare with (under a file lock on a local store; against a server, checked just before the move).
    """
    if force and not (reason and reason.strip()):
        raise Ptv2Error("a forced promotion needs a reason (--reason TEXT)")
    if not (margin >= 0 and math.isfinite(margin)):  # inf was taken, and tagged as a decision
        raise Ptv2Error(f"margin must be a finite number >= 0 of percentage points, got {margin}")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise Ptv2Error(f"version must be a positive integer, got {version!r}")
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):  # checked before hours of scoring, not after
        raise Ptv2Error(f"alpha must be in (0, 1), got {alpha!r}")
    for what, n in (("batch size", batch_size), ("max_eval", 1 if max_eval is None else max_eval),
                    ("resamples", resamples)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise Ptv2Error(f"{what} must be a positive integer, got {n!r}")
    uri = store.tracking_uri(tracking_uri)
    # a tracking server that does not answer: said at once, by its address (the first read named the task
    # as a model name, "reading registered model 'trec' failed", after MLflow's retries)
    check_reachable(uri, given_by="mlflow_uri" if tracking_uri else None)
    with store.bounded_http():
        c = store.reading_client(uri)
        name = resolve_name(c, uri, task_or_name)
        for _ in range(DECISION_ROUNDS):
            aliases = read_aliases(c, uri, name)
            if version is None and CHALLENGER not in aliases:
                raise Ptv2Error(f"registered model '{name}' has no '{CHALLENGER}' version to promote")
            chall_v = version if version is not None else int(aliases[CHALLENGER])
            champ_v = int(aliases[CHAMPION]) if CHAMPION in aliases else None
            if chall_v == champ_v:
                return PromotionDecision(False, chall_v, champ_v, {}, (0.0, 0.0),
                                         f"version {chall_v} is already {CHAMPION}", name, forced=force, margin=margin)
            d = _decide(c, uri, name, chall_v, champ_v, margin=margin, force=force, reason=reason, max_eval=max_eval,
                        alpha=alpha, resamples=resamples, seed=seed, batch_size=batch_size, progress=progress,
                        batch_option=batch_option)
            with alias_lock(uri, name):
                now = read_aliases(c, uri, name).get(CHAMPION)
                if (int(now) if now is not None else None) != champ_v:
                    continue  # champion moved meanwhile: decide again, against the new one
                return _record(c, uri, name, d)
    raise Ptv2Error(f"'{CHAMPION}' of '{name}' kept moving while version {chall_v} was scored ({DECISION_ROUNDS} "
                    "tries): other promotions are running; try again")


DECISION_ROUNDS = 3


def _decide(c, uri: str, name: str, chall_v: int, champ_v: int | None, *, margin: float, force: bool,
            reason: str | None, max_eval: int | None, alpha: float, resamples: int, seed: int,
            batch_size: int, progress: bool = False, batch_option: str = "--batch-size") -> PromotionDecision:
    """Score both versions (or the challenger and the floor) on the same test split; nothing is written."""
    chall_mv = get_version(c, uri, name, version=chall_v)
    tags = chall_mv.tags or {}
    task_ref, split_seed = tags.get("task_ref") or tags.get("task"), int(tags.get("split_seed", 0))
    if not task_ref:
        raise Ptv2Error(f"{name} version {chall_v} has no 'task' tag: not registered by ptv2")
    if DEMOTED in tags and not force:  # a roll-back is not undone by the next promotion by the rule
        raise Ptv2Error(f"{name} version {chall_v} was demoted by a forced promotion ({DEMOTED}: "
                        f"{tags[DEMOTED][:300]}): only --force promotes it again")
    champ_mv = get_version(c, uri, name, version=champ_v) if champ_v is not None else None
    problem = not_comparable(name, chall_mv, champ_mv, task_ref)
    if problem and not force:
        raise NotComparable(f"{problem}; a forced promotion (--force --reason) moves '{CHAMPION}' without a fair "
                            "comparison", name=name, problem=problem, challenger=chall_v, champion=champ_v)
    challenger = load_version(c, uri, chall_mv).adapter
    spec, rows, train_labels = test_split(task_ref, split_seed, max_eval)
    if (spec.type, tuple(spec.labels)) != (challenger.spec.type, tuple(challenger.spec.labels)):
        raise Ptv2Error(f"{name} version {chall_v} does not predict the labels of task '{spec.name}'")
    preds, golds = predict_ids(challenger, rows, batch_size, f"score version {chall_v}" if progress else None,
                               batch_option)
    del challenger
    if champ_mv is not None:
        champion = load_version(c, uri, champ_mv).adapter
        if (champion.spec.type, tuple(champion.spec.labels)) != (spec.type, tuple(spec.labels)):
            raise Ptv2Error(f"{name} champion version {champ_v} predicts other labels than the challenger")
        champ_preds, champ_golds = predict_ids(champion, rows, batch_size,
                                               f"score version {champ_v}" if progress else None, batch_option)
        if champ_golds != golds:  # both are scored against every row's (every word's) gold labels
            raise Ptv2Error(f"{name} versions {chall_v} and {champ_v} were not scored on the same gold labels")
        del champion
    else:
        champ_preds = majority_preds(spec, train_labels, golds)
    result = paired_bootstrap(spec, example_stats(spec, preds, golds), example_stats(spec, champ_preds, golds),
                              resamples=resamples, alpha=alpha, seed=seed)

    opponent = f"version {champ_v}" if champ_v is not None else f"the {FLOOR}"
    wins = result.low > margin / 100
    rule = (f"{spec.metric} {result.score_a:.4f} vs {result.score_b:.4f} ({opponent}); "
            f"{100 * (1 - alpha):g}% interval of the difference [{result.low:+.4f}, {result.high:+.4f}] "
            f"{'clears' if wins else 'does not clear'} the margin {margin / 100:+.4f} ({margin:g} points)")
    promoted = wins or force
    if force:
        why = f"forced: {reason.strip()} (rule alone: {'promote' if wins else 'keep'}; {rule})"
        if problem:
            why += f"; the scores are not a fair comparison: {problem}"
        decision = "promoted (forced)"
    else:
        why = rule
        decision = "promoted" if wins else ("not promoted (floor not cleared)" if champ_v is None else "kept champion")
    audit = {
        "promotion.decision": decision,
        "promotion.reason": why[:4000],
        "promotion.forced": str(force).lower(),
        "promotion.challenger_version": str(chall_v),
        "promotion.champion_version": str(champ_v) if champ_v is not None else FLOOR,
        "promotion.challenger_score": _fmt(result.score_a),
        "promotion.champion_score": _fmt(result.score_b),
        "promotion.metric": spec.metric,
        "promotion.diff": _fmt(result.diff),
        "promotion.interval_low": _fmt(result.low),
        "promotion.interval_high": _fmt(result.high),
        "promotion.alpha": str(alpha),
        "promotion.resamples": str(resamples),
        "promotion.margin_points": str(margin),
        "promotion.test_examples": str(result.n),
        "promotion.split_seed": str(split_seed),
        "promotion.at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "promotion.by": _user(),
    }
    return PromotionDecision(promoted, chall_v, champ_v, {"challenger": result.score_a, "champion": result.score_b},
                             (result.low, result.high), why, name, spec.metric, force, margin, audit)


def not_comparable(name: str, chall_mv, champ_mv, task_ref: str) -> str | None:
    """Why the two versions cannot be compared on the challenger's test split, or None.

    The test split is drawn from the task's data by the split seed: a champion trained under
    another seed has most of the challenger's test rows in its own training rows (trec: 443 of
    539), and one trained on other data (an edited task file) may too; its score would be
    inflated. Each version's test split, rebuilt now, must hash to the ``data_hash`` recorded at
    its registration (versions without one are not checked)."""
    tags = chall_mv.tags or {}
    if champ_mv is not None:
        ctags = champ_mv.tags or {}
        for key, default in (("task", None), ("split_seed", "0")):  # no split_seed tag: seed 0, as scored
            theirs, mine = ctags.get(key, default), tags.get(key, default)
            if key == "task" and None not in (theirs, mine):  # tagged before names were folder names (user/data)
                theirs, mine = (stored_task_name(t) for t in (theirs, mine))
            if None not in (theirs, mine) and theirs != mine:
                return (f"{name} version {champ_mv.version} ({CHAMPION}) has {key} '{theirs}', version "
                        f"{chall_mv.version} has '{mine}': "
                        + ("the champion would be scored on rows it was trained on (the test split is drawn by the "
                           "split seed); train the challenger with the champion's seed" if key == "split_seed"
                           else "they are models of different tasks"))
    full: dict[int, tuple] = {}  # split seed -> (spec, whole test split): loaded once for both versions
    for mv in (chall_mv, champ_mv):
        if mv is None:
            continue
        t = mv.tags or {}
        if not (t.get("data_hash") and t.get("test_examples", "").isdigit()):
            continue
        seed = int(t.get("split_seed", 0))
        if seed not in full:
            full[seed] = test_split(task_ref, seed, None)[:2]
        if not _same_test_split(*full[seed], seed, t):
            return (f"the data of task '{task_ref}' changed since {name} version {mv.version} was registered (its "
                    "test split no longer hashes to the recorded data_hash): its training rows may now be test rows")
    return None


def _same_test_split(spec, full, seed: int, tags: dict) -> bool:
    """Whether the test split ``full`` (all its rows, drawn by ``seed``) is the one a version was
    registered on: its ``test_examples`` rows, the subset ``max_eval`` draws (``finalize``), hash
    to its ``data_hash``. A version registered before 2026-12-06 from a capped split (no ``subset``
    tag) hashed the plain random subset drawn then: that subset, drawn again, must hash to it
    (promotion scores both versions on today's rows)."""
    n = int(tags["test_examples"])
    if split_hash(spec, subsample(full, n, seed, TEST_STREAM)) == tags["data_hash"]:
        return True
    return ("subset" not in tags and n < len(full)
            and split_hash(spec, random_subset(full, n, seed, TEST_STREAM)) == tags["data_hash"])


def _record(c, uri: str, name: str, d: PromotionDecision) -> PromotionDecision:
    """The audit tags on both versions, the alias, and last of all ``promotion.decision``: a failure
    or a Ctrl-C before the alias call leaves the aliases untouched and no version saying
    "promoted" (a promotion that stopped says it failed); one after it leaves ``champion`` moved,
    with the details of why already on both versions. A forced promotion over a champion marks the
    champion it replaces ``promotion.demoted`` before the alias moves (a roll-back is never left
    without the mark that keeps it; undone when the alias does not move), then ``_after_forced``
    tidies up. Returns ``d`` with what that did."""
    versions = [v for v in (d.challenger, d.champion) if v is not None]
    demote = d.champion if d.promoted and d.forced else None
    moved = False
    try:
        for v in versions:
            for k, val in d.tags.items():
                if k != DECISION:
                    store.retry(lambda: c.set_model_version_tag(name, str(v), k, val), f"tagging {name} version {v}", uri)
        if demote is not None:
            store.retry(lambda: c.set_model_version_tag(name, str(demote), DEMOTED, _demotion_note(d)),
                        f"tagging {name} version {demote}", uri)
        if d.promoted:
            store.retry(lambda: c.set_registered_model_alias(name, CHAMPION, str(d.challenger)),
                        f"moving alias '{CHAMPION}'", uri)
            moved = True
        for v in versions:
            if DECISION in d.tags:
                store.retry(lambda: c.set_model_version_tag(name, str(v), DECISION, d.tags[DECISION]),
                            f"tagging {name} version {v}", uri)
    except BaseException:  # KeyboardInterrupt too: re-raised once the versions say what happened
        if d.promoted and not moved:
            _mark_failed(c, name, versions, undemote=demote)
        raise
    return _after_forced(c, uri, name, d) if d.promoted and d.forced else d


DEMOTED = "promotion.demoted"


def _demotion_note(d: PromotionDecision) -> str:
    why = d.reason.removeprefix("forced: ")
    return (f"version {d.challenger} was promoted over it by force: {why} "
            f"({d.tags.get('promotion.at', '?')}, by {d.tags.get('promotion.by', '?')})")[:4000]


def _after_forced(c, uri: str, name: str, d: PromotionDecision) -> PromotionDecision:
    """After a forced promotion (a roll-back, a reviewed model), whose champion ``_record`` marked
    ``promotion.demoted`` (a promotion by the rule refuses it; only ``--force`` brings it back):
    ``challenger`` is removed when it names that version, else the next plain ``ptv2 promote``
    would score it against the new champion, and the version promoted loses its own old mark.
    Best effort: ``champion`` has moved and the mark is written, so a store failing here changes
    neither what was promoted nor what keeps it (the mark refuses the demoted version anyway)."""
    moved = False
    try:
        tags = store.retry(lambda: c.get_model_version(name, str(d.challenger)).tags,
                           f"reading {name} version {d.challenger}", uri) or {}
        if DEMOTED in tags:
            store.retry(lambda: c.delete_model_version_tag(name, str(d.challenger), DEMOTED),
                        f"tagging {name} version {d.challenger}", uri)
        if d.champion is not None and str(read_aliases(c, uri, name).get(CHALLENGER)) == str(d.champion):
            store.retry(lambda: c.delete_registered_model_alias(name, CHALLENGER), f"removing alias '{CHALLENGER}'",
                        uri)
            moved = True
    except Exception:  # noqa: BLE001  (the promotion and its mark stand; see the docstring)
        pass
    return replace(d, demoted=d.champion, challenger_moved=moved)


DECISION = "promotion.decision"


def _mark_failed(c, name: str, versions, undemote: int | None = None) -> None:
    """Best effort: the audit tags said promoted, but the alias did not move (and the champion
    ``undemote``, marked demoted for it, stays champion: the mark goes)."""
    for v in versions:
        if v is not None:
            try:
                c.set_model_version_tag(name, str(v), DECISION, "failed: champion alias not moved")
            except Exception:
                pass
    if undemote is not None:
        try:
            c.delete_model_version_tag(name, str(undemote), DEMOTED)
        except Exception:
            pass


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
