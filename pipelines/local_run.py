"""Run the compiled-from-code pipeline on this machine with kfp.local (no container engine).

Components run as subprocesses of this Python (``SubprocessRunner(use_venv=False)``), on the
embedded defaults: local Ray, sqlite Optuna storage, sqlite MLflow under ``$PTV2_HOME``.
"""
from __future__ import annotations

import os
import re
import time

from optuna_studies import settings


def run_local(params: dict) -> dict:
    """Run the pipeline; returns ``{"seconds", "root"}``. Raises on a failed task."""
    from kfp import local

    from pipelines.pipeline import ptv2_pipeline

    home = settings.home()
    # children inherit these: every component sees the same stores as this process
    os.environ["PTV2_HOME"] = str(home)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    root = home / "pipeline-root"
    root.mkdir(parents=True, exist_ok=True)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True)
    t0 = time.perf_counter()
    try:
        ptv2_pipeline(**params)
    except RuntimeError as e:  # kfp.local: "Pipeline ... finished with status FAILURE. Inner task failed: ..."
        from ptv2_core.errors import Ptv2RunError

        msg = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()
        raise Ptv2RunError(f"{msg} Task logs are above; outputs under {root}") from None
    return {"seconds": time.perf_counter() - t0, "root": str(root)}


def registry_summary(params: dict) -> list[dict]:
    """Per task: the newest registered version, its search result, test metric and aliases."""
    from mlflow import MlflowClient

    client = MlflowClient(settings.mlflow_tracking_uri(params.get("mlflow_uri") or None))
    rows = []
    for task in params["tasks"]:
        name = f"{params['registered_model_prefix']}{task}"
        versions = client.search_model_versions(f"name = '{name}'")
        if not versions:
            rows.append({"task": task, "model": name, "version": "-"})
            continue
        mv = max(versions, key=lambda v: int(v.version))
        mv = client.get_model_version(name, mv.version)  # search results omit aliases
        tags = mv.tags
        rows.append({
            "task": task, "model": name, "version": mv.version,
            "prompt_len": tags.get("prompt_len", "?"), "lr": tags.get("lr", "?"),
            "metric": tags.get("metric", "?"), "test": tags.get("test_score", tags.get("test.score", "?")),
            "aliases": ",".join(sorted(mv.aliases)) or "-",
        })
    return rows
