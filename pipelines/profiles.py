"""Pipeline parameter sets: named profiles, a YAML config file, command-line overrides."""
from __future__ import annotations

import inspect
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


def _checked(p: dict, local: bool) -> dict:
    from components.params import check_params

    p = check_params(p, files_here=local)  # each parameter's type too: a YAML `1` for a float becomes 1.0
    if local and not (p["ray_address"] or os.environ.get("RAY_ADDRESS")):
        # the local Ray offers this machine's GPUs: with none, the search step would fail minutes in
        from optuna_studies.capacity import check_local_gpus

        check_local_gpus(p["cpus_per_trial"], p["gpus_per_trial"], ("gpus_per_trial to 0", "ray_address (RAY_ADDRESS)"))
    if local:  # here, not in the image: the model's config must load and the storage URL parse
        from optuna_studies.plan import check_model

        check_model(p["model"])
        from ptv2_core.backbone import absolute_model_ref

        # a folder by its absolute path: every step's adapter and the registered versions record it as
        # their base model, and `models/tiny` names no folder (or another one) from elsewhere
        p["model"] = absolute_model_ref(p["model"])
    return p


def pin_run_model(params: dict) -> str | None:
    """Pin ``params["model"]``, a hub name, to the commit the hub (or offline, the local cache)
    names now (``ptv2_core.backbone.pin_hub_model``), so that pre-training, every trial and the final
    adapter of this run load one commit however the hub's main moves meanwhile; returns the line
    that says so, or None (an alias, a folder, a name already pinned to a commit). ``ptv2 run``
    calls it after ``resolve_params``; a submitted or compiled run is pinned by its first step, in
    the cluster (components/kfp_components.py ``check_params_op``), where its model folders are."""
    from ptv2_core.backbone import pin_hub_model, split_model_ref

    name = params["model"]
    pinned, sha = pin_hub_model(name)
    if pinned == name:
        return None
    params["model"] = pinned
    return f"model {name}: pinned to commit {sha[:7]} ({split_model_ref(pinned)[0]}@{sha}) for this run"

