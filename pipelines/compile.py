"""Compile the pipeline to Kubeflow Pipelines YAML (``ptv2 submit`` is pipelines/submit.py)."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from pipelines.pipeline import build_pipeline
from pipelines.step_gpu import DEFAULT_ACCELERATOR, check_step_gpus


def compile_pipeline(out: str | Path, *, step_gpus: int = 0, accelerator: str = DEFAULT_ACCELERATOR) -> Path:
    """Write the pipeline spec YAML (deterministic: same code, same bytes): into a temporary file
    beside ``out``, then renamed over it, so that a compile killed or failing midway leaves the
    previous file (or none) in place, never a part of one. ``step_gpus`` 1: pre-training, the final
    adapter and promotion run on a GPU of resource ``accelerator`` (pipelines/step_gpu.py)."""
    from kfp import compiler

    from ptv2_core.adapter import check_writable
    from ptv2_core.durable import sync
    from ptv2_core.errors import Ptv2Error

    out = Path(out)
    check_step_gpus(step_gpus, accelerator)  # before anything is written
    if out.is_dir():
        raise Ptv2Error(f"--out '{out}' is a folder: name the YAML file to write")
    if not out.name.endswith((".yaml", ".yml")):  # kfp picks the format by the name, and writes YAML only
        raise Ptv2Error(f"--out '{out}' must end in .yaml or .yml: the pipeline is written as YAML")
    check_writable(out, file=True)  # a previous YAML is replaced
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{secrets.token_hex(6)}{out.suffix}")  # the suffix kfp reads
    try:
        compiler.Compiler().compile(build_pipeline(step_gpus, accelerator), str(tmp))
        sync(tmp)
        os.replace(tmp, out)
    except OSError as e:  # no space left, a file too large: named, the temporary file removed
        raise Ptv2Error(f"--out '{out}' cannot be written: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return out
