"""``max_train`` / ``max_eval``: a seeded subset of a split that keeps its labels' shares.

A plain random subset of a few hundred rows could drop a rare label (trec's ABBR is 1.6 % of its
rows) or skew the score; the subset is drawn per stratum instead, each stratum's row count in
proportion (largest remainder), and every stratum keeps at least one row when ``n`` allows:

- sequence tasks: the label;
- token tasks: the rarest entity type in the row (types counted by the rows that hold them in
  this split), or "no entity": every entity type stays in the subset when ``n`` allows, and rows
  without entities keep their share. A row is counted once, under its rarest type.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence

import numpy as np
from datasets import Dataset

NO_ENTITY = ""  # the stratum of a token row without entities (no entity type is named "")
RULE = "stratified"  # recorded with what a subset trains or scores (a study's settings, a version's tags)


def subset_rule(max_train: int | None, max_eval: int | None) -> dict[str, str]:
    """``{"subset": RULE}`` when a row cap picks a subset, else ``{}``: what a search study's
    settings, a pre-training checkpoint's run key and an adapter's train_config record, so that
    one made when caps drew a plain random subset (before 2026-12-06) is told apart."""
    return {"subset": RULE} if max_train or max_eval else {}


def allocate(counts: Sequence[int], n: int, rng: np.random.Generator) -> list[int]:
    """Rows to take from each stratum: ``n`` in all (``0 < n < sum(counts)``), in proportion to
    ``counts`` by largest remainder (integer arithmetic, so the same in any process; ties in seeded
    order), then at least one per stratum when ``n`` allows, taken from the strata furthest above
    their exact share."""
    total, k = sum(counts), len(counts)
    tie = rng.permutation(k)
    take = [n * c // total for c in counts]
    by_remainder = sorted(range(k), key=lambda i: (-(n * counts[i] % total), tie[i]))
    for i in by_remainder[: n - sum(take)]:
        take[i] += 1
    if n >= k:
        for i in (i for i in range(k) if take[i] == 0):
            # some stratum holds >= 2 (n >= k rows over k strata, one empty); excess over the exact share n*c/total
            j = max((j for j in range(k) if take[j] > 1), key=lambda j: (take[j] * total - n * counts[j], -tie[j]))
            take[j] -= 1
            take[i] = 1
    return take


def strata(ds: Dataset) -> list[Hashable]:
    """Each row's stratum: its label (sequence), or its rarest entity type (token; see the module)."""
    if "label" in ds.column_names:
        return ds["label"][:]  # [:]: the column in one read (iterating a datasets Column reads row by row)
    names = ds.features["tags"].feature.names
    kind = [name[2:] if name != "O" else NO_ENTITY for name in names]  # B-per and I-per: one type, per
    row_types = [{kind[t] for t in tags} - {NO_ENTITY} for tags in ds["tags"][:]]
    rows_with = Counter(t for types in row_types for t in types)
    return [min(types, key=lambda t: (rows_with[t], t)) if types else NO_ENTITY for types in row_types]


def subsample(ds: Dataset, n: int | None, seed: int, stream: int) -> Dataset:
    """A seeded, stratified subset of ``n`` rows, in the split's order (all rows, unchanged, when
    ``n`` is None or >= len). Same split, ``n``, seed and stream → same rows, in any process."""
    if n is None or n >= len(ds):
        return ds
    rng = np.random.default_rng([seed, stream])
    of = strata(ds)
    groups: dict[Hashable, list[int]] = {}
    for i, s in enumerate(of):
        groups.setdefault(s, []).append(i)
    keys = sorted(groups)
    take = allocate([len(groups[s]) for s in keys], n, rng)
    chosen = [groups[s][j] for s, m in zip(keys, take) for j in rng.permutation(len(groups[s]))[:m]]
    return ds.select(sorted(chosen))


def random_subset(ds: Dataset, n: int | None, seed: int, stream: int) -> Dataset:
    """The subset ``max_train``/``max_eval`` drew until 2026-12-06 (a plain seeded permutation's
    first ``n`` rows), kept only to recognise data recorded then: a version registered from such a
    subset of the test split hashes to these rows, not to ``subsample``'s."""
    if n is None or n >= len(ds):
        return ds
    return ds.select(np.random.default_rng([seed, stream]).permutation(len(ds))[:n].tolist())
