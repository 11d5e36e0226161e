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


def best_metrics(adapter_dir: Path, best: dict[str, Any], task: str, study_name: str,
                 max_eval: int | None) -> dict[str, Any]:
    """Score ``adapter_dir`` (the best trial's adapter) on dev and test; the metrics document."""
    loaded = load_adapter(adapter_dir, device=pick_device("auto"))
    seed = split_seed_of(loaded.config)
    seed = 0 if seed is None else seed
    extra = loaded.config.get("extra") or {}
    train_cfg = extra.get("train_config") or {}
    search = extra.get("search") or {}  # the trial's record (objective.py)
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
        # as `ptv2 train` records them: the seeds, the rows the trial trained and was scored on (its record;
        # test_data_hash: the test rows scored here) and where the trial trained
        **({"train_seed": train_cfg["seed"]} if train_cfg.get("seed") is not None else {}),
        "data_seed": seed,
        **trained_rows(search),
        **({"runtime": trained_on} if isinstance(trained_on := search.get("runtime"), dict) else {}),
        "scoring_runtime": runtime(loaded.model),  # where dev and test were scored, here
        # the pre-trained prompt a `--init` search's trial started from, as train's metrics.json has it
        **{k: extra[k] for k in ("init", "init_sha256") if extra.get(k)},
        "base_fingerprint": loaded.config["base_model"]["fingerprint"],
        "study": study_name,
        "trial": best.get("number"),
        "search_dev_score": best["best_score"],
    }


def trained_rows(search: dict[str, Any]) -> dict[str, Any]:
    """``{"data_hashes": …}``: the ``split_hash`` of the train, dev and test rows the trial trained and
    was scored on, as its training loaded them (the objective records them in the trial adapter's
    ``extra.search``), as ``ptv2 train``'s ``data_hashes``. Not derived again: the task's rows as the
    search ends may be others (an edited task file), and that would load the data a second time.
    Empty for a trial of a search from before trials recorded them."""
    hashes = search.get("data_hashes")
    return {"data_hashes": hashes} if isinstance(hashes, dict) else {}
