"""Pipeline parameter sets: named profiles, a YAML config file, command-line overrides."""
from __future__ import annotations

import inspect
import math
import os
from pathlib import Path

import yaml

from ptv2_core.errors import Ptv2Error, yaml_problem

# default: the local demo, under 15 minutes on 2 CPU cores; large: all tasks, full data.
PROFILES: dict[str, dict] = {
    "default": dict(tasks=["trec", "rt", "wnut16"], prompt_lengths=[4, 8, 16], trials_per_task=4, epochs=2,
                    search_concurrency=2, pretrain_epochs=1, max_train=400, max_eval=200),
    "large": dict(tasks=["trec", "rt", "wnut16", "bbc"], prompt_lengths=[4, 8, 16, 32, 64, 128],
                  trials_per_task=24, epochs=8, search_concurrency=4, pretrain_epochs=3, max_train=0, max_eval=0),
}


def pipeline_defaults() -> dict:
    """The pipeline function's own parameter defaults (what the Kubeflow UI shows)."""
    from pipelines.pipeline import ptv2_pipeline

    fn = getattr(ptv2_pipeline, "pipeline_func", ptv2_pipeline)
    return {k: p.default for k, p in inspect.signature(fn).parameters.items()}


def resolve_params(profile: str = "default", config: str | Path | None = None, overrides: dict | None = None,
                   *, local: bool = True) -> dict:
    """Pipeline arguments: pipeline defaults < profile < config file < overrides.

    Every task reference is checked before anything runs; with ``local`` (``ptv2 run``), a task
    YAML file must also exist here (a run submitted to a cluster reads its paths there)."""
    if profile not in PROFILES:
        raise Ptv2Error(f"unknown profile '{profile}': expected one of {', '.join(PROFILES)}")
    params = pipeline_defaults() | PROFILES[profile]
    if config is not None:
        path = Path(config)
        if not path.is_file():
            raise Ptv2Error(f"config file '{path}' " + ("is a folder" if path.is_dir() else "does not exist"))
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as e:
            raise Ptv2Error(f"config file '{path}' cannot be read: {e.strerror or e}") from None
        except UnicodeDecodeError:
            raise Ptv2Error(f"config file '{path}' is not UTF-8 text") from None
        except yaml.YAMLError as e:
            raise Ptv2Error(f"config file '{path}' is not valid YAML: {yaml_problem(e)}") from None
        if not isinstance(doc, dict):
            raise Ptv2Error(f"config file '{path}' must be a mapping of pipeline parameters")
        params |= doc
    params |= {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(params) - set(pipeline_defaults()))
    if unknown:
        raise Ptv2Error(f"unknown pipeline parameter(s): {', '.join(unknown)}; known: {', '.join(pipeline_defaults())}")
    return _checked(params, local)


def _typed(p: dict) -> dict:
    """Each parameter as the pipeline declares it (its default's type): a YAML ``1`` for a float
    parameter becomes ``1.0`` (kfp refused it as an integer), anything else of the wrong type is
    refused here rather than as a kfp traceback or a failed step minutes later."""
    kinds = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string", list: "a list"}
    defaults = pipeline_defaults()
    out = {}
    for key, value in p.items():
        want = type(defaults[key])
        ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if want is float and ok and not math.isfinite(value):
            ok = False
        if not ok:
            raise Ptv2Error(f"{key} must be {kinds[want]}, got {value!r}")
        out[key] = value
    return out


def _check_model_names(tasks: list[str], prefix: str, local: bool) -> None:
    """Each task's registered model name (the prefix plus the task's name: a task YAML's ``name:``,
    read here for a local run) must be one the register step can write and list, and be no other
    task's: two references of one name (``trec`` and a YAML named ``trec``) are refused here, not
    in the prepare step, and so are two names of one registered model (``hub:a/b`` and ``a-b``)."""
    from components.registry.register import NAME_PREFIX, check_name, default_name
    from ptv2_core.tasks import task_name, task_ref_kind

    names: dict[str, str] = {}
    models: dict[str, str] = {}
    for t in tasks:
        known = local or task_ref_kind(t) != "file"  # a file in the cluster is read there
        name = task_name(t) if known else "task"  # the prefix alone is checked then
        model = default_name(name, prefix or NAME_PREFIX)
        try:
            check_name(model)
        except Ptv2Error as e:
            raise Ptv2Error(f"registered_model_prefix {prefix!r} with task '{t}': {e}") from None
        if not known:
            continue
        if name in names:
            raise Ptv2Error(f"tasks '{names[name]}' and '{t}' are both named '{name}': give each task YAML its own name")
        if model in models:
            raise Ptv2Error(f"tasks '{models[model]}' and '{t}' would both register versions of '{model}': give "
                            "each task YAML its own name")
        names[name], models[model] = t, t


