"""Step: pre-train one shared deep prompt on every prepared task (nested lengths)."""
from __future__ import annotations

from pathlib import Path

from components.data import task_yaml
from components.epoch_lines import epoch_lines


def pretrain_prompt(prepared_dir: str | Path, tasks: list[str], out_dir: str | Path, *, model: str = "minilm",
                    lengths: list[int], epochs: int = 1, lr: float = 1e-2, seed: int = 0,
                    batch_size: int = 32, mlflow_uri: str | None = None, plot_out: str | Path | None = None) -> dict:
    """Pre-train on the prepared splits of ``tasks``; writes the pre-trained prompt artifact
    into ``out_dir``, logs the run to MLflow (experiment ``ptv2-pretrain``), writes the curves
    as an HTML page to ``plot_out``, and returns the per-length dev scores and the run id."""
    from components.pretrain_tracking import curves_html, log_pretraining
    from ptv2_core.multitask import PretrainConfig, pretrain

    refs = tuple(str(task_yaml(prepared_dir, t)) for t in tasks)
    cfg = PretrainConfig(tasks=refs, model=model, max_prompt_len=max(lengths), lengths=tuple(sorted(lengths)),
                         lr=lr, epochs=epochs, seed=seed, batch_size=batch_size, progress=False)
    result = pretrain(cfg, out_dir, report=epoch_lines("pretrain", epochs, "dev_mean_score", "mean dev score"),
                      overwrite=True)
    run_id = log_pretraining(out_dir, mlflow_uri)
    if plot_out is not None:
        Path(plot_out).parent.mkdir(parents=True, exist_ok=True)
        Path(plot_out).write_text(curves_html(out_dir))
    return {"dev_scores": result.dev, "metrics": flat_scores(result.dev), "run_id": run_id}



def flat_scores(scores: dict, prefix: str = "dev") -> dict[str, float]:
    """``{task: {length: score}}`` → ``{"dev_<task>_<length>": score}`` for KFP Metrics."""
    out: dict[str, float] = {}
    for key, value in scores.items():
        if isinstance(value, dict):
            out |= flat_scores(value, f"{prefix}_{key}")
        elif isinstance(value, (int, float)):
            out[f"{prefix}_{key}"] = float(value)
    return out
