"""Step: pre-train one shared deep prompt on every prepared task (nested lengths), or, when no
later step will start from it, write a "no prompt" marker instead (``skip_pretraining``)."""
from __future__ import annotations

import json
from pathlib import Path

from components.data import task_yaml
from components.epoch_lines import epoch_lines


def pretrain_prompt(prepared_dir: str | Path, tasks: list[str], out_dir: str | Path, *, model: str = "minilm",
                    lengths: list[int], epochs: int = 1, lr: float = 1e-2, seed: int = 0,
                    batch_size: int = 32, mlflow_uri: str | None = None, plot_out: str | Path | None = None,
                    use_pretrained: bool = True) -> dict:
    """Pre-train on the prepared splits of ``tasks``; writes the pre-trained prompt artifact
    into ``out_dir``, logs the run to MLflow (experiment ``ptv2-pretrain``), writes the curves
    as an HTML page to ``plot_out``, and returns the per-length dev scores and the run id.

    ``use_pretrained`` False (the pipeline's ``use_pretrained_prompt``): no later step starts from
    the prompt, so nothing is trained or logged; ``skip_pretraining`` writes its marker instead."""
    if not use_pretrained:
        return skip_pretraining(out_dir, plot_out)
    from components.pretrain_tracking import curves_html, log_pretraining
    from components.step_device import step_device
    from ptv2_core.multitask import PretrainConfig, pretrain

    refs = tuple(str(task_yaml(prepared_dir, t)) for t in tasks)
    cfg = PretrainConfig(tasks=refs, model=model, max_prompt_len=max(lengths), lengths=tuple(sorted(lengths)),
                         lr=lr, epochs=epochs, seed=seed, batch_size=batch_size, progress=False,
                         device=step_device())
    result = pretrain(cfg, out_dir, report=epoch_lines("pretrain", epochs, "dev_mean_score", "mean dev score"),
                      overwrite=True)
    run_id = log_pretraining(out_dir, mlflow_uri)
    if plot_out is not None:
        Path(plot_out).parent.mkdir(parents=True, exist_ok=True)
        Path(plot_out).write_text(curves_html(out_dir))
    return {"dev_scores": result.dev, "metrics": flat_scores(result.dev), "run_id": run_id, "skipped": False}


NO_PROMPT = "no_prompt.json"  # the marker of a skipped pre-training
SKIP_REASON = "use_pretrained_prompt is false: no step starts from a pre-trained prompt"


def skip_pretraining(out_dir: str | Path, plot_out: str | Path | None = None) -> dict:
    """The step's outputs when pre-training is not wanted: ``out_dir`` holds only ``no_prompt.json``
    (an artifact Kubeflow can store and hand on, which the later steps do not read; without
    ``prompt_config.json`` nothing loads it as a pre-trained prompt; its ``reason`` says why), ``plot_out`` a
    page saying so. Says it in one ``ptv2 ▸`` line (the step's log and ``ptv2 run``'s console)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / NO_PROMPT).write_text(json.dumps({"format": "ptv2-no-prompt", "skipped": True, "reason": SKIP_REASON},
                                            indent=2) + "\n")
    if plot_out is not None:
        Path(plot_out).parent.mkdir(parents=True, exist_ok=True)
        Path(plot_out).write_text(f"<html><body>pre-training skipped: {SKIP_REASON}</body></html>")
    print(f"ptv2 ▸ pretrain: skipped ({SKIP_REASON})", flush=True)
    return {"dev_scores": {}, "metrics": {}, "run_id": "", "skipped": True}


def flat_scores(scores: dict, prefix: str = "dev") -> dict[str, float]:
    """``{task: {length: score}}`` → ``{"dev_<task>_<length>": score}`` for KFP Metrics."""
    out: dict[str, float] = {}
    for key, value in scores.items():
        if isinstance(value, dict):
            out |= flat_scores(value, f"{prefix}_{key}")
        elif isinstance(value, (int, float)):
            out[f"{prefix}_{key}"] = float(value)
    return out
