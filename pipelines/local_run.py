"""Run the compiled-from-code pipeline on this machine with kfp.local (no container engine).

Components run as subprocesses of this Python (``SubprocessRunner(use_venv=False)``), on the
embedded defaults: local Ray, sqlite Optuna storage, sqlite MLflow under ``$PTV2_HOME``.
"""
from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from optuna_studies import settings
from pipelines.kfp_local_guard import kfp_local_guard
from pipelines.progress import ANSI, ProgressFilter, log_path, run_id


def init_local_stores(params: dict) -> None:
    """Create the local MLflow and Optuna schemas up front, before the pipeline's parallel branches
    open them (each would also create them safely: ``optuna_studies/schema_race.py``)."""
    from optuna_studies.study import open_storage
    from optuna_studies.tracking_setup import open_local_store

    open_local_store(settings.mlflow_tracking_uri(params.get("mlflow_uri") or None))
    storage = settings.optuna_storage(params.get("optuna_storage") or None)
    if storage.startswith("sqlite:"):
        open_storage(storage)


@contextlib.contextmanager
def shared_local_ray(params: dict) -> Iterator[str | None]:
    """One local Ray for the whole run, so parallel tasks' trials share this machine's CPUs
    instead of each branch starting a cluster of its own. Not started when a cluster is given."""
    if settings.ray_address(params.get("ray_address") or None):
        yield None
        return
    import ray

    from optuna_studies.ray_session import ray_session

    with ray_session(None):  # no address given: the same local Ray a search starts, stopped at the end
        address = ray.get_runtime_context().gcs_address
        os.environ["RAY_ADDRESS"] = address
        try:
            yield address
        finally:
            os.environ.pop("RAY_ADDRESS", None)


def needs_hub(params: dict) -> bool:
    """Whether the run fetches from the Hugging Face hub: a ``hub:<dataset>`` task, or a model that
    is neither a bundled alias nor a folder here (a hub name). Otherwise ``run_local`` turns the hub
    off for its steps (``HF_HUB_OFFLINE=1``, unless the environment sets it)."""
    from ptv2_core.backbone import ALIASES
    from ptv2_core.tasks import task_ref_kind

    model = params.get("model") or "minilm"
    local_model = model in ALIASES or Path(model).expanduser().is_dir()
    return not local_model or any(task_ref_kind(t) == "hub" for t in params["tasks"])


def run_local(params: dict) -> dict:
    """Run the pipeline; returns ``{"seconds", "root", "log", "pipeline_run"}``. Raises on a failed
    task. The console shows progress lines; the whole kfp.local log goes to ``$PTV2_HOME/logs/``.
    Each run gets its own folder under ``$PTV2_HOME/pipeline-root/``; ``pipeline_run`` is kfp.local's
    name for the run, which the register step tags its versions with (``registry_summary``)."""
    from kfp import local

    from pipelines.pipeline import ptv2_pipeline

    home = settings.home()
    # children inherit these: every component sees the same stores as this process
    os.environ["PTV2_HOME"] = str(home)
    if not needs_hub(params):  # no step then waits on the hub for what this machine has
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    run = run_id()
    root = home / "pipeline-root" / run
    root.mkdir(parents=True, exist_ok=True)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True)
    # expected locally, once per task, and not actionable: the image, display names and the pods' CPU and
    # memory (pipelines/pipeline.py STEP_RESOURCES) are for the cluster
    warnings.filterwarnings("ignore", message=r"Task '.*': settings \[[a-z_', ]*\] have no effect in the current "
                            r"local runner")
    warnings.filterwarnings("ignore", message=r"You may be attemping to run a task that uses custom or non-Python")
    t0 = time.perf_counter()
    init_local_stores(params)
    log = log_path(home, run)
    progress = None
    try:
        with open(log, "w", encoding="utf-8") as f, contextlib.redirect_stdout(progress := ProgressFilter(f)):
            with shared_local_ray(params), kfp_local_guard():
                ptv2_pipeline(**params)
    except KeyboardInterrupt:  # Ctrl-C reaches every step's process too: the running step fails, the run stops
        from ptv2_core.errors import Ptv2Interrupted

        raise Ptv2Interrupted(f"interrupted; the steps that had finished are kept (outputs under {root}, runs and "
                              f"versions in MLflow); a new `ptv2 run` starts again from the first step. Full log: {log}") from None
    except RuntimeError as e:  # kfp.local: "Pipeline ... finished with status FAILURE. Inner task failed: ..."
        from ptv2_core.errors import Ptv2RunError

        msg = ANSI.sub("", str(e)).strip()
        said = progress.step_error if progress is not None else None  # why, from the step's own output
        said = f" The step's error: {said.rstrip('.')}." if said else ""
        raise Ptv2RunError(f"{msg}{said} Full log: {log}") from None
    made = [p.name for p in root.iterdir() if p.is_dir()]  # kfp.local's folder for the run, named as the run
    return {"seconds": time.perf_counter() - t0, "root": str(root), "log": str(log),
            "pipeline_run": made[0] if len(made) == 1 else None}


def registry_summary(params: dict, pipeline_run: str | None = None) -> list[dict]:
    """Per task: the version this run registered (tag ``pipeline_run``; without one, the newest
    version), its search result, test metric, aliases and the promote step's decision with its
    reason. Another run registering at the same time does not take this run's row."""
    from components.registry import store
    from components.registry.names import NAME_PREFIX, default_name, name_filter
    from ptv2_core.tasks import task_name

    client = store.client(store.tracking_uri(params.get("mlflow_uri") or None))
    rows = []
    for ref in params["tasks"]:
        task = task_name(ref)  # a task YAML path → its name, as the register step names the model
        name = default_name(task, params["registered_model_prefix"] or NAME_PREFIX)
        versions = client.search_model_versions(name_filter(name))
        if pipeline_run:
            versions = [v for v in versions if (v.tags or {}).get("pipeline_run") == pipeline_run]
        if not versions:
            rows.append({"task": task, "model": name, "version": "-"})
            continue
        mv = max(versions, key=lambda v: int(v.version))
        mv = client.get_model_version(name, mv.version)  # search results omit aliases
        tags = mv.tags
        rows.append({
            "task": task, "model": name, "version": mv.version,
            "prompt_len": tags.get("prompt_len", "?"), "lr": tags.get("lr", "?"),
            "metric": tags.get("metric", "?"), "test": tags.get("test_score", "?"),
            "aliases": ",".join(sorted(mv.aliases)) or "-",
            # the promote step's decision and why (absent when auto_promote is off)
            "decision": tags.get("promotion.decision", ""), "reason": tags.get("promotion.reason", ""),
        })
    return rows
