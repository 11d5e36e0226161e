"""Which task and which prompt length each pre-training step uses, reproducibly and resumably.

Tasks are drawn with probability proportional to ``size ** (1 / temperature)``: temperature 1
is proportional to size (a small task is drowned), large temperatures approach uniform. Each
task walks through its own rows in seeded passes (a fresh permutation per pass), so a small
task repeats rows rather than being starved. The whole state is a few integers plus a numpy
bit-generator state: it goes into a checkpoint's JSON, and a resumed run continues exactly.
"""
from __future__ import annotations

import numpy as np

from ptv2_core.errors import Ptv2Error


def mixing_weights(sizes: list[int], temperature: float) -> list[float]:
    """Sampling probability per task: ``size ** (1/temperature)``, normalised."""
    if not temperature > 0:
        raise Ptv2Error(f"mixing temperature must be positive, got {temperature}")
    if not sizes or min(sizes) <= 0:
        raise Ptv2Error(f"every task needs at least one training row, got sizes {sizes}")
    # in log space: size ** (1/T) overflows to inf for a small T (32 rows at T = 0.001), and inf/inf is NaN
    logs = np.log(np.asarray(sizes, dtype=np.float64)) / temperature
    w = np.exp(logs - logs.max())
    return (w / w.sum()).tolist()


class TaskMixer:
    """Draws ``(task index, row indices, prompt length)`` for each step.

    ``lengths``: the candidate prompt lengths; with ``nested=False`` every step uses the
    longest one (plain, non-nested pre-training, for comparison).
    """

    def __init__(self, sizes: list[int], batch_size: int, lengths: list[int], *, temperature: float = 2.0,
                 nested: bool = True, seed: int = 0):
        if batch_size <= 0:
            raise Ptv2Error(f"batch size must be positive, got {batch_size}")
        if not lengths:
            raise Ptv2Error("at least one prompt length is needed")
        self.sizes = list(sizes)
        self.batch_size = batch_size
        self.lengths = sorted(lengths)
        self.nested = nested
        self.seed = seed
        self.weights = mixing_weights(self.sizes, temperature)
        self.rng = np.random.default_rng([seed, 7919])
        self.passes = [0] * len(sizes)  # how many full passes each task has started
        self.cursor = [0] * len(sizes)  # position inside the current pass
        self._orders: dict[int, tuple[int, np.ndarray]] = {}

    def steps_per_epoch(self) -> int:
        """One epoch = as many steps as batches in all tasks' training rows together."""
        return sum(-(-n // self.batch_size) for n in self.sizes)

    def _order(self, task: int) -> np.ndarray:
        # a pure function of (seed, task, pass): nothing to store but the pass number
        cached = self._orders.get(task)
        if cached is None or cached[0] != self.passes[task]:
            perm = np.random.default_rng([self.seed, task, self.passes[task]]).permutation(self.sizes[task])
            cached = self._orders[task] = (self.passes[task], perm)
        return cached[1]

    def next(self) -> tuple[int, list[int], int]:
        """The next step's task, its batch of row indices, and its prompt length."""
        task = int(self.rng.choice(len(self.sizes), p=self.weights))
        length = int(self.rng.choice(self.lengths)) if self.nested else self.lengths[-1]
        order = self._order(task)
        start = self.cursor[task]
        rows = order[start:start + self.batch_size].tolist()
        self.cursor[task] = start + len(rows)
        if self.cursor[task] >= self.sizes[task]:  # pass done: the next batch starts a new permutation
            self.passes[task] += 1
            self.cursor[task] = 0
        return task, rows, length

    def state_dict(self) -> dict:
        """JSON-able state (numpy's PCG64 state is a dict of ints)."""
        return {"rng": self.rng.bit_generator.state, "passes": list(self.passes), "cursor": list(self.cursor),
                "sizes": list(self.sizes)}

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state``; refused when it was drawn for other task sizes (its cursors and
        permutations would index other rows, or past them). A state without ``sizes`` (saved before
        they were) is checked by its cursors alone."""
        if len(state["passes"]) != len(self.sizes) or len(state["cursor"]) != len(self.sizes):
            raise Ptv2Error("sampler state does not match the number of tasks")
        for i, (now, cursor) in enumerate(zip(self.sizes, state["cursor"])):
            then = state.get("sizes", [None] * len(self.sizes))[i]
            if then is not None and int(then) != now:
                raise Ptv2Error(f"sampler state does not match the tasks: task {i + 1} has {now} training rows now, "
                                f"{then} in the checkpoint")
            if not 0 <= int(cursor) < now:
                raise Ptv2Error(f"sampler state does not match the tasks: task {i + 1} stopped at row {cursor} of a "
                                f"pass, but it has {now} training rows")
        self.rng.bit_generator.state = state["rng"]
        self.passes = [int(x) for x in state["passes"]]
        self.cursor = [int(x) for x in state["cursor"]]
        self._orders.clear()
