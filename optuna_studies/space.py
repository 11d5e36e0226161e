"""A search study as data: one YAML per task (``spaces/<task>.yaml``), read into ``SearchSpace``.

Keys of a space file (all but ``prompt_len`` and ``lr`` have defaults)::

    task: trec                   # optional: the task it is for (--task must be that task)
    metric: dev_score            # a key of the core's per-epoch report (dev_<metric>, train_loss)
    direction: maximize          # minimize for a loss (dev_loss, train_loss), maximize for any other
    prompt_len: [4, 8, 16, 32]   # categorical choices
    lr: {low: 3.0e-3, high: 5.0e-2, log: true}   # low == high fixes the rate: only prompt_len is searched
    epochs: 6                    # the resource ASHA spends (max epochs per trial)
    trials: 12
    pruning: {grace_period: 1, reduction_factor: 3, warm_grace_period: 2}
    sampler: {n_startup_trials: 4, seed: 0, startup: random, length: categorical}
                                 # startup: random or lhs (Latin hypercube); length: categorical or rank
    fixed: {batch_size: 32}      # other TrainConfig fields, the same for every trial (not seed,
                                 # model, task, epochs, max_train/max_eval: the command line's)
    enqueue: [{prompt_len: 16, lr: 1.0e-2}]   # configurations to evaluate first

Counts (epochs, trials, pruning's and sampler's numbers) are integers written in digits, at most
``MAX_COUNT``: ``4.0``, ``"4"`` or ``1e12`` (text to YAML) is refused, naming the key and the file.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ptv2_core.errors import Ptv2Error, yaml_problem
from ptv2_core.settings import check_seed
from ptv2_core.tasks import PACKAGED_TASKS
from ptv2_core.tasks.spec import MIN_MAX_LENGTH
from ptv2_core.train import TrainConfig

MAX_COUNT = 1_000_000  # a space's trials, epochs, start-up trials...: more is a typo, not a plan
_KEYS = {"task", "metric", "direction", "prompt_len", "lr", "epochs", "trials", "pruning", "sampler", "fixed", "enqueue"}
_DIRECTIONS = {"maximize": "max", "max": "max", "minimize": "min", "min": "min"}
# TrainConfig fields a space may fix: not the sampled ones, nor what the search itself sets.
_NOT_FIXABLE = {"task", "model", "prompt_len", "lr", "epochs", "max_train", "max_eval", "device", "progress", "patience",
                "seed"}
# the command line's option for a setting a space may not fix (a fixed seed was ignored: every trial had --seed's)
_BY_OPTION = {"seed": "--seed", "epochs": "the space's epochs: key or --epochs", "max_train": "--max-train",
              "max_eval": "--max-eval", "model": "--model", "task": "--task"}


@dataclass(frozen=True)
class SearchSpace:
    """What one task's study searches and how: choices, ranges, budget, pruning, objective."""

    prompt_lens: tuple[int, ...]
    lr_low: float
    lr_high: float
    lr_log: bool = True
    epochs: int = 5
    trials: int = 12
    metric: str = "dev_score"
    mode: str = "max"  # Ray Tune's spelling of the direction
    grace_period: int = 1
    reduction_factor: int = 3
    # ASHA's first rung when trials start from a pre-trained prompt (None: grace_period). From a
    # warm start, early epochs may rank configurations by the start, not by the configuration.
    warm_grace_period: int | None = None
    n_startup_trials: int = 4
    seed: int = 0
    # how the start-up trials are chosen: "lhs" (a Latin hypercube over length x lr, enqueued
    # before the first trial: optuna_studies/startup.py) or "random" (TPE's own random draws)
    startup: str = "random"
    # how TPE sees the prompt length: "categorical" or "rank" (ordered; optuna_studies/params.py)
    length: str = "categorical"
    fixed: dict[str, Any] = field(default_factory=dict)
    enqueue: tuple[dict[str, Any], ...] = ()
    source: str = ""

    @property
    def direction(self) -> str:
        """Optuna's spelling of the direction."""
        return "maximize" if self.mode == "max" else "minimize"

    def with_overrides(self, *, trials: int | None = None, epochs: int | None = None) -> SearchSpace:
        """A copy with the command line's budget; ASHA's grace period never exceeds the epochs."""
        trials = self.trials if trials is None else _positive_int(trials, "trials", "--trials")
        epochs = self.epochs if epochs is None else _positive_int(epochs, "epochs", "--epochs")
        warm = None if self.warm_grace_period is None else min(self.warm_grace_period, epochs)
        return dataclasses.replace(self, trials=trials, epochs=epochs, grace_period=min(self.grace_period, epochs),
                                   warm_grace_period=warm)

    def for_start(self, warm: bool) -> SearchSpace:
        """The space as a search runs it: from a pre-trained prompt (``warm``), ASHA's grace
        period is ``warm_grace_period`` where the space sets one."""
        if not warm or self.warm_grace_period is None:
            return self
        return dataclasses.replace(self, grace_period=self.warm_grace_period)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (logged with the study)."""
        d = dataclasses.asdict(self)
        d["prompt_lens"], d["enqueue"] = list(self.prompt_lens), list(self.enqueue)
        return d


def space_path(task: str, task_file: str | Path | None = None, task_type: str | None = None) -> Path | None:
    """The packaged space file of ``task``: a packaged task's own; a user task's ``default.yaml``, or
    ``default_token.yaml`` for a token task (its type: ``task_type`` where the caller knows it, else
    read from the task YAML, ``task_file`` or ``task`` itself: the pipeline's steps know a task by name
    beside its prepared file). A hub task's type is known only once fetched: ``ptv2 search``'s plan
    fetches it and passes ``task_type``; the pipeline reads it from the prepared file."""
    if task in PACKAGED_TASKS:
        name = task
    else:
        kind = task_type or _user_task_type(task_file if task_file is not None else task)
        name = "default_token" if kind == "token" else "default"
    path = Path(str(resources.files("optuna_studies") / "spaces" / f"{name}.yaml"))
    return path if path.is_file() else None


def _user_task_type(ref: str | Path) -> str | None:
    """The ``type:`` of a task YAML file, read without its data; None for anything else (a hub
    reference, a missing or unreadable file: loading the task reports those)."""
    path = Path(ref)
    if path.suffix.lower() not in (".yaml", ".yml", ".json") or not path.is_file():
        return None
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    return doc.get("type") if isinstance(doc, dict) else None


def load_space(task: str, path: str | Path | None = None, task_name: str | None = None,
               task_type: str | None = None) -> SearchSpace:
    """The study description for ``task``: ``path`` if given, else the packaged one (a user
    task gets ``default.yaml``, a user token task ``default_token.yaml``; ``task_type``: a fetched
    hub task's type). Raises Ptv2Error for a missing, unreadable or invalid file, and
    for a file whose ``task:`` names another task than ``task_name`` (the task's name; a packaged
    space's budget and pruning were chosen for its task: a copy of rt.yaml ran on trec unnoticed)."""
    file = Path(path) if path is not None else space_path(task, task_type=task_type)
    if file is None or not file.is_file():
        raise Ptv2Error(f"search space file not found: {file if file is not None else task}")
    try:
        doc = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise Ptv2Error(f"search space {file} is not readable YAML: {yaml_problem(e)}") from None
    space = parse_space(doc, str(file))
    named = doc.get("task")
    if named is not None and task_name is not None and named not in (task, task_name, task_name.removeprefix("hub:")):
        raise Ptv2Error(f"search space {file} is for task '{named}' (its task: key), not '{task_name}': run it with "
                        f"--task {named}, or remove or change its task: key to search {task_name} with it")
    return space


def parse_space(doc: Any, source: str = "<space>") -> SearchSpace:
    """Validate a space document (the parsed YAML) into a SearchSpace."""
    where = f"search space {source}"
    if not isinstance(doc, dict):
        raise Ptv2Error(f"{where} must hold a mapping (prompt_len:, lr:, ...), got {type(doc).__name__}")
    unknown = sorted(set(doc) - _KEYS, key=str)  # keys of any YAML type (1: and typo: together)
    if unknown:
        raise Ptv2Error(f"{where}: unknown keys {unknown}; allowed: {sorted(_KEYS)}")
    if "task" in doc and not isinstance(doc["task"], str):  # a label the command's --task must match
        raise Ptv2Error(f"{where}: task must be a task name, got {doc['task']!r}")
    for key in ("prompt_len", "lr"):
        if key not in doc:
            raise Ptv2Error(f"{where}: missing required key '{key}'")
    lens = doc["prompt_len"]
    if not isinstance(lens, list) or not lens or not all(_is_int(x) and x > 0 for x in lens):
        raise Ptv2Error(f"{where}: prompt_len must be a non-empty list of positive integers, got {lens!r}")
    if len(set(lens)) != len(lens):
        raise Ptv2Error(f"{where}: prompt_len has duplicates: {lens}")
    low, high, log = _lr_range(doc["lr"], where)
    metric = doc.get("metric", "dev_score")
    if not isinstance(metric, str) or not (metric.startswith("dev_") or metric == "train_loss"):
        raise Ptv2Error(f"{where}: metric must be a dev_<name> metric or train_loss, got {metric!r}")
    # a loss is minimised: its default direction, and maximising one would pick the worst trial
    is_loss = metric.endswith("loss")
    direction = doc.get("direction", "minimize" if is_loss else "maximize")
    if not isinstance(direction, str) or direction not in _DIRECTIONS:  # a list or mapping: unhashable
        raise Ptv2Error(f"{where}: direction must be maximize or minimize, got {direction!r}")
    if is_loss and _DIRECTIONS[direction] == "max":
        raise Ptv2Error(f"{where}: metric {metric} is a loss: direction must be minimize (or leave it out)")
    if not is_loss and _DIRECTIONS[direction] == "min":  # every other metric is a score in [0, 1]: the worst won
        raise Ptv2Error(f"{where}: metric {metric} is a score (higher is better): direction must be maximize "
                        "(or leave it out)")
    pruning = _mapping(doc.get("pruning", {}), "pruning", {"grace_period", "reduction_factor", "warm_grace_period"},
                       where)
    sampler = _mapping(doc.get("sampler", {}), "sampler", {"n_startup_trials", "seed", "startup", "length"}, where)
    startup, length = sampler.get("startup", "random"), sampler.get("length", "categorical")
    if startup not in ("lhs", "random"):
        raise Ptv2Error(f"{where}: sampler.startup must be lhs or random, got {startup!r}")
    if length not in ("rank", "categorical"):
        raise Ptv2Error(f"{where}: sampler.length must be rank or categorical, got {length!r}")
    epochs = _positive_int(doc.get("epochs", 5), "epochs", where)
    space = SearchSpace(
        prompt_lens=tuple(sorted(lens)), lr_low=low, lr_high=high, lr_log=log, epochs=epochs,
        trials=_positive_int(doc.get("trials", 12), "trials", where), metric=metric, mode=_DIRECTIONS[direction],
        grace_period=min(_positive_int(pruning.get("grace_period", 1), "pruning.grace_period", where), epochs),
        warm_grace_period=(None if pruning.get("warm_grace_period") is None else
                           min(_positive_int(pruning["warm_grace_period"], "pruning.warm_grace_period", where), epochs)),
        reduction_factor=_positive_int(pruning.get("reduction_factor", 3), "pruning.reduction_factor", where, least=2),
        n_startup_trials=_positive_int(sampler.get("n_startup_trials", 4), "sampler.n_startup_trials", where, least=0),
        seed=check_seed(sampler.get("seed", 0), f"{where}: sampler.seed"), startup=startup, length=length,
        fixed=_fixed(doc.get("fixed", {}), where), enqueue=_enqueue(doc.get("enqueue", []), where), source=source,
    )
    for p in space.enqueue:
        if p["prompt_len"] not in space.prompt_lens or not low <= p["lr"] <= high:
            raise Ptv2Error(f"{where}: enqueue entry {p} lies outside prompt_len {list(space.prompt_lens)} "
                            f"or lr [{low:g}, {high:g}]")
    return space


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _positive_int(x: Any, name: str, where: str, least: int = 1) -> int:
    """``x`` if it is an integer from ``least`` to ``MAX_COUNT``; a ``Ptv2Error`` naming ``name`` and
    ``where`` otherwise (YAML reads ``1e12`` or ``1.0e12`` as text, ``4.0`` as a float: both refused)."""
    if not _is_int(x) or not least <= x <= MAX_COUNT:
        read = {str: " (YAML read text: write the number in digits)", float: " (a float: write an integer)"}
        raise Ptv2Error(f"{where}: {name} must be an integer from {least} to {MAX_COUNT}, got {x!r}"
                        + read.get(type(x), ""))
    return x




def _lr_range(lr: Any, where: str) -> tuple[float, float, bool]:
    if not isinstance(lr, dict) or not {"low", "high"} <= set(lr) or set(lr) - {"low", "high", "log"}:
        raise Ptv2Error(f"{where}: lr must be a mapping {{low: ..., high: ..., log: true}}, got {lr!r}")
    try:
        low, high = float(lr["low"]), float(lr["high"])
    except (TypeError, ValueError):
        raise Ptv2Error(f"{where}: lr low/high must be numbers, got {lr!r}") from None
    if not (0 < low <= high and math.isfinite(high)):
        raise Ptv2Error(f"{where}: lr needs 0 < low <= high, got low={low:g}, high={high:g}")
    log = lr.get("log", True)
    if not isinstance(log, bool):
        raise Ptv2Error(f"{where}: lr.log must be true or false, got {log!r}")
    return low, high, log


def _mapping(value: Any, name: str, keys: set[str], where: str) -> dict:
    if not isinstance(value, dict) or set(value) - keys:
        raise Ptv2Error(f"{where}: {name} must be a mapping with keys among {sorted(keys)}, got {value!r}")
    return value


def _fixed(value: Any, where: str) -> dict[str, Any]:
    allowed = {f.name for f in dataclasses.fields(TrainConfig)} - _NOT_FIXABLE
    if isinstance(value, dict):
        for key, option in _BY_OPTION.items():
            if key in value:
                raise Ptv2Error(f"{where}: fixed: {key} is the search's own setting, not the space's: "
                                f"set it with {option}")
    fixed = _mapping(value, "fixed", allowed, where)
    length = fixed.get("max_length")  # every trial's task would be blamed for it ("task 't': max_length ...")
    if length is not None and (not _is_int(length) or length < MIN_MAX_LENGTH):
        raise Ptv2Error(f"{where}: fixed: max_length must be an integer >= {MIN_MAX_LENGTH} (tokens each text is cut "
                        f"to; leave it out for the task's own), got {length!r}")
    return dict(fixed)


def _enqueue(value: Any, where: str) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list):
        raise Ptv2Error(f"{where}: enqueue must be a list of {{prompt_len: ..., lr: ...}}, got {value!r}")
    points = []
    for p in value:
        if not isinstance(p, dict) or set(p) != {"prompt_len", "lr"} or not _is_int(p["prompt_len"]):
            raise Ptv2Error(f"{where}: each enqueue entry needs exactly prompt_len (integer) and lr, got {p!r}")
        try:
            points.append({"prompt_len": p["prompt_len"], "lr": float(p["lr"])})
        except (TypeError, ValueError):
            raise Ptv2Error(f"{where}: enqueue lr must be a number, got {p['lr']!r}") from None
    return tuple(points)
