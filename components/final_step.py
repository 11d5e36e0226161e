"""Step: train the search's best configuration on the task's prepared splits, test it, save it."""
from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from components.data import prepared_name, task_yaml


def final_train(prepared_dir: str | Path, task: str, best_config: dict, out_dir: str | Path, *,
                model: str = "minilm", epochs: int | None = None, init_dir: str | Path | None = None,
                seed: int = 0, study: str = "") -> dict:
    """Retrain ``best_config`` (``prompt_len``, ``lr``) from scratch (or from the pre-trained
    prompt), keep the best dev epoch, score the test split; write the adapter with its
    ``metrics.json`` into ``out_dir``. Returns the metrics document."""
    from ptv2_core.adapter import save_adapter
    from ptv2_core.report import metrics_document
    from ptv2_core.train import TrainConfig, train

    manifest = json.loads((Path(prepared_dir) / "manifest.json").read_text())
    task = prepared_name(prepared_dir, task)  # a task YAML path → the task's name
    cfg = TrainConfig(task=str(task_yaml(prepared_dir, task)), model=model, prompt_len=int(best_config["prompt_len"]),
                      lr=float(best_config["lr"]), epochs=int(epochs or best_config.get("epochs", 3)),
                      seed=seed, progress=False)
    init = None
    if init_dir:
        from ptv2_core.multitask import init_from_pretrained

        init = partial(init_from_pretrained, pretrained_dir=init_dir, task=task, seed=seed)
    result = train(cfg, init=init)
    doc = metrics_document(result, cfg) | {
        "data_hash": manifest["tasks"][task]["hash"],  # every split
        "test_data_hash": manifest["tasks"][task]["split_hashes"]["test"],  # the registry's data_hash tag
        # how the prepared splits were drawn: load_task(task, seed, max_eval) gives the same test rows
        "seed": manifest["seed"],
        "max_eval": manifest["max_eval"],
        "study": study,
        "init": str(init_dir or ""),
    }
    save_adapter(result.model, out_dir, result.spec, model, result.base_fingerprint,
                 extra={"train_config": cfg.to_dict(), "data_hash": doc["data_hash"]},
                 files={"metrics.json": json.dumps(doc, indent=2) + "\n"})
    return doc
