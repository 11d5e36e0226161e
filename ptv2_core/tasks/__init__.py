"""Tasks and data: what a task is (``TaskSpec``) and where its train/dev/test rows come from.

``load_task`` accepts a packaged task name, a task YAML file, or ``hub:<name>[:<config>]``.
"""
from __future__ import annotations

from pathlib import Path

from datasets import DatasetDict

from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks.spec import DataSource, TaskSpec, load_task_yaml
from ptv2_core.tasks.splits import finalize

PACKAGED_TASKS = ("trec", "rt", "wnut16", "bbc")

__all__ = ["PACKAGED_TASKS", "DataSource", "TaskSpec", "load_task", "load_task_yaml"]


def load_task(
    name_or_path: str,
    *,
    seed: int = 0,
    max_train: int | None = None,
    max_eval: int | None = None,
) -> tuple[TaskSpec, DatasetDict]:
    """The task's spec and its ``train``/``dev``/``test`` splits, normalized and seeded.

    Columns: sequence tasks ``text`` (str), ``label`` (int index into ``spec.labels``); token
    tasks ``tokens`` (list[str]), ``tags`` (list[int]). Same seed → identical splits in any
    process. ``max_train`` keeps a seeded random subset of train, ``max_eval`` of dev and test.
    """
    ref = str(name_or_path)
    if ref in PACKAGED_TASKS:
        from ptv2_core.tasks.packaged import load_packaged

        spec, dd = load_packaged(ref, seed)
    elif ref.startswith("hub:"):
        from ptv2_core.tasks.hub import load_hub

        spec, dd = load_hub(ref[len("hub:") :], seed)
    elif ref.lower().endswith((".yaml", ".yml")) or Path(ref).is_file():
        from ptv2_core.tasks.files import load_source

        spec, source = load_task_yaml(ref)
        dd = load_source(spec, source, seed)
    else:
        raise Ptv2Error(
            f"unknown task '{ref}': expected one of {', '.join(PACKAGED_TASKS)}, a task YAML file, or hub:<name>"
        )
    return spec, finalize(dd, seed, max_train, max_eval)