def _checked(p: dict, local: bool) -> dict:
    from ptv2_core.settings import check_seed
    from ptv2_core.tasks import load_task_yaml, task_ref_kind

    p = _typed(p)
    tasks = p["tasks"]
    if not tasks or not isinstance(tasks, list) or not all(isinstance(t, str) and t for t in tasks):
        raise Ptv2Error(f"tasks must be a non-empty list of task names, got {tasks!r}")
    twice = sorted({t for t in tasks if tasks.count(t) > 1})
    if twice:
        raise Ptv2Error(f"tasks listed twice: {', '.join(twice)}")
    for t in tasks:
        if task_ref_kind(t, must_exist=local) == "file" and local:
            load_task_yaml(t)  # a bad task file (its name: too) is refused now, not in the prepare step
    _check_model_names(tasks, p["registered_model_prefix"], local)
    lengths = p["prompt_lengths"]
    if not lengths or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in lengths):
        raise Ptv2Error(f"prompt_lengths must be positive integers, got {lengths}")
    if len(set(lengths)) != len(lengths):
        raise Ptv2Error(f"prompt_lengths lists a length twice: {lengths}")
    positive = ("trials_per_task", "epochs", "search_concurrency")
    for key in positive + (("pretrain_epochs",) if p["use_pretrained_prompt"] else ()):
        if p[key] <= 0:
            raise Ptv2Error(f"{key} must be a positive integer, got {p[key]!r}")
    if not p["use_pretrained_prompt"] and p["pretrain_epochs"] < 0:  # unused then: 0 ("no pre-training") is fine
        raise Ptv2Error("pretrain_epochs must be 0 or a positive integer (pre-training is skipped: use_pretrained_prompt "
                        f"is false), got {p['pretrain_epochs']!r}")
    if not p["cpus_per_trial"] > 0:
        raise Ptv2Error(f"cpus_per_trial must be > 0, got {p['cpus_per_trial']!r}")
    if p["gpus_per_trial"] < 0:
        raise Ptv2Error(f"gpus_per_trial must be >= 0, got {p['gpus_per_trial']!r}")
    if p["final_epochs"] < 0:
        raise Ptv2Error(f"final_epochs must be 0 (the search's best adapter) or a positive integer, got {p['final_epochs']!r}")
    for key in ("max_train", "max_eval"):
        if p[key] < 0:
            raise Ptv2Error(f"{key} must be 0 (all rows) or a positive integer, got {p[key]!r}")
    check_seed(p["seed"])
    if not 0 < p["lr_min"] <= p["lr_max"]:
        raise Ptv2Error(f"need 0 < lr_min <= lr_max, got {p['lr_min']} and {p['lr_max']}")
    if p["promotion_margin"] < 0:
        raise Ptv2Error(f"promotion_margin must be >= 0 score points, got {p['promotion_margin']}")
    if not p["model"].strip():
        raise Ptv2Error("model must name a base model: 'minilm', a folder or a hub name")
    if local and p["gpus_per_trial"] > 0 and not (p["ray_address"] or os.environ.get("RAY_ADDRESS")):
        import torch  # the local Ray offers this machine's GPUs: with none, the search step would fail minutes in

        if torch.cuda.device_count() == 0:
            raise Ptv2Error(f"gpus_per_trial is {p['gpus_per_trial']:g} but this machine has no GPU for the local "
                            "Ray: set it to 0, or RAY_ADDRESS (ray_address) to run trials on a cluster with GPUs")
    if local:  # here, not in the image: the model's config must load and the storage URL parse
        from optuna_studies.plan import check_model
        from optuna_studies.study import check_storage_url

        check_model(p["model"])
        from ptv2_core.backbone import absolute_model_ref

        # a folder by its absolute path: every step's adapter and the registered versions record it as
        # their base model, and `models/tiny` names no folder (or another one) from elsewhere
        p["model"] = absolute_model_ref(p["model"])
        if p["optuna_storage"]:
            check_storage_url(p["optuna_storage"])
    return p
