"""Inference in batches of similar length: padding to the longest row of a batch costs compute
for nothing, and rows in their given order mix short and long ones. Rows are visited shortest
first and the results put back in the given order."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

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
