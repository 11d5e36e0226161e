"""Prepare data: freeze each task's seeded splits as files, so every later step (and every
trial, on any node) trains and tests on exactly the same rows.

Layout of the prepared folder (a Kubeflow ``Dataset`` artifact)::

    manifest.json              {"seed", "tasks": {name: {"yaml", "hash", "rows"}}}
    <task>/task.yaml           a user task YAML (see docs/tasks.md) naming the files below
    <task>/{train,dev,test}.parquet
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from ptv2_core.tasks import load_task
from ptv2_core.tasks.splits import split_hash

SPLITS = ("train", "dev", "test")


def _frame(split, spec) -> pd.DataFrame:
    """Rows with string labels (the task YAML format), in split order. Each column is read at once
    (``[:]``): iterating a datasets Column reads it row by row."""
    if spec.type == "sequence":
        return pd.DataFrame({"text": split["text"][:], "label": [spec.labels[i] for i in split["label"][:]]})
    return pd.DataFrame({"tokens": split["tokens"][:], "tags": [[spec.labels[i] for i in t] for t in split["tags"][:]]})


def data_hash(split_hashes: dict[str, str]) -> str:
    """SHA-256 over the per-split hashes (``ptv2_core.tasks.splits.split_hash``): identifies the
    exact rows of every split."""
    h = hashlib.sha256()
    for name in SPLITS:
        h.update(f"{name}:{split_hashes[name]}\n".encode())
    return "sha256:" + h.hexdigest()


def prepare_task(task: str, parent: Path, *, seed: int = 0, max_train: int | None = None,
                 max_eval: int | None = None) -> tuple[str, dict]:
    """Write one task's splits and YAML into ``parent/<task name>``; returns the name and
    its manifest entry."""
    spec, data = load_task(task, seed=seed, max_train=max_train, max_eval=max_eval, label_notes=True)
    out_dir = parent / spec.name
    if out_dir.resolve().parent != parent.resolve():  # TaskSpec refuses such names: kept out all the same
        from ptv2_core.errors import Ptv2Error

        raise Ptv2Error(f"task '{task}': its name {spec.name!r} cannot name a folder inside '{parent}'")
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = {name: _frame(data[name], spec) for name in SPLITS}
    for name, frame in frames.items():
        frame.to_parquet(out_dir / f"{name}.parquet", index=False)
    text_col, label_col = ("text", "label") if spec.type == "sequence" else ("tokens", "tags")
    doc = {"name": spec.name, "type": spec.type, "labels": list(spec.labels), "metric": spec.metric,
           "text_column": text_col, "label_column": label_col, "max_length": spec.max_length,
           "data": {name: f"{name}.parquet" for name in SPLITS}}
    (out_dir / "task.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    hashes = {name: split_hash(spec, data[name]) for name in SPLITS}
    return spec.name, {"ref": task, "yaml": f"{spec.name}/task.yaml", "hash": data_hash(hashes),
                       "split_hashes": hashes, "rows": {name: len(f) for name, f in frames.items()},
                       "type": spec.type, "metric": spec.metric}


def prepare_data(tasks: list[str], out_dir: str | Path, *, seed: int = 0, max_train: int | None = None,
                 max_eval: int | None = None) -> dict:
    """Prepare every task into ``out_dir`` (all or nothing). Returns the manifest."""
    out_dir = Path(out_dir)
    if not tasks:
        from ptv2_core.errors import Ptv2Error

        raise Ptv2Error("no tasks given")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".prepare.", dir=out_dir.parent))
    try:
        manifest = {"seed": seed, "max_train": max_train, "max_eval": max_eval, "tasks": {}}
        for task in tasks:
            name, entry = prepare_task(task, tmp, seed=seed, max_train=max_train, max_eval=max_eval)
            if name in manifest["tasks"]:
                from ptv2_core.errors import Ptv2Error

                raise Ptv2Error(f"tasks '{manifest['tasks'][name]['ref']}' and '{task}' are both named '{name}': "
                                "give each task YAML its own name")
            manifest["tasks"][name] = entry
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        out_dir.mkdir(exist_ok=True)
        for item in tmp.iterdir():
            target = out_dir / item.name
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            item.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def prepared_name(prepared_dir: str | Path, task: str) -> str:
    """The name ``task`` has in a prepared folder: ``task`` may be that name or the reference it
    was prepared from (a packaged name, a task YAML path, ``hub:<name>``), as the pipeline's
    per-task steps receive it."""
    return _prepared_entry(prepared_dir, task)[0]


def task_yaml(prepared_dir: str | Path, task: str) -> Path:
    """The task YAML of ``task`` (a name or reference, see ``prepared_name``) inside a prepared folder."""
    return Path(prepared_dir) / _prepared_entry(prepared_dir, task)[1]["yaml"]


def _prepared_entry(prepared_dir: str | Path, task: str) -> tuple[str, dict]:
    """``(name, manifest entry)`` of ``task``, found by name or by reference; one manifest read."""
    entries = json.loads((Path(prepared_dir) / "manifest.json").read_text())["tasks"]
    name = task if task in entries else next((n for n, e in entries.items() if e.get("ref") == task), None)
    if name is None:
        from ptv2_core.errors import Ptv2Error

        raise Ptv2Error(f"task '{task}' is not in the prepared data (has: {', '.join(entries)})")
    return name, entries[name]
