"""``metrics.json`` for the search's best adapter, so that the output's ``adapter/`` is as complete
as the folder ``ptv2 train --out`` writes and ``ptv2 register`` takes it as it is.

The trials score dev only (the search selects on it); the chosen adapter is scored once, here,
on its own dev and test splits (the trial's split seed and ``--max-eval``). As ``ptv2 train``'s, its
metrics.json records the seeds, the rows' hashes and where it trained (docs/reproducibility.md).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ptv2_core.adapter import load_adapter, split_seed_of
from ptv2_core.device import pick_device
from ptv2_core.report import evaluate_adapter, runtime
from ptv2_core.tasks import load_task
from ptv2_core.tasks.splits import split_hash


def best_metrics(adapter_dir: Path, best: dict[str, Any], task: str, study_name: str,
                 max_eval: int | None) -> dict[str, Any]:
    """Score ``adapter_dir`` (the best trial's adapter) on dev and test; the metrics document."""
    loaded = load_adapter(adapter_dir, device=pick_device("auto"))
    seed = split_seed_of(loaded.config)
    seed = 0 if seed is None else seed
    train_cfg = (loaded.config.get("extra") or {}).get("train_config") or {}
    search = (loaded.config.get("extra") or {}).get("search") or {}  # the trial's record (objective.py)
    scores = evaluate_adapter(loaded, task, seed=seed, max_eval=max_eval,
                              batch_size=train_cfg.get("eval_batch_size") or 128,
                              batch_option="eval_batch_size (in a search: under the space's fixed: settings)",
                              test_hash=True)
    trainable, total = loaded.model.parameter_counts()
    return {
        "task": loaded.spec.name,
        "model": train_cfg.get("model"),
        "metric": scores["metric"],
        "prompt_len": best["prompt_len"],
        "lr": best["lr"],
        "epochs": train_cfg.get("epochs"),
        "best_epoch": best.get("best_epoch"),
        "dev": scores["dev"],
        "test": scores["test"],
        "seed": seed,
        "max_eval": max_eval,
        "test_data_hash": scores["test_data_hash"],  # the test rows scored: `ptv2 register` checks they are today's
        "trainable_params": trainable,
        "total_params": total,
        "trainable_pct": 100.0 * trainable / total,
        "history": best.get("history") or [],
        # as `ptv2 train` records them: the seeds, the rows (train: those the trial's settings draw from
        # the task, as its training did; dev and test: those scored here) and where the trial trained
        **({"train_seed": train_cfg["seed"]} if train_cfg.get("seed") is not None else {}),
        "data_seed": seed,
        "data_hashes": row_hashes(task, seed, train_cfg.get("max_train"), max_eval),
        **({"runtime": trained_on} if isinstance(trained_on := search.get("runtime"), dict) else {}),
        "scoring_runtime": runtime(loaded.model),  # where dev and test were scored, here
        "base_fingerprint": loaded.config["base_model"]["fingerprint"],
        "study": study_name,
        "trial": best.get("number"),
        "search_dev_score": best["best_score"],
    }


def row_hashes(task: str, seed: int, max_train: int | None, max_eval: int | None) -> dict[str, str]:
    """``split_hash`` of the train, dev and test rows ``task`` gives with this split seed and these
    caps: the rows the trial trained and was scored on (``load_task`` draws them as its training
    did), as ``ptv2 train``'s ``data_hashes``."""
    spec, data = load_task(task, seed=seed, max_train=max_train, max_eval=max_eval)
    return {name: split_hash(spec, data[name]) for name in ("train", "dev", "test")}
