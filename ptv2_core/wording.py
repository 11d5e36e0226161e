"""Counts in messages: ``"1 trial"``, ``"3 trials"`` (no "trial(s)", no "1 trials")."""
from __future__ import annotations


def count_of(n: int, what: str) -> str:
    """``n`` and ``what``, plural unless ``n`` is 1 (``what`` plural by an added s)."""
    return f"{n} {what}{'s' * (n != 1)}"
