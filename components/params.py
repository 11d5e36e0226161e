"""The pipeline's parameters checked as a whole, before any step does work.

``ptv2 run`` and ``ptv2 submit`` check them here before they start anything (pipelines/profiles.py),
and the pipeline's first step (``check_params_op``) checks them again in the cluster, where a run
started from the Kubeflow UI takes whatever was typed into the run form: a mistyped task, a
learning-rate range upside down or a registered model prefix MLflow cannot filter then fails the
run at once with one line naming the parameter, not a step minutes or hours later (the register
step used to refuse a bad prefix after the whole search). That step also tries the MLflow server
and the Ray cluster the steps will use (``check_services``).
"""
from __future__ import annotations

import math

from ptv2_core.errors import Ptv2Error

# every pipeline parameter by its type, as ptv2_pipeline declares it (tests/test_pipeline_params.py
# holds the lists to the signature): the only type check, for `ptv2 run`/`submit` and in the pod
POSITIVE = ("trials_per_task", "epochs", "search_concurrency", "pretrain_epochs")
AT_LEAST_ZERO = {"final_epochs": "0 (the search's best adapter)", "max_train": "0 (all rows)",
                 "max_eval": "0 (all rows)"}
INTEGERS = (*POSITIVE, *AT_LEAST_ZERO, "seed")
NUMBERS = ("lr_min", "lr_max", "cpus_per_trial", "gpus_per_trial", "promotion_margin")
BOOLEANS = ("use_pretrained_prompt", "auto_promote")
STRINGS = ("model", "registered_model_prefix", "mlflow_uri", "ray_address", "optuna_storage")
LISTS = ("tasks", "prompt_lengths")  # each checked with its items below


