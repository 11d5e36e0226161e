"""Seeded, deterministic splitting and subsetting (numpy Generator only: no hash order, no global state)."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable, Sequence

import numpy as np
from datasets import DatasetDict

from ptv2_core.errors import Ptv2Error
from ptv2_core.settings import check_seed
from ptv2_core.tasks.subsample import subsample

TEST_STREAM = 2  # the seeded stream of the test split's subset (train 0, dev 1)

SPLITS = ("train", "dev", "test")


def text_key(text: str) -> str:
    """Duplicate-detection key: whitespace collapsed, case folded."""
    return " ".join(text.split()).casefold()


def seeded_split(
    keys: Sequence[Hashable],
    strata: Sequence[Hashable],
    seed: int,
    parts: dict[str, float],
) -> dict[str, list[int]]:
    """Split row indices into ``parts`` (name → fraction; the first part takes the remainder).

    Rows sharing a key stay together (no duplicate leaks across splits); each stratum (label,
    or has-entity for token tasks) is split in proportion, so rare classes reach every split.
    Within each split the order is shuffled. Same inputs and seed → same output, in any process.
    """
    names = list(parts)
    groups: dict[Hashable, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    group_rows = list(groups.values())  # insertion order: first appearance
    by_stratum: dict[Hashable, list[int]] = {}
    for g, rows in enumerate(group_rows):
        by_stratum.setdefault(strata[rows[0]], []).append(g)
    rng = np.random.default_rng(seed)
    out: dict[str, list[int]] = {n: [] for n in names}
    for stratum in sorted(by_stratum, key=repr):
        gs = [by_stratum[stratum][j] for j in rng.permutation(len(by_stratum[stratum]))]
        start = 0
        for name in names[1:]:
            take = int(len(gs) * parts[name] + 0.5)
            take = min(take, len(gs) - start - 1) if len(gs) - start > 1 else 0  # keep >= 1 in the first part
            out[name].extend(gs[start : start + take])
            start += take
        out[names[0]].extend(gs[start:])
    # Tiny data: rounding can leave a carved part empty; lend it one group from the first part.
    for name in names[1:]:
        if not out[name] and parts[name] > 0 and len(out[names[0]]) > 1:
            out[name].append(out[names[0]].pop())
    result = {}
    for name in names:
        order = rng.permutation(len(out[name]))
        result[name] = [r for j in order for r in group_rows[out[name][j]]]
    return result


def finalize(dd: DatasetDict, seed: int, max_train: int | None, max_eval: int | None) -> DatasetDict:
    """Check the three splits exist and are non-empty, then apply ``max_train`` / ``max_eval``
    (seeded subsets stratified by label: ``subsample``)."""
    check_seed(seed, "split seed")
    for name, n in (("max_train", max_train), ("max_eval", max_eval)):
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise Ptv2Error(f"{name} must be a positive integer (or left out: all rows), got {n!r}")
    if set(dd) != set(SPLITS):
        raise Ptv2Error(f"a task needs exactly the splits {SPLITS}, got {sorted(dd)}")
    for name in SPLITS:
        if len(dd[name]) == 0:
            raise Ptv2Error(f"split '{name}' has 0 rows")
    return DatasetDict(
        train=subsample(dd["train"], max_train, seed, 0),
        dev=subsample(dd["dev"], max_eval, seed, 1),
        test=subsample(dd["test"], max_eval, seed, TEST_STREAM),
    )


def carve(kind: str, xs: list, ys: list, seed: int, missing: Sequence[str]) -> dict[str, tuple[list, list]]:
    """Split rows of a train source into train plus the ``missing`` splits (10 % each).

    Stratified by label (token tasks: by has-entity); duplicate texts stay on one side.
    """
    keys = [text_key(x) for x in xs] if kind == "sequence" else [tuple(w) for w in xs]
    strata = ys if kind == "sequence" else [any(t != "O" for t in tags) for tags in ys]
    parts = {"train": 1.0 - 0.1 * len(missing), **{s: 0.1 for s in missing}}
    idx = seeded_split(keys, strata, seed, parts)
    for s in missing:
        if not idx[s]:
            raise Ptv2Error(f"too few distinct rows ({len(set(keys))}) to carve a {s} split from train")
    return {s: ([xs[i] for i in ii], [ys[i] for i in ii]) for s, ii in idx.items()}


def overlaps(kind: str, dd: DatasetDict) -> dict[tuple[str, str], int]:
    """Rows of a later split whose text (``text_key``; token tasks: the words) is also in an earlier
    one: ``{("dev", "train"): n, ("test", "train"): n, ("test", "dev"): n}``."""
    column, key = ("text", text_key) if kind == "sequence" else ("tokens", tuple)
    keys = {s: [key(x) for x in dd[s][column][:]] for s in SPLITS}  # [:]: one read (row by row was 2/3 of a load)
    pairs = (("dev", "train"), ("test", "train"), ("test", "dev"))
    return {(a, b): sum(k in seen for k in keys[a]) for a, b in pairs for seen in [set(keys[b])]}


def check_overlap(kind: str, dd: DatasetDict, task: str) -> str | None:
    """Refuse a dev or test split that is mostly a copy of train (or test of dev): its scores
    would measure memory. A smaller overlap is returned as a note (None when there is none)."""
    counts = {pair: n for pair, n in overlaps(kind, dd).items() if n}
    for (a, b), n in counts.items():
        if 2 * n > len(dd[a]):
            raise Ptv2Error(f"task '{task}': {n} of {len(dd[a])} {a} rows are also in {b} (the same text): the {a} "
                            f"split is mostly a copy of {b}, so its scores would measure memory; give {a} rows apart "
                            f"from {b}, or no {a} split (it is then carved from train)")
    if not counts:
        return None
    shown = ", ".join(f"{n} of {len(dd[a])} {a} rows are also in {b}" for (a, b), n in counts.items())
    return f"task '{task}': {shown} (the same text); their scores may be somewhat too high"


def split_hash(spec, rows) -> str:
    """SHA-256 over a split's texts and label names, in order: same rows ⇔ same hash, in any
    process (what the registry tags as ``data_hash`` and the pipeline records per split)."""
    h = hashlib.sha256()
    text_col = "text" if spec.type == "sequence" else "tokens"
    label_col = "label" if spec.type == "sequence" else "tags"
    for text, label in zip(rows[text_col][:], rows[label_col][:]):  # [:]: the column in one read, not row by row
        gold = spec.labels[label] if spec.type == "sequence" else [spec.labels[t] for t in label]
        h.update(json.dumps([text, gold], ensure_ascii=False).encode() + b"\n")
    return "sha256:" + h.hexdigest()
