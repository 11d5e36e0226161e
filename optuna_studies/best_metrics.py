"""``metrics.json`` for the search's best adapter, so that the output's ``adapter/`` is as complete
as the folder ``ptv2 train --out`` writes and ``ptv2 register`` takes it as it is.

The trials score dev only (the search selects on it); the chosen adapter is scored once, here,
on its own dev and test splits (the trial's split seed and ``--max-eval``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ptv2_core.adapter import load_adapter, split_seed_of
from ptv2_core.device import pick_device
from ptv2_core.report import evaluate_adapter


def best_metrics(adapter_dir: Path, best: dict[str, Any], task: str, study_name: str,
                 max_eval: int | None) -> dict[str, Any]:
    """Score ``adapter_dir`` (the best trial's adapter) on dev and test; the metrics document."""
    loaded = load_adapter(adapter_dir, device=pick_device("auto"))
    seed = split_seed_of(loaded.config)
    seed = 0 if seed is None else seed
    train_cfg = (loaded.config.get("extra") or {}).get("train_config") or {}
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
        "base_fingerprint": loaded.config["base_model"]["fingerprint"],
        "study": study_name,
        "trial": best.get("number"),
        "search_dev_score": best["best_score"],
    }
