"""Paired bootstrap of a metric difference between two models scored on the same examples.

Each model's predictions become per-example count vectors whose column sums determine the
metric exactly (accuracy: correct and total; macro F1: per-class TP/FP/FN; span F1: per-sentence
TP, predicted and gold entities, so span F1 is recomputed over resampled sentences). A resample
is then a vector of example weights, and both models are scored on the SAME resample.

Rule used for promotion: with B resamples (seeded), the interval is the (alpha/2, 1-alpha/2)
percentile interval of ``score(challenger) - score(champion)``; promote when its lower bound
exceeds ``margin`` (a fraction: 0.005 for half a percentage point).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ptv2_core.tasks import TaskSpec


@dataclass(frozen=True)
class BootstrapResult:
    """Point scores on the full set, their difference (a - b) and its percentile interval."""

    score_a: float
    score_b: float
    diff: float
    low: float
    high: float
    resamples: int
    alpha: float
    n: int


def _entities(tags: list[str]) -> set[tuple[str, int, int]]:
    from seqeval.metrics.sequence_labeling import get_entities  # the chunker seqeval's default f1 uses

    return set(get_entities(tags))


def example_stats(spec: TaskSpec, preds: list, golds: list) -> np.ndarray:
    """``[n_examples, k]`` counts from which ``metric_from_sums`` computes ``spec.metric``.

    Sequence tasks: ``preds``/``golds`` are class ids; token tasks: per-example lists of tag ids
    (first sub-words only, as ``ptv2_core.evaluate`` keeps them).
    """
    if len(preds) != len(golds):
        raise ValueError(f"{len(preds)} predictions for {len(golds)} examples")
    if spec.type == "sequence":
        p, y = np.asarray(preds, dtype=np.int64), np.asarray(golds, dtype=np.int64)
        if spec.metric == "accuracy":
            return np.stack([(p == y).astype(np.float64), np.ones(len(y))], axis=1)
        k = spec.num_labels  # macro_f1: per-class TP, FP, FN
        eye = np.eye(k)
        hit = (p == y)[:, None]
        tp = eye[y] * hit
        fp = eye[p] * ~hit
        fn = eye[y] * ~hit
        return np.concatenate([tp, fp, fn], axis=1)
    names = spec.labels
    rows = []
    for p, y in zip(preds, golds):
        if spec.metric == "span_f1":
            pe, ge = _entities([names[i] for i in p]), _entities([names[i] for i in y])
            rows.append((len(pe & ge), len(pe), len(ge)))
        else:  # token accuracy
            rows.append((sum(int(a == b) for a, b in zip(p, y)), len(y), 0))
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), 3)


def metric_from_sums(spec: TaskSpec, sums: np.ndarray) -> np.ndarray:
    """The metric from column sums ``[..., k]`` (any leading batch shape)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if spec.type == "sequence" and spec.metric == "accuracy":
            return sums[..., 0] / sums[..., 1]
        if spec.type == "sequence":  # macro F1 over the classes present (gold or predicted), as sklearn
            k = spec.num_labels
            tp, fp, fn = sums[..., :k], sums[..., k:2 * k], sums[..., 2 * k:]
            denom = 2 * tp + fp + fn
            f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
            present = (tp + fp + fn) > 0
            return (f1 * present).sum(-1) / np.maximum(present.sum(-1), 1)
        if spec.metric == "span_f1":
            tp, n_pred, n_gold = sums[..., 0], sums[..., 1], sums[..., 2]
            denom = n_pred + n_gold
            return np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
        return sums[..., 0] / np.maximum(sums[..., 1], 1)


def paired_bootstrap(spec: TaskSpec, stats_a: np.ndarray, stats_b: np.ndarray, *, resamples: int = 1000,
                     alpha: float = 0.05, seed: int = 0) -> BootstrapResult:
    """Percentile interval of ``metric(a) - metric(b)`` over ``resamples`` paired resamples."""
    n = len(stats_a)
    if n == 0 or len(stats_b) != n:
        raise ValueError(f"paired bootstrap needs the same non-empty examples, got {len(stats_a)} and {len(stats_b)}")
    if not 0 < alpha < 1 or resamples < 1:
        raise ValueError("alpha must be in (0, 1) and resamples positive")
    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples)
    chunk = max(1, 2_000_000 // max(n, 1))  # bound the weights matrix to ~16 MB
    for start in range(0, resamples, chunk):
        b = min(chunk, resamples - start)
        idx = rng.integers(0, n, size=(b, n))
        weights = np.zeros((b, n))
        np.add.at(weights, (np.repeat(np.arange(b), n), idx.ravel()), 1.0)
        diffs[start:start + b] = metric_from_sums(spec, weights @ stats_a) - metric_from_sums(spec, weights @ stats_b)
    score_a = float(metric_from_sums(spec, stats_a.sum(0)))
    score_b = float(metric_from_sums(spec, stats_b.sum(0)))
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    return BootstrapResult(score_a, score_b, score_a - score_b, float(low), float(high), resamples, alpha, n)
