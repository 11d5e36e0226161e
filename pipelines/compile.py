"""Compile the pipeline to Kubeflow Pipelines YAML (``ptv2 submit`` is pipelines/submit.py)."""
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

