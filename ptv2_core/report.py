"""Result documents: what ``metrics.json`` holds, and scoring a saved adapter on a task."""
from __future__ import annotations

from dataclasses import replace

import torch

from ptv2_core.adapter import LoadedAdapter, own_task
from ptv2_core.evaluate import evaluate
from ptv2_core.precision import scoring_bf16
from ptv2_core.tasks import load_task
from ptv2_core.tasks.splits import split_hash
from ptv2_core.tasks.encode import Collator, encode
from ptv2_core.tasks.label_match import check_adapter_labels


def metrics_document(result, cfg) -> dict:
    """``metrics.json``: dev and test metrics, parameter counts, speed, the per-epoch history, and
    the seeds, data and runtime they came from."""
    trainable, total = result.model.parameter_counts()
    return {
        "task": result.spec.name,
        "model": cfg.model,
        "metric": result.spec.metric,
        "prompt_len": cfg.prompt_len,
        "lr": cfg.lr,
        "epochs": cfg.epochs,
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "dev": result.dev,
        "test": result.test,
        "trainable_params": trainable,
        "total_params": total,
        "trainable_pct": 100.0 * trainable / total,
        "train_examples_per_s": result.train_examples_per_s,
        "history": result.history,
        "base_fingerprint": result.base_fingerprint,
        # the test rows these scores came from (``split_hash``): registration refuses the adapter when
        # the task's test split hashes otherwise now (changed data moves training rows into test)
        **({"test_data_hash": result.test_data_hash} if result.test_data_hash else {}),
        # what else the numbers depend on: the seeds, the rows (the same hashes: the same rows, in order),
        # where it ran (another device or thread count changes the last digits: docs/reproducibility.md)
        # (not "seed": a pipeline's metrics.json names its split seed so, which registration reads)
        "train_seed": cfg.seed,
        "data_seed": cfg.split_seed,
        **({"data_hashes": result.data_hashes} if result.data_hashes else {}),
        "runtime": runtime(result.model),
    }


def runtime(model) -> dict:
    """Where a model ran: its device (a GPU's name too) and torch's CPU threads."""
    device = next(model.parameters()).device
    gpu = {"gpu": torch.cuda.get_device_name(device)} if device.type == "cuda" else {}
    return {"device": str(device)} | gpu | {"torch_threads": torch.get_num_threads()}


def evaluate_adapter(loaded: LoadedAdapter, task: str | None = None, *, seed: int = 0,
                     max_eval: int | None = None, prompt_len: int | None = None, batch_size: int = 128,
                     batch_option: str = "--batch-size", progress: bool = False, test_hash: bool = False,
                     bf16: bool | None = None) -> dict:
    """Dev and test metrics of an adapter on ``task`` (default: its own, as training named it:
    ``own_task``), ``batch_size`` rows scored at a time (``progress``: a bar per split on a
    terminal). The task's label list must be the adapter's. ``test_hash``: also the test rows'
    ``split_hash`` (``test_data_hash``, as metrics.json records it). ``bf16``: autocast on CUDA; None:
    as the adapter was trained (``ptv2_core.precision``)."""
    spec, data = load_task(task or own_task(loaded.config), seed=seed, max_eval=max_eval, max_train=1)
    check_adapter_labels(spec, loaded.spec)
    device = next(loaded.model.parameters()).device
    collator = Collator(loaded.tokenizer, loaded.spec)
    # "score" is the given task's metric, as "metric" says (the adapter's own could be another)
    scoring = replace(loaded.spec, metric=spec.metric)
    out = {"task": spec.name, "metric": spec.metric}
    for split in ("dev", "test"):
        enc = encode(data[split], loaded.tokenizer, loaded.spec, loaded.spec.max_length)
        out[split] = evaluate(loaded.model, enc, scoring, collator, device, batch_size, prompt_len=prompt_len,
                              bf16=scoring_bf16(loaded.config, bf16), batch_option=batch_option,
                              progress=f"score {split}" if progress else None)
    if test_hash:
        out["test_data_hash"] = split_hash(spec, data["test"])
    return out
