"""Batches of similar length: padding to the longest row of a batch costs compute for nothing,
and rows in their given (or a random) order mix short and long ones. Inference visits rows
shortest first and puts the results back in the given order; training can draw its random
batches from groups of similar length (``LengthGroupedBatches``)."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

import torch

T = TypeVar("T")


def length_order(lengths: Sequence[int]) -> list[int]:
    """Row indices, shortest row first (ties keep their order, so the order is deterministic)."""
    return sorted(range(len(lengths)), key=lengths.__getitem__)


def in_order(results: Sequence[T], order: Sequence[int]) -> list[T]:
    """``results[k]`` belongs to row ``order[k]``: the results in the rows' own order."""
    out: list = [None] * len(order)
    for k, row in enumerate(order):
        out[row] = results[k]
    return out


class LengthGroupedBatches:
    """A ``batch_sampler`` for training: each epoch the rows are shuffled, cut into groups of
    ``group`` batches, each group sorted by length and cut into batches, and the batches shuffled
    (the scheme of transformers' ``group_by_length``, which groups 50 batches). Every row once per
    epoch, in random batches of rows of similar length. On the packaged tasks' training rows
    (trec, rt, wnut16), random batches of 32 padded to 1.75-1.93 times their tokens; groups of 4
    batches to 1.23-1.30, of 50 to 1.03-1.04. Groups of 4: with 50, whole batches of long (or short) rows cost wnut16 2-6 test points
    at the same epochs (3 seeds); with 4, 1.4-1.5x the examples/s (docs/benchmarks.md)."""

    def __init__(self, lengths: Sequence[int], batch_size: int, generator: torch.Generator, group: int = 4) -> None:
        self.lengths, self.batch_size, self.generator, self.span = list(lengths), batch_size, generator, group * batch_size

    def __len__(self) -> int:
        n, span, b = len(self.lengths), self.span, self.batch_size
        return sum(-(-min(span, n - start) // b) for start in range(0, n, span))

    def __iter__(self) -> Iterator[list[int]]:
        rows = torch.randperm(len(self.lengths), generator=self.generator).tolist()
        batches = []
        for start in range(0, len(rows), self.span):
            group = sorted(rows[start:start + self.span], key=self.lengths.__getitem__)
            batches += [group[i:i + self.batch_size] for i in range(0, len(group), self.batch_size)]
        for i in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[i]
