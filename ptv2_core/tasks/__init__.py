"""Tasks and data: what a task is (``TaskSpec``) and where its train/dev/test rows come from.

``load_task`` accepts a packaged task name, a task YAML file, or ``hub:<name>[:<config>][@<revision>]``.
"""
from __future__ import annotations

import sys
from pathlib import Path

from datasets import DatasetDict

from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks.spec import DataSource, TaskSpec
from ptv2_core.tasks.task_yaml import load_task_yaml
from ptv2_core.tasks.splits import check_overlap, finalize
from ptv2_core.tasks.unseen import uneven_labels_note, unseen_labels_note

PACKAGED_TASKS = ("trec", "rt", "wnut16", "bbc")
# Their types, known without reading their data (tests check them against the loaded specs).
PACKAGED_TYPES = {"trec": "sequence", "rt": "sequence", "wnut16": "token", "bbc": "sequence"}

__all__ = ["PACKAGED_TASKS", "PACKAGED_TYPES", "DataSource", "TaskSpec", "load_task", "load_task_yaml", "task_name",
           "task_ref_kind", "task_type"]


def load_task(
    name_or_path: str,
    *,
    seed: int = 0,
    max_train: int | None = None,
    max_eval: int | None = None,
    label_notes: bool = False,
) -> tuple[TaskSpec, DatasetDict]:
    """The task's spec and its ``train``/``dev``/``test`` splits, normalized and seeded.

    Columns: sequence tasks ``text`` (str), ``label`` (int index into ``spec.labels``); token
    tasks ``tokens`` (list[str]), ``tags`` (list[int]). Same seed → identical splits in any
    process. ``max_train`` keeps a seeded subset of train, ``max_eval`` of dev and test, stratified
    by label (``ptv2_core.tasks.subsample``). ``label_notes=True`` (training, pre-training, a search's
    plan, the pipeline's data step) prints the notes on uneven and unseen labels, which are about what
    training learns and selects by; readers that score or describe a trained adapter leave them out.
    """
    ref = str(name_or_path)
    kind = task_ref_kind(ref)
    if kind == "packaged":
        from ptv2_core.tasks.packaged import load_packaged

        spec, dd = load_packaged(ref, seed)
    elif kind == "hub":
        from ptv2_core.tasks.hub import load_hub

        spec, dd = load_hub(ref[len("hub:") :], seed)
    else:
        from ptv2_core.tasks.files import load_source

        spec, source = load_task_yaml(ref)
        dd = load_source(spec, source, seed)
        if source.metric_default and label_notes:
            _note_once(uneven_labels_note(spec, dd))
    if kind != "packaged":  # given dev/test splits are used as they are: a copy of train is refused
        _note_once(check_overlap(spec.type, dd, spec.name))
        # a listed label no train row has (only dev or test hold it): on the data, before max_train's subset
        listed = "listed under labels:" if kind == "file" else "a label name of the data set"
        if label_notes:
            _note_once(unseen_labels_note(spec, dd, listed))
    return spec, finalize(dd, seed, max_train, max_eval)


_NOTED: set[str] = set()


def _note_once(note: str | None) -> None:
    """A note on stderr, once per process (a search loads its task in every trial)."""
    if note and note not in _NOTED:
        _NOTED.add(note)
        print(f"note: {note}", file=sys.stderr, flush=True)


def task_ref_kind(ref: str, *, must_exist: bool = False) -> str:
    """What a task reference names: ``"packaged"``, ``"hub"`` or ``"file"`` (a task YAML).

    Reads no data, so a run can refuse a mistyped task before it starts anything. With
    ``must_exist``, a task file must be present on this machine (a run here, not one submitted
    to a cluster whose paths this machine cannot see).
    """
    if ref in PACKAGED_TASKS:
        return "packaged"
    if ref.startswith("hub:"):
        from ptv2_core.tasks.hub import parse_hub_ref

        parse_hub_ref(ref[len("hub:") :])  # a name, and no empty revision
        return "hub"
    if ref.lower().endswith((".yaml", ".yml")) or Path(ref).is_file():
        if must_exist and not Path(ref).is_file():
            raise Ptv2Error(f"task file not found: {ref}")
        return "file"
    raise Ptv2Error(f"unknown task '{ref}': expected one of {', '.join(PACKAGED_TASKS)}, a task YAML file, or hub:<name>")


def absolute_ref(ref: str) -> str:
    """A task YAML's path made absolute, packaged names and ``hub:`` references as they are: an
    adapter, a pre-trained prompt or a registered version records the reference, and a relative
    path names another file, or none, from another folder."""
    if ref in PACKAGED_TASKS or ref.startswith("hub:"):
        return ref
    path = Path(ref).expanduser()
    return str(path.resolve()) if path.is_file() else ref


def task_name(ref: str) -> str:
    """The name a task reference gives its task (``TaskSpec.name``) without loading its rows:
    a packaged name itself, a task YAML's ``name:``, a hub data set's name made a folder name
    (``hub:user/data`` → ``user-data``)."""
    kind = task_ref_kind(ref)
    if kind == "packaged":
        return ref
    if kind == "hub":
        from ptv2_core.tasks.hub import hub_task_name

        return hub_task_name(ref[len("hub:") :])
    return load_task_yaml(ref)[0].name


def task_type(ref: str) -> str | None:
    """``"sequence"`` or ``"token"`` without loading rows: a packaged task's, a task YAML's; None
    for a hub data set (known only once it is fetched)."""
    kind = task_ref_kind(ref)
    if kind == "packaged":
        return PACKAGED_TYPES[ref]
    if kind == "hub":
        return None
    return load_task_yaml(ref)[0].type