def whole(key: str, value) -> int:
    """``value`` as an int when it is a whole number (Kubeflow may hand an integer parameter over
    as ``3.0``); a fraction, a bool or a text is refused, naming ``key``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Ptv2Error(f"{key} must be an integer, got {value!r}")
    return value


def number(key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Ptv2Error(f"{key} must be a finite number, got {value!r}")
    return float(value)


def check_params(p: dict, *, files_here: bool, steps_here: bool | None = None) -> dict:
    """``p`` (every pipeline parameter) checked, whole numbers as ints and numbers as floats;
    Ptv2Error naming the first wrong one. ``files_here``: task YAML paths name files on this
    machine, which are read now (``ptv2 run``, and the pipeline's first step in its image); a run
    submitted to a cluster reads its paths there. ``steps_here`` (default: ``files_here``): the
    steps run on this machine (``ptv2 run``), so a sqlite study file's folder must exist here;
    otherwise (``ptv2 submit``, the first step, whose pod lacks the volume the search step mounts)
    the study storage URL is checked by its form alone. Loads no model and connects to nothing."""
    from ptv2_core.settings import check_seed
    from ptv2_core.tasks import load_task_yaml, task_ref_kind

    p = dict(p) | {k: whole(k, p[k]) for k in INTEGERS} | {k: number(k, p[k]) for k in NUMBERS}
    for key in BOOLEANS:
        if not isinstance(p[key], bool):
            raise Ptv2Error(f"{key} must be true or false, got {p[key]!r}")
    for key in STRINGS:
        if not isinstance(p[key], str):
            raise Ptv2Error(f"{key} must be a string, got {p[key]!r}")
    tasks = p["tasks"]
    if not tasks or not isinstance(tasks, list) or not all(isinstance(t, str) and t for t in tasks):
        raise Ptv2Error(f"tasks must be a non-empty list of task names, got {tasks!r}")
    twice = sorted({t for t in tasks if tasks.count(t) > 1})
    if twice:
        raise Ptv2Error(f"tasks listed twice: {', '.join(twice)}")
    for t in tasks:
        if task_ref_kind(t, must_exist=files_here) == "file" and files_here:
            load_task_yaml(t)  # a bad task file (its name: too) is refused now, not in the prepare step
    check_model_names(tasks, p["registered_model_prefix"], files_here)
    lengths = p["prompt_lengths"]
    if isinstance(lengths, list):  # a list parameter's numbers reach a step as floats (JSON): 8.0
        lengths = [int(x) if isinstance(x, float) and x.is_integer() else x for x in lengths]
    if not isinstance(lengths, list) or not lengths or \
            not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in lengths):
        raise Ptv2Error(f"prompt_lengths must be positive integers, got {p['prompt_lengths']}")
    p["prompt_lengths"] = lengths
    if len(set(lengths)) != len(lengths):
        raise Ptv2Error(f"prompt_lengths lists a length twice: {lengths}")
    for key in POSITIVE:
        if key == "pretrain_epochs" and not p["use_pretrained_prompt"]:  # unused then: 0 ("no pre-training") is fine
            if p[key] < 0:
                raise Ptv2Error("pretrain_epochs must be 0 or a positive integer (pre-training is skipped: "
                                f"use_pretrained_prompt is false), got {p[key]!r}")
        elif p[key] <= 0:
            raise Ptv2Error(f"{key} must be a positive integer, got {p[key]!r}")
    for key, zero in AT_LEAST_ZERO.items():
        if p[key] < 0:
            raise Ptv2Error(f"{key} must be {zero} or a positive integer, got {p[key]!r}")
    if not p["cpus_per_trial"] > 0:
        raise Ptv2Error(f"cpus_per_trial must be > 0, got {p['cpus_per_trial']!r}")
    if p["gpus_per_trial"] < 0:
        raise Ptv2Error(f"gpus_per_trial must be >= 0, got {p['gpus_per_trial']!r}")
    from optuna_studies.capacity import check_gpus_per_trial  # light: no Ray, no torch

    check_gpus_per_trial(p["gpus_per_trial"], "gpus_per_trial")
    check_seed(p["seed"])
    if not 0 < p["lr_min"] <= p["lr_max"]:
        raise Ptv2Error(f"need 0 < lr_min <= lr_max, got {p['lr_min']} and {p['lr_max']}")
    if p["promotion_margin"] < 0:
        raise Ptv2Error(f"promotion_margin must be >= 0 score points, got {p['promotion_margin']}")
    if not p["model"].strip():
        raise Ptv2Error("model must name a base model: 'minilm', a folder or a hub name")
    from ptv2_core.model_ref import split_model_ref  # light: text only

    split_model_ref(p["model"])  # an empty @revision, or one on an alias or a folder: refused before any step
    if p["optuna_storage"]:  # a sqlite file's folder is looked for only where the steps run
        from optuna_studies.study import check_storage_url

        check_storage_url(p["optuna_storage"], folder_here=files_here if steps_here is None else steps_here)
    if p["mlflow_uri"]:
        from optuna_studies.tracking_setup import check_tracking_uri

        check_tracking_uri(p["mlflow_uri"])
    return p


def check_model_names(tasks: list[str], prefix: str, files_here: bool) -> None:
    """Each task's registered model name (the prefix plus the task's name: a task YAML's ``name:``,
    read when ``files_here``) must be one the register step can write and list, and be no other
    task's: two references of one name (``trec`` and a YAML named ``trec``) are refused here, not
    in the prepare step, and so are two names of one registered model (``hub:a/b`` and ``a-b``)."""
    from components.registry.names import NAME_PREFIX, check_name, default_name
    from ptv2_core.tasks import task_name, task_ref_kind

    names: dict[str, str] = {}
    models: dict[str, str] = {}
    for t in tasks:
        known = files_here or task_ref_kind(t) != "file"  # a file in the cluster is read there
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


def check_services(p: dict) -> None:
    """The MLflow store and the Ray cluster the steps will use (the parameter, else the environment:
    a pod's ConfigMap) answer. Only tried, nothing opened or written: a down MLflow server failed the
    pre-training step as it logged its finished run, a down Ray head the search, after the data
    were prepared and the prompt pre-trained."""
    from optuna_studies import settings
    from optuna_studies.ray_session import check_answers
    from optuna_studies.tracking_setup import check_reachable

    check_reachable(p["mlflow_uri"] or None, given_by="the mlflow_uri parameter")
    ray = settings.ray_address(p["ray_address"] or None)
    if ray:
        check_answers(ray, given_by="the ray_address parameter")
