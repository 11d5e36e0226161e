"""Step: pre-train one shared deep prompt on every prepared task (nested lengths)."""
from __future__ import annotations

from pathlib import Path

from components.data import task_yaml


def pretrain_prompt(prepared_dir: str | Path, tasks: list[str], out_dir: str | Path, *, model: str = "minilm",
                    lengths: list[int], epochs: int = 1, lr: float = 1e-2, seed: int = 0,
                    batch_size: int = 32) -> dict:
    """Pre-train on the prepared splits of ``tasks``; writes the pre-trained prompt artifact
    into ``out_dir`` and returns its per-length dev scores."""
    from ptv2_core.multitask import PretrainConfig, pretrain

    refs = tuple(str(task_yaml(prepared_dir, t)) for t in tasks)
    cfg = PretrainConfig(tasks=refs, model=model, max_prompt_len=max(lengths), lengths=tuple(sorted(lengths)),
                         lr=lr, epochs=epochs, seed=seed, batch_size=batch_size, progress=False)
    result = pretrain(cfg, out_dir, overwrite=True)
    return {"dev_scores": result.dev, "metrics": flat_scores(result.dev)}


def flat_scores(scores: dict, prefix: str = "dev") -> dict[str, float]:
    """``{task: {length: score}}`` → ``{"dev_<task>_<length>": score}`` for KFP Metrics."""
    out: dict[str, float] = {}
    for key, value in scores.items():
        if isinstance(value, dict):
            out |= flat_scores(value, f"{prefix}_{key}")
        elif isinstance(value, (int, float)):
            out[f"{prefix}_{key}"] = float(value)
    return out
