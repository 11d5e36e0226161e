"""Pipeline parameter sets: named profiles, a YAML config file, command-line overrides."""
from __future__ import annotations

import inspect
from pathlib import Path

import yaml

from ptv2_core.errors import Ptv2Error

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
            raise Ptv2Error(f"config file '{path}' does not exist")
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise Ptv2Error(f"config file '{path}' is not valid YAML: {str(e).splitlines()[0]}") from None
        if not isinstance(doc, dict):
            raise Ptv2Error(f"config file '{path}' must be a mapping of pipeline parameters")
        params |= doc
    params |= {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(params) - set(pipeline_defaults()))
    if unknown:
        raise Ptv2Error(f"unknown pipeline parameter(s): {', '.join(unknown)}; known: {', '.join(pipeline_defaults())}")
    return _checked(params, local)


def _checked(p: dict, local: bool) -> dict:
    from ptv2_core.tasks import task_ref_kind

    tasks = p["tasks"]
    if not tasks or not isinstance(tasks, list) or not all(isinstance(t, str) and t for t in tasks):
        raise Ptv2Error(f"tasks must be a non-empty list of task names, got {tasks!r}")
    twice = sorted({t for t in tasks if tasks.count(t) > 1})
    if twice:
        raise Ptv2Error(f"tasks listed twice: {', '.join(twice)}")
    for t in tasks:
        task_ref_kind(t, must_exist=local)
    lengths = p["prompt_lengths"]
    if not lengths or not all(isinstance(x, int) and x > 0 for x in lengths):
        raise Ptv2Error(f"prompt_lengths must be positive integers, got {lengths}")
    for key in ("trials_per_task", "epochs", "search_concurrency"):
        if not isinstance(p[key], int) or p[key] <= 0:
            raise Ptv2Error(f"{key} must be a positive integer, got {p[key]!r}")
    if not 0 < p["lr_min"] <= p["lr_max"]:
        raise Ptv2Error(f"need 0 < lr_min <= lr_max, got {p['lr_min']} and {p['lr_max']}")
    return p
