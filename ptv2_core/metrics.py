"""Task metrics: accuracy and macro F1 for sequence tasks, entity-level span F1 (seqeval) for BIO tagging."""
from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks.spec import TaskSpec

IGNORE = -100


def _sequence_ids(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 2:  # logits
        arr = arr.argmax(-1)
    if arr.ndim != 1:
        raise Ptv2Error(f"compute_metrics: {name} must be 1-D class ids (or 2-D logits), got shape {arr.shape}")
    return arr.astype(np.int64)


def _token_rows(preds: Any, labels: Any) -> tuple[list[list[int]], list[list[int]]]:
    """Per-example (pred, gold) id lists with the -100 positions dropped; accepts ragged lists,
    padded 2-D arrays, or 3-D logits for ``preds``."""
    if isinstance(preds, np.ndarray) or hasattr(preds, "numpy"):
        preds = np.asarray(preds)
        preds = preds.argmax(-1) if preds.ndim == 3 else preds
    if len(preds) != len(labels):
        raise Ptv2Error(f"compute_metrics: {len(preds)} prediction rows but {len(labels)} label rows")
    out_p, out_y = [], []
    for i, (p, y) in enumerate(zip(preds, labels)):
        p, y = np.asarray(p).reshape(-1), np.asarray(y).reshape(-1)
        keep = y != IGNORE
        if len(p) == int(keep.sum()) and len(p) != len(y):
            p_kept = p  # already filtered to labelled positions
        elif len(p) == len(y):
            p_kept = p[keep]
        else:
            raise Ptv2Error(f"compute_metrics: row {i} has {len(p)} predictions for {len(y)} labels")
        out_p.append([int(v) for v in p_kept])
        out_y.append([int(v) for v in y[keep]])
    return out_p, out_y


# What compute_metrics returns per task type (beside ``score``, the task's primary metric).
METRIC_NAMES = {"sequence": ("accuracy", "macro_f1"), "token": ("span_f1", "precision", "recall", "accuracy")}


def report_keys(task_type: str | None = None) -> tuple[str, ...]:
    """The metrics of a training run's per-epoch report (``ptv2_core.train``'s rows): ``train_loss``
    and ``dev_<name>`` for every metric of ``task_type`` (all types when None), ``dev_score`` and
    ``dev_loss``. A search's objective must be one of them."""
    types = [task_type] if task_type is not None else list(METRIC_NAMES)
    names = dict.fromkeys(n for t in types for n in METRIC_NAMES[t])
    return ("train_loss", *(f"dev_{n}" for n in (*names, "score", "loss")))


def compute_metrics(spec: TaskSpec, preds: Any, labels: Any) -> dict[str, float]:
    """All metrics of the task as plain floats in [0, 1], plus ``score`` = ``spec.metric``.

    Sequence: ``preds``/``labels`` 1-D class ids → ``accuracy``, ``macro_f1`` (sklearn, macro over
    the classes present). Token: per-example id sequences aligned with ``labels`` (positions whose
    label is -100 are ignored) → ``span_f1``, ``precision``, ``recall`` (seqeval, entity level,
    default conlleval-style BIO matching) and token ``accuracy``.
    """
    if spec.type == "sequence":
        from sklearn.metrics import f1_score

        p, y = _sequence_ids(preds, "preds"), _sequence_ids(labels, "labels")
        if len(p) != len(y):
            raise Ptv2Error(f"compute_metrics: {len(p)} predictions but {len(y)} labels")
        if len(y) == 0:
            raise Ptv2Error("compute_metrics: no examples")
        out = {"accuracy": float((p == y).mean()), "macro_f1": float(f1_score(y, p, average="macro", zero_division=0))}
    else:
        from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score

        p_ids, y_ids = _token_rows(preds, labels)
        if sum(map(len, y_ids)) == 0:
            raise Ptv2Error("compute_metrics: no labelled tokens")
        names = spec.labels
        n = len(names)
        bad = sorted({v for row in p_ids + y_ids for v in row if not 0 <= v < n})
        if bad:
            raise Ptv2Error(f"compute_metrics: tag ids {bad[:5]} outside 0..{n - 1} for task '{spec.name}'")
        p_tags = [[names[v] for v in row] for row in p_ids]
        y_tags = [[names[v] for v in row] for row in y_ids]
        with warnings.catch_warnings():  # seqeval warns when there are no entities at all: that is a 0
            warnings.simplefilter("ignore")
            out = {
                "span_f1": float(f1_score(y_tags, p_tags, zero_division=0)),
                "precision": float(precision_score(y_tags, p_tags, zero_division=0)),
                "recall": float(recall_score(y_tags, p_tags, zero_division=0)),
                "accuracy": float(accuracy_score(y_tags, p_tags)),
            }
    out["score"] = out[spec.metric]
    return out


def majority_baseline(spec: TaskSpec, labels: Sequence[Any], eval_labels: Sequence[Any] | None = None) -> float:
    """The floor a model must beat: accuracy of always predicting the most frequent label of
    ``labels`` (the train labels), scored on ``eval_labels`` when given, else on ``labels`` themselves.

    Token tasks: the most frequent tag is "O", whose span F1 is 0; this returns that span F1
    (``spec.metric``'s value of the all-majority tagger) rather than a token accuracy.
    """
    if spec.type == "sequence":
        train = _sequence_ids(labels, "labels")
        if len(train) == 0:
            raise Ptv2Error("majority_baseline: no labels")
        majority = Counter(train.tolist()).most_common(1)[0][0]
        target = train if eval_labels is None else _sequence_ids(eval_labels, "eval_labels")
        return float((target == majority).mean())
    flat = [int(v) for row in labels for v in np.asarray(row).reshape(-1) if v != IGNORE]
    if not flat:
        raise Ptv2Error("majority_baseline: no labels")
    majority = Counter(flat).most_common(1)[0][0]
    target = labels if eval_labels is None else eval_labels
    preds = [[majority] * len(np.asarray(row).reshape(-1)) for row in target]
    return compute_metrics(spec, preds, target)["score"]
