"""Compile the pipeline to Kubeflow Pipelines YAML and submit it to a KFP endpoint."""
from __future__ import annotations

from pathlib import Path

from pipelines.pipeline import ptv2_pipeline


def compile_pipeline(out: str | Path) -> Path:
    """Write the pipeline spec YAML (deterministic: same code, same bytes)."""
    from kfp import compiler

    from ptv2_core.adapter import check_writable
    from ptv2_core.errors import Ptv2Error

    out = Path(out)
    if out.is_dir():
        raise Ptv2Error(f"--out '{out}' is a folder: name the YAML file to write")
    check_writable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(ptv2_pipeline, str(out))
    return out


def submit(host: str, params: dict, *, experiment: str = "ptv2", run_name: str | None = None,
           namespace: str | None = None) -> str:
    """Start a run on a Kubeflow Pipelines endpoint; returns the run id. Authentication comes
    from the environment kfp.Client reads (e.g. KF_PIPELINES_SA_TOKEN_PATH), never from code."""
    import kfp

    client = kfp.Client(host=host, namespace=namespace)
    run = client.create_run_from_pipeline_func(ptv2_pipeline, arguments=params, experiment_name=experiment,
                                               run_name=run_name)
    return run.run_id
