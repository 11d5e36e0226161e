"""Per-example predictions of an adapter on a task's test split, and the majority-class floor.

The predictions come from ``ptv2_core.evaluate.predict_split`` (the loop ``evaluate`` scores
with), so the two models are compared example by example on exactly what the metrics see.
"""
from __future__ import annotations

from collections import Counter

from ptv2_core.adapter import LoadedAdapter
from ptv2_core.evaluate import predict_split
from ptv2_core.precision import trained_bf16
from ptv2_core.tasks import TaskSpec, load_task
from ptv2_core.tasks.encode import Collator, encode


def test_split(task_ref: str, seed: int, max_eval: int | None):
    """``(spec, test rows, train labels)`` of a task with the given split seed."""
    spec, data = load_task(task_ref, seed=seed, max_eval=max_eval)
    train_labels = data["train"]["label" if spec.type == "sequence" else "tags"][:]  # a list: one read, not row by row
    return spec, data["test"], train_labels


def predict_ids(loaded: LoadedAdapter, rows, batch_size: int = 64, progress: str | None = None,
                batch_option: str = "--batch-size") -> tuple[list, list]:
    """``(preds, golds)``: class ids per example, or tag-id lists, one per word (a word cut off by the
    max length tagged "O"; the golds every word's tag, whatever the model's tokenizer); running
    out of memory says "try a smaller ``batch_option``" (``ptv2 promote``'s ``--batch-size`` by
    default; the pipeline's promote step, which has no such parameter, says what to do instead).
    ``progress``: a progress bar's label (on a terminal only)."""
    spec = loaded.spec
    enc = encode(rows, loaded.tokenizer, spec, spec.max_length)
    device = next(loaded.model.parameters()).device
    preds, golds, _ = predict_split(loaded.model, enc, spec, Collator(loaded.tokenizer, spec), device, batch_size,
                                    bf16=trained_bf16(loaded.config), batch_option=batch_option, progress=progress)
    return preds, golds


def majority_preds(spec: TaskSpec, train_labels, golds: list) -> list:
    """What always predicting the most frequent train label (tag) gives on ``golds``."""
    if spec.type == "sequence":
        top = Counter(int(x) for x in train_labels).most_common(1)[0][0]
        return [top] * len(golds)
    top = Counter(int(t) for row in train_labels for t in row).most_common(1)[0][0]
    return [[top] * len(g) for g in golds]
