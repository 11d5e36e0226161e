"""The objective: one trial's training, a pure function of its config.

It calls the core's ``train`` with a plain ``report`` callback; neither side sees a trial
object, Ray or Optuna. The Ray wrapper (``trainable.py``) turns each report into a Tune result.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Any, Callable, Mapping

from ptv2_core.errors import Ptv2Error
from ptv2_core.memory import OutOfMemory
from ptv2_core.train import TrainConfig, TrainingDiverged, train

# The adapter of the current weights as {file name: content} (ptv2_core.adapter.adapter_files).
AdapterFiles = dict[str, "bytes | str"]
# report(epoch, metrics, adapter): ``adapter`` is given only when the objective improved, so
# the last adapter a trial reports is always its best one.
EpochReport = Callable[[int, dict[str, Any], "AdapterFiles | None"], None]

# After an out-of-memory failure's hint (an option of `ptv2 train`): where a search sets it.
IN_A_SPACE = " (in a search: batch_size or eval_batch_size under the space's fixed: settings)"

# Keys of a trial config beside TrainConfig's fields (optuna_number: set by the searcher, unused here).
SEARCH_KEYS = ("metric", "mode", "init", "optuna_number")


def train_config(config: Mapping[str, Any]) -> TrainConfig:
    """The TrainConfig of a trial config (its TrainConfig fields; no progress bars)."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(config) - names - set(SEARCH_KEYS))
    if unknown:
        raise Ptv2Error(f"trial config has unknown keys {unknown}")
    return TrainConfig(**{k: v for k, v in config.items() if k in names} | {"progress": False})


def objective(config: Mapping[str, Any], report: EpochReport) -> dict[str, Any]:
    """Train one configuration and report every epoch.

    ``config``: TrainConfig fields (``task``, ``model``, ``prompt_len``, ``lr``, ``epochs`` ...)
    plus ``metric`` (a key of the core's epoch row, e.g. ``dev_score``), ``mode`` (``max`` or
    ``min``) and ``init`` (a pre-trained prompt folder, or None).

    Each report carries the core's epoch row plus ``objective`` (this epoch's metric) and
    ``best_objective`` (the best so far: the weights a trial keeps). A diverging loss or a
    configuration error ends the trial with one last report holding ``failure`` (a message) and
    NaN objectives, and returns normally: retrying cannot help. Returns ``{"status", "best_objective",
    "best_epoch", "epochs_run", "failure"}``.
    """
    from ptv2_core.multitask.pretrained import started_from  # the prompt as ptv2 train --init records it

    cfg = train_config(config)
    metric, mode, init_dir = config.get("metric", "dev_score"), config.get("mode", "max"), config.get("init")
    state: dict[str, Any] = {"model": None, "best": None, "best_epoch": 0, "epoch": 0, "spec": None,
                             "data_hashes": None, "started_from": started_from(init_dir)}
    pretrained = _pretrained_init(init_dir, cfg) if init_dir else None

    def init(model, spec) -> None:
        # the live model (its adapter is saved from the report below) and the spec it was built and is
        # trained with: loading the task again gave its defaults (max_length), not the trial's
        state["model"], state["spec"] = model, spec
        if pretrained is not None:
            pretrained(model, spec)

    def on_data(hashes: dict[str, str]) -> None:
        # the rows this trial trains and is scored on, as they loaded: recorded with its adapter, which
        # the search's best_metrics takes (the task's rows as the search ends may be others)
        state["data_hashes"] = hashes

    def on_epoch(epoch: int, row: dict) -> None:
        if metric not in row:
            raise Ptv2Error(f"metric '{metric}' is not in the epoch report; it has {sorted(row)}")
        value = float(row[metric])
        state["epoch"] = epoch
        improved = math.isfinite(value) and (
            state["best"] is None or (value > state["best"] if mode == "max" else value < state["best"]))
        if improved:
            state["best"], state["best_epoch"] = value, epoch
        files = _adapter(state, cfg, epoch) if improved else None
        best = state["best"] if state["best"] is not None else math.nan
        report(epoch, dict(row) | {"objective": value, "best_objective": best, "best_epoch": state["best_epoch"]}, files)

    try:
        # a trial is judged on dev only: its test rows are scored once, for the search's best adapter
        # (best_metrics), so each trial's own test pass (as long as a dev one) would be thrown away
        train(cfg, report=on_epoch, init=init, on_data=on_data, score_test=False)
    except (TrainingDiverged, Ptv2Error) as e:
        status = "diverged" if isinstance(e, TrainingDiverged) else "failed"
        failure = f"{status}: {e}" + (IN_A_SPACE if isinstance(e, OutOfMemory) else "")
        report(state["epoch"] + 1, {"epoch": state["epoch"] + 1, "objective": math.nan, "best_objective": math.nan,
                                    "best_epoch": state["best_epoch"], "failure": failure}, None)
        return {"status": status, "best_objective": math.nan, "best_epoch": state["best_epoch"],
                "epochs_run": state["epoch"], "failure": failure}
    return {"status": "completed", "best_objective": state["best"], "best_epoch": state["best_epoch"],
            "epochs_run": state["epoch"], "failure": None}


def _pretrained_init(init_dir: str, cfg: TrainConfig) -> Callable:
    """``init_from_pretrained`` bound to this trial (imported lazily: pre-training is optional)."""
    from ptv2_core.multitask import init_from_pretrained

    return functools.partial(init_from_pretrained, pretrained_dir=init_dir, prompt_len=cfg.prompt_len,
                             task=cfg.task, seed=cfg.split_seed)


def _adapter(state: dict, cfg: TrainConfig, epoch: int) -> AdapterFiles:
    """The adapter files of the live model, with the task spec training gave ``init``."""
    from ptv2_core.adapter import adapter_files
    from ptv2_core.backbone import fingerprint
    from ptv2_core.report import runtime

    model = state["model"]
    # runtime: where the trial trained (a worker's device and threads) and data_hashes: the rows it
    # trained and was scored on, which the best adapter's metrics.json records as `ptv2 train` does
    # (optuna_studies.best_metrics); init and init_sha256 where ptv2 train --init records them
    search = {"epoch": epoch, "objective": state["best"], "runtime": runtime(model)}
    if state["data_hashes"] is not None:
        search["data_hashes"] = state["data_hashes"]
    extra = {"train_config": cfg.to_dict(), "search": search} | state["started_from"]
    return adapter_files(model, state["spec"], cfg.model, fingerprint(model.backbone), extra=extra)
