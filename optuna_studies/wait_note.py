"""Say so when the search's trials wait for the cluster's resources.

The search refuses a cluster none of whose nodes could ever hold a trial (``capacity.py``), but a
cluster whose nodes are busy with other jobs holds its trials PENDING for as long as they stay
busy. Ray Tune's own "no trial could start" warnings are off (the search prints its own lines), so
the command sat silent after its first line, for as long as it took. Once no trial has run for
``WAIT_NOTE_S`` while some wait, one line says what a trial needs and what the cluster has free;
again after a trial ran and they wait anew.
"""
from __future__ import annotations

import time
from typing import Callable

from ray.tune import Callback

WAIT_NOTE_S = 60.0


def free_resources() -> dict[str, float]:
    """The connected Ray cluster's free and total CPUs and GPUs (all nodes together)."""
    import ray

    free, total = ray.available_resources(), ray.cluster_resources()
    return {"CPU": free.get("CPU", 0), "GPU": free.get("GPU", 0),
            "total_CPU": total.get("CPU", 0), "total_GPU": total.get("GPU", 0)}


def wait_text(waited: float, cpus: float, gpus: float, have: dict[str, float]) -> str:
    return (f"note: no trial has run for {waited:.0f} s: a trial needs {cpus:g} CPU and {gpus:g} GPU on one node, "
            f"and the Ray cluster has {have['CPU']:g} of {have['total_CPU']:g} CPU and {have['GPU']:g} of "
            f"{have['total_GPU']:g} GPU free (other work holds them); the trials wait for them (Ctrl-C stops the "
            "search, --resume goes on)")


class WaitNote(Callback):
    """One ``note:`` line through ``echo`` when trials have waited ``after_s`` with none running."""

    def __init__(self, cpus: float, gpus: float, echo: Callable[[str], None], after_s: float | None = None):
        self._cpus, self._gpus, self._echo = cpus, gpus, echo
        self._after = WAIT_NOTE_S if after_s is None else after_s
        self._since: float | None = None  # when trials began to wait with none running
        self._said = False

    def on_step_begin(self, iteration: int, trials: list, **info) -> None:
        states = {t.status for t in trials}
        now = time.monotonic()
        if "RUNNING" in states or "PENDING" not in states:
            self._since, self._said = None, False
            return
        if self._since is None:
            self._since = now
        elif not self._said and now - self._since >= self._after:
            self._said = True
            try:
                have = free_resources()
            except Exception:  # noqa: BLE001 (a note only)
                return
            self._echo(wait_text(now - self._since, self._cpus, self._gpus, have))
