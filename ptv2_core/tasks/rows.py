"""Rows → typed ``datasets.Dataset``: the normalized columns, with every label checked against the spec."""
from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from datasets import ClassLabel, Dataset, Features, List, Value

from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks.spec import TaskSpec
from ptv2_core.wording import count_of


def missing_rows(values: Sequence) -> list[int]:
    """Indices of missing values: None, NaN, pandas' NA, blank strings."""
    return [i for i, v in enumerate(values) if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
            or (isinstance(v, str) and not v.strip())]


def check_token_rows(xs: Sequence, ys: Sequence, where: str, columns: tuple[str, str] = ("tokens", "tags")) -> None:
    """Token rows as a task takes them: no missing value (None, NaN) inside a word or tag list (str()
    would make it the word 'None'), as many tags as words, and words in every row. Row numbers are
    the caller's: a file's, or a hub split's, checked before carving reorders them."""
    for i, (words, tags) in enumerate(zip(xs, ys)):
        for col, values in zip(columns, (words, tags)):
            gap = next((k for k, x in enumerate(values) if not isinstance(x, str) and missing_rows([x])), None)
            if gap is not None:
                raise Ptv2Error(f"{where}: row {i + 1} of column '{col}' has a missing value (null) at position "
                                f"{gap + 1}")
        if len(words) != len(tags):
            raise Ptv2Error(f"{where}: row {i + 1} has {count_of(len(words), 'token')} but "
                            f"{count_of(len(tags), 'tag')} (lengths must match)")
        if len(words) == 0:
            raise Ptv2Error(f"{where}: row {i + 1} has no tokens")


def features(spec: TaskSpec) -> Features:
    """Normalized columns: sequence ``text``/``label``; token ``tokens``/``tags`` (ClassLabel ids)."""
    names = list(spec.labels)
    if spec.type == "sequence":
        return Features({"text": Value("string"), "label": ClassLabel(names=names)})
    return Features({"tokens": List(Value("string")), "tags": List(ClassLabel(names=names))})


def check_labels(spec: TaskSpec, ys: Sequence, where: str, inferred: bool = False) -> None:
    """Every label (token tasks: every tag) of the rows in the label list, else an error
    naming each unknown one with the data row it is first on (rows counted from 1)."""
    known = set(spec.labels)
    first: dict[str, int] = {}
    for i, y in enumerate(ys):
        for label in ([y] if spec.type == "sequence" else y):
            if label not in known:
                first.setdefault(label, i + 1)
    if first:
        bad = sorted(first)
        shown = ", ".join(f"{x!r} (first at row {first[x]})" for x in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        why = (" (inferred from train: a label no train row has is outside it)" if inferred
               else _ids_hint(bad, spec.labels) if spec.type == "sequence" else "")
        raise Ptv2Error(f"{where}: labels outside the label list of task '{spec.name}': {shown}{more}; "
                        f"label list: {list(spec.labels)}{why}")


def _ids_hint(outside: list[str], labels: Sequence[str]) -> str:
    """Labels outside a list of names that are all numbers: label ids (a data set exported with
    them, ``0``/``1`` against ``labels: [neg, pos]``) are not read as ids for sequence tasks."""
    def number(x: str) -> bool:  # 0-9 only: '²' and other digits str.isdigit takes are no number to int()
        return x.isascii() and x.isdigit()

    if not all(number(x) for x in outside) or any(number(x) for x in labels):
        return ""
    numbers = ", ".join(f'"{x}"' for x in sorted(outside, key=int)[:5])
    return (" (the file's labels are numbers: label ids? a sequence task's labels are read as the text they are "
            "written as, never as ids: write each row's label name in the file, or list the numbers, labels: "
            f"[{numbers}])")


def make_dataset(spec: TaskSpec, xs: Sequence, ys: Sequence, where: str) -> Dataset:
    """Build the split ``where`` (a file name or 'split of corpus', for messages).

    Sequence: ``xs`` strings, ``ys`` label strings. Token: ``xs`` word lists, ``ys`` tag lists of
    the same lengths. Raises Ptv2Error on unknown labels, length mismatch or 0 rows.
    """
    if len(xs) == 0:
        raise Ptv2Error(f"{where}: 0 rows (empty data)")
    index = {lab: i for i, lab in enumerate(spec.labels)}
    if spec.type == "sequence":
        ys = [str(y) for y in ys]
        check_labels(spec, ys, where)
        return Dataset.from_dict({"text": list(xs), "label": [index[y] for y in ys]}, features=features(spec))
    check_token_rows(xs, ys, where)
    ys = [[str(t) for t in tags] for tags in ys]
    check_labels(spec, ys, where)
    return Dataset.from_dict(
        {"tokens": [[str(w) for w in words] for words in xs], "tags": [[index[t] for t in tags] for tags in ys]},
        features=features(spec),
    )
