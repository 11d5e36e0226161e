"""Per-example predictions of an adapter on a task's test split, and the majority-class floor.

Mirrors ``ptv2_core.evaluate.evaluate`` (same encoding, same first-sub-word rule for tags), but
keeps every example's prediction so the two models can be compared example by example.
"""
from __future__ import annotations

from collections import Counter

import torch
from torch.utils.data import DataLoader

from ptv2_core.adapter import LoadedAdapter
from ptv2_core.tasks import TaskSpec, load_task
from ptv2_core.tasks.encode import Collator, encode


def test_split(task_ref: str, seed: int, max_eval: int | None):
    """``(spec, test rows, train labels)`` of a task with the given split seed."""
    spec, data = load_task(task_ref, seed=seed, max_eval=max_eval)
    train_labels = data["train"]["label" if spec.type == "sequence" else "tags"]
    return spec, data["test"], train_labels


@torch.no_grad()
def predict_ids(loaded: LoadedAdapter, rows, batch_size: int = 64) -> tuple[list, list]:
    """``(preds, golds)``: class ids per example, or tag-id lists (labelled positions only)."""
    model, spec = loaded.model, loaded.spec
    model.eval()
    device = next(model.parameters()).device
    enc = encode(rows, loaded.tokenizer, spec, spec.max_length)
    loader = DataLoader(enc, batch_size=batch_size, shuffle=False, collate_fn=Collator(loaded.tokenizer, spec))
    preds: list = []
    golds: list = []
    for batch in loader:
        logits = model(batch["input_ids"].to(device), batch["attention_mask"].to(device)).logits
        guess, labels = logits.argmax(-1).cpu(), batch["labels"]
        if spec.type == "sequence":
            preds += guess.tolist()
            golds += labels.tolist()
        else:
            for g, y in zip(guess, labels):
                keep = y != -100
                preds.append(g[keep].tolist())
                golds.append(y[keep].tolist())
    return preds, golds


def majority_preds(spec: TaskSpec, train_labels, golds: list) -> list:
    """What always predicting the most frequent train label (tag) gives on ``golds``."""
    if spec.type == "sequence":
        top = Counter(int(x) for x in train_labels).most_common(1)[0][0]
        return [top] * len(golds)
    top = Counter(int(t) for row in train_labels for t in row).most_common(1)[0][0]
    return [[top] * len(g) for g in golds]
