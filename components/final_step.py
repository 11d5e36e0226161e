"""Step: the task's final adapter, tested: the search's best trial's adapter as it is, or the
search's best configuration trained again for a given number of epochs."""
from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from components.data import prepared_name, task_yaml
from components.epoch_lines import epoch_lines
from ptv2_core.errors import Ptv2Error


def final_adapter(prepared_dir: str | Path, task: str, search_adapter: str | Path, best_config: dict,
                  out_dir: str | Path, *, final_epochs: int = 0, model: str = "minilm",
                  init_dir: str | Path | None = None, seed: int = 0, study: str = "") -> dict:
    """``final_epochs`` 0: the search's adapter goes on (``reuse_search_adapter``); N > 0: the best
    configuration is trained again for N epochs (``final_train``). Returns the metrics document."""
    if final_epochs < 0:
        raise Ptv2Error(f"final_epochs must be 0 (the search's adapter) or a positive integer, got {final_epochs}")
    if final_epochs == 0:
        return reuse_search_adapter(prepared_dir, task, search_adapter, out_dir, init_dir=init_dir, study=study)
    return final_train(prepared_dir, task, best_config, out_dir, model=model, epochs=final_epochs,
                       init_dir=init_dir, seed=seed, study=study, lineage=search_lineage(search_adapter))


def search_lineage(search_adapter: str | Path) -> dict[str, str]:
    """The search's MLflow runs its best adapter's metrics.json names (``components.registry.lineage``),
    for the retrained adapter: its configuration is that trial's. Empty when it names none."""
    from components.registry.lineage import recorded

    try:
        return recorded(json.loads((Path(search_adapter) / "metrics.json").read_text()))
    except (OSError, ValueError, AttributeError):  # no lineage to carry on: the retraining itself needs none
        return {}


def started_from(init_dir: str | Path | None) -> dict[str, str]:
    """``ptv2_core.multitask.pretrained.started_from`` (the prompt's absolute folder and its weights'
    digest, as ``ptv2 train --init`` records them); ``{"init": ""}`` without one."""
    from ptv2_core.multitask.pretrained import started_from as recorded

    return recorded(init_dir) or {"init": ""}


def _provenance(prepared_dir: str | Path, task: str, init: dict[str, str] | None, study: str) -> dict:
    """What ``metrics.json`` says of the data and the run beside the scores: the prepared splits'
    hashes and how they were drawn (``load_task(task, seed, max_eval)`` gives the same test rows,
    which the registry scores again when it promotes; ``subset``: how the caps drew them, which the
    trials' own train_config cannot say, as they read the prepared rows uncapped)."""
    from ptv2_core.tasks.subsample import subset_rule

    manifest = json.loads((Path(prepared_dir) / "manifest.json").read_text())
    return {
        "data_hash": manifest["tasks"][task]["hash"],  # every split
        "test_data_hash": manifest["tasks"][task]["split_hashes"]["test"],  # the registry's data_hash tag
        # what the prepared copy was made from: `ptv2 register` and `ptv2 eval` without --task use it
        # where the copy the adapter names is not found (another pod)
        "task_source": manifest["tasks"][task].get("ref", task),
        "seed": manifest["seed"],
        "max_eval": manifest["max_eval"],
        **subset_rule(manifest.get("max_train"), manifest["max_eval"]),
        "study": study,
        **(init or started_from(None)),  # the pre-trained prompt: its folder and its weights' digest
    }


def reuse_search_adapter(prepared_dir: str | Path, task: str, search_adapter: str | Path, out_dir: str | Path, *,
                         init_dir: str | Path | None = None, study: str = "") -> dict:
    """Copy the search's best adapter to ``out_dir``: the search trained it on these splits, kept
    its best dev epoch and scored it on dev and test (its ``metrics.json``); training the same
    configuration again with the same seed would only repeat that work."""
    from ptv2_core.adapter import CONFIG, write_atomic_dir

    task = prepared_name(prepared_dir, task)
    src = Path(search_adapter)
    try:
        doc = json.loads((src / "metrics.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise Ptv2Error(f"the search's adapter '{src}' has no readable metrics.json: {e}") from None
    if not isinstance(doc.get("dev"), dict) or not isinstance(doc.get("test"), dict):
        raise Ptv2Error(f"the search's adapter '{src}' lacks dev and test metrics")
    doc |= _provenance(prepared_dir, task, started_from(init_dir), study) | {"source": "search", "retrained_epochs": 0}
    files = {p.name: p.read_bytes() for p in sorted(src.iterdir()) if p.is_file() and p.name != "metrics.json"}
    write_atomic_dir(Path(out_dir), files | {"metrics.json": json.dumps(doc, indent=2) + "\n"}, marker=CONFIG)
    return doc


# set by the step itself (the prepared task, its model, epochs and seed), or not a training choice
_STEP_SETTINGS = {"task", "model", "prompt_len", "lr", "epochs", "seed", "device", "progress", "patience"}


def retrain_settings(best_config: dict) -> dict:
    """The search's fixed training settings in ``best_config`` (its space's ``fixed:``, such as
    ``reparam``, ``batch_size`` or ``group_by_length``, and its row limits): the retrained
    adapter is the configuration the search scored, not the defaults with its length and lr."""
    from dataclasses import fields

    from ptv2_core.train import TrainConfig

    names = {f.name for f in fields(TrainConfig)} - _STEP_SETTINGS
    return {k: v for k, v in best_config.items() if k in names}


def final_train(prepared_dir: str | Path, task: str, best_config: dict, out_dir: str | Path, *,
                model: str = "minilm", epochs: int | None = None, init_dir: str | Path | None = None,
                seed: int = 0, study: str = "", lineage: dict[str, str] | None = None) -> dict:
    """Retrain ``best_config`` (``prompt_len``, ``lr`` and the search's fixed settings) from
    scratch (or from the pre-trained prompt), keep the best dev epoch, score the test split; write
    the adapter with its ``metrics.json`` into ``out_dir`` (with ``lineage``, the search's runs).
    Returns the metrics document."""
    from components.step_device import step_device
    from ptv2_core.adapter import save_adapter
    from ptv2_core.report import metrics_document
    from ptv2_core.train import TrainConfig, train

    task = prepared_name(prepared_dir, task)  # a task YAML path → the task's name
    cfg = TrainConfig(**retrain_settings(best_config), task=str(task_yaml(prepared_dir, task)), model=model,
                      prompt_len=int(best_config["prompt_len"]), lr=float(best_config["lr"]),
                      epochs=int(epochs or best_config.get("epochs", 3)), seed=seed, progress=False,
                      device=step_device())
    init, begun = None, started_from(init_dir)  # the digest before training: the prompt as it was loaded
    if init_dir:
        from ptv2_core.multitask import init_from_pretrained

        # note: one line in the step's log when the task's head starts fresh (as `ptv2 train --init` says it)
        init = partial(init_from_pretrained, pretrained_dir=init_dir, task=task, seed=seed, note=True)
    result = train(cfg, report=epoch_lines(f"{task}: retraining", cfg.epochs, "dev_score", "dev score"), init=init)
    doc = metrics_document(result, cfg) | _provenance(prepared_dir, task, begun, study) | (lineage or {}) | {
        "source": "retrain", "retrained_epochs": cfg.epochs}
    save_adapter(result.model, out_dir, result.spec, model, result.base_fingerprint,
                 extra={"train_config": cfg.to_dict(), "data_hash": doc["data_hash"]} | (begun if init_dir else {}),
                 files={"metrics.json": json.dumps(doc, indent=2) + "\n"})
    return doc
