"""Checking a search request before anything is written: task, model, space, budget, storage,
pre-trained prompt, output folder. The result is a ``SearchPlan``; bad input is a Ptv2Error."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks import PACKAGED_TASKS
from optuna_studies import settings
from optuna_studies.output import check_out, work_dir
from optuna_studies.space import SearchSpace, load_space
from optuna_studies.study import check_storage_url, default_study_name


@dataclass(frozen=True)
class SearchPlan:
    """A checked search: what every trial shares (``constants``) and where things go."""

    task: str          # as trials receive it (a task file as an absolute path)
    task_name: str
    model: str         # as trials receive it (a model folder as an absolute path)
    space: SearchSpace
    storage: str
    study_name: str
    out_dir: Path
    work: Path
    init: str | None
    cpus_per_trial: float
    gpus_per_trial: float
    concurrency: int
    constants: dict[str, Any]


def plan_search(task: str, model: str, out_dir: str | Path, *, trials: int | None, space: str | Path | None,
                storage: str | None, init: str | Path | None, max_train: int | None, max_eval: int | None,
                epochs: int | None, concurrency: int, cpus_per_trial: float, gpus_per_trial: float,
                overwrite: bool, study_name: str | None, seed: int) -> SearchPlan:
    """Validate a search request (reads files, writes nothing)."""
    task_ref, task_name = check_task(task)
    model_ref = check_model(model)
    for name, value, least in (("trials", trials, 1), ("epochs", epochs, 1), ("max-train", max_train, 1),
                               ("max-eval", max_eval, 1), ("concurrency", concurrency, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise Ptv2Error(f"--{name} must be an integer >= {least}, got {value!r}")
    if cpus_per_trial <= 0 or gpus_per_trial < 0:
        raise Ptv2Error(f"--cpus-per-trial must be > 0 and --gpus-per-trial >= 0, got {cpus_per_trial}, {gpus_per_trial}")
    spc = load_space(task, space).with_overrides(trials=trials, epochs=epochs)
    init_dir = check_init(init, spc) if init is not None else None
    spc = spc.for_start(warm=init_dir is not None)
    out = Path(out_dir).resolve()
    check_out(out, overwrite)
    if storage is not None:
        check_storage_url(storage)
    url = check_storage_url(settings.optuna_storage(storage))  # the default creates PTV2_HOME: last
    constants = dict(spc.fixed) | {
        "task": task_ref, "model": model_ref, "epochs": spc.epochs, "max_train": max_train, "max_eval": max_eval,
        "seed": seed, "device": "cpu" if gpus_per_trial == 0 else "auto", "metric": spc.metric, "mode": spc.mode,
        "init": init_dir,
    }
    return SearchPlan(task_ref, task_name, model_ref, spc, url, study_name or default_study_name(task_name, model, out),
                      out, work_dir(out), init_dir, cpus_per_trial, gpus_per_trial, concurrency, constants)


def check_task(task: str) -> tuple[str, str]:
    """``(reference for trials, display name)``; unknown tasks and bad task files are errors."""
    if task in PACKAGED_TASKS or task.startswith("hub:"):
        return task, task
    path = Path(task)
    if path.is_file() or task.lower().endswith((".yaml", ".yml")):
        from ptv2_core.tasks import load_task_yaml

        spec, _ = load_task_yaml(path)
        return str(path.resolve()), spec.name
    raise Ptv2Error(f"unknown task '{task}': expected one of {', '.join(PACKAGED_TASKS)}, a task YAML file, or hub:<name>")


def check_model(model: str) -> str:
    """A bundled alias, a model folder (made absolute: trials run in their own folders) or a
    hub name; its config must load and be a supported family."""
    from transformers import AutoConfig

    from ptv2_core.backbone import geometry, resolve_model_name

    path = Path(model)
    if not path.is_dir() and (model.startswith((".", "/", "~")) or model.count("/") > 1):
        raise Ptv2Error(f"model folder not found: {model}")
    ref = str(path.resolve()) if path.is_dir() else model
    try:
        geometry(AutoConfig.from_pretrained(resolve_model_name(ref)))
    except (OSError, ValueError) as e:
        if isinstance(e, Ptv2Error):
            raise
        raise Ptv2Error(f"cannot load model '{model}': {str(e).splitlines()[0]}") from None
    return ref


def check_init(init: str | Path, space: SearchSpace) -> str:
    """A finished pre-trained prompt folder long enough for every length of the space."""
    from ptv2_core.multitask import read_pretrained_config

    config = read_pretrained_config(init)
    longest = int(config.get("prompt", {}).get("prompt_len", 0) or 0)
    if longest and max(space.prompt_lens) > longest:
        raise Ptv2Error(f"the pre-trained prompt in '{init}' has {longest} positions, but the search space tries "
                        f"prompt lengths up to {max(space.prompt_lens)}; use a space with lengths <= {longest}")
    return str(Path(init).resolve())
