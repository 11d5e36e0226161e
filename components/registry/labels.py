"""The labels a registered version answers with, as version tags and MLmodel metadata.

A reviewer in the MLflow UI or a client of the REST API (``model-versions/get``) sees a version's
tags, not its artifacts: the label list lived only in the adapter's ``adapter_config.json``. MLflow's
model signature has no enumerated type (a ``ColSpec`` is a type and a name), so the output schema
can say no more than ``label: string``; these tags say which strings.

``ptv2.labels`` is a JSON list. A tag value is kept under ``limit`` characters (a store made by an
MLflow before 3.x holds at most 5000 per tag): a list longer than that keeps its first labels that
fit, ``ptv2.labels_truncated`` says so, and the full list is in the model's MLmodel ``metadata``.
"""
from __future__ import annotations

import json
from collections.abc import Sequence

LABELS_TAG = "ptv2.labels"
LABEL_COUNT_TAG = "ptv2.label_count"
TRUNCATED_TAG = "ptv2.labels_truncated"
DESCRIBED = 300  # characters of labels in the version's description


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False)  # a label as written, not as \u escapes


def label_tags(labels: Sequence[str], limit: int) -> dict[str, str]:
    """``ptv2.labels`` (a JSON list, at most ``limit`` characters), ``ptv2.label_count`` and, where
    the list did not fit, ``ptv2.labels_truncated`` saying how many it holds and where the rest is."""
    labels = [str(x) for x in labels]
    tags = {LABEL_COUNT_TAG: str(len(labels))}
    full = _json(labels)
    if len(full) <= limit:
        return tags | {LABELS_TAG: full}
    kept: list[str] = []
    size = 2  # "[]"
    for label in labels:
        add = len(_json(label)) + (2 if kept else 0)  # ", " between items
        if size + add > limit:
            break
        kept.append(label)
        size += add
    return tags | {LABELS_TAG: _json(kept),
                   TRUNCATED_TAG: f"{LABELS_TAG} holds the first {len(kept)} of {len(labels)} labels (a tag value is kept "
                                  f"under {limit} characters); all of them are in the model's MLmodel metadata "
                                  "(ptv2.labels)"}


def labels_line(labels: Sequence[str], task_type: str) -> str:
    """The description's line: ``labels (6): ABBR, DESC, …`` (token tasks: its BIO tags), the first
    ones up to ``DESCRIBED`` characters, then how many more."""
    what = "tags" if task_type == "token" else "labels"
    shown: list[str] = []
    for label in labels:
        if shown and len(", ".join(shown + [label])) > DESCRIBED:
            break
        shown.append(label)
    more = len(labels) - len(shown)
    rest = f", … and {more} more (tag {LABELS_TAG}, MLmodel metadata)" if more else ""
    return f"{what} ({len(labels)}): {', '.join(shown)}{rest}."
