"""What the task-loading tests (tests/test_task_*.py) share: a task YAML beside one train file,
the message a load is refused with, and a small two-label sequence data set."""
from __future__ import annotations

import json

import pytest

from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks import load_task

# twelve rows, six of each label: enough to infer both labels and carve dev and test from train
ROWS = [(f"hello there {i}", "greet") for i in range(6)] + [(f"see you {i}", "bye") for i in range(6)]


def csv_rows(rows, sep: str = ",") -> str:
    """``rows`` of (text, label) as CSV lines, no header line."""
    return "".join(f"{t}{sep}{y}\n" for t, y in rows)


def jsonl_rows(records) -> str:
    """``records`` (JSON values) as JSON Lines, one a line."""
    return "".join(json.dumps(r) + "\n" for r in records)


def write_task(tmp_path, data: bytes | str, name: str = "train.csv", kind: str = "sequence", extra: str = ""):
    """``data`` (bytes as they are, or text) as the train file ``name`` in ``tmp_path``, and beside
    it the task YAML ``task.yaml`` of task 't' of type ``kind`` naming it, with the lines ``extra``
    (each ending in a newline) before ``data:``; returns the YAML's path."""
    if isinstance(data, bytes):
        (tmp_path / name).write_bytes(data)
    else:
        (tmp_path / name).write_text(data)
    path = tmp_path / "task.yaml"
    path.write_text(f"name: t\ntype: {kind}\n{extra}data: {{train: {name}}}\n")
    return path


def refused(path) -> str:
    """The message ``load_task`` refuses the task file ``path`` with (it must refuse it)."""
    with pytest.raises(Ptv2Error) as e:
        load_task(str(path))
    return str(e.value)
