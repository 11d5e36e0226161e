"""What a task is: ``TaskSpec`` (frozen, JSON-able), its name rules, and ``DataSource`` (where a user
task's rows live). Reading the user task YAML that describes one: ``ptv2_core.tasks.task_yaml``."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from ptv2_core.errors import Ptv2Error

TASK_TYPES = ("sequence", "token")
# Primary metrics each task type may select on; compute_metrics returns all of them.
METRICS = {"sequence": ("accuracy", "macro_f1"), "token": ("span_f1", "accuracy")}
DEFAULT_METRIC = {"sequence": "accuracy", "token": "span_f1"}
DATA_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet")
DEFAULT_MAX_LENGTH = 128  # tokens a text is cut to: a task YAML's default, every hub task's
MIN_MAX_LENGTH = 4  # the least max_length a task (or a search space's fixed: max_length) may set
NAME_MAX_BYTES = 200  # a task's folder name (file systems take 255 bytes), with room for prefixes
# what a task name may not hold: it names the task's folder (prepared data) and files
_NOT_IN_NAMES = re.compile(r"[/\\\x00-\x1f\x7f]")


def check_task_name(name) -> str:
    """``name`` if it can name the task's folder and files as it is; a ``Ptv2Error`` otherwise
    (``../x`` or ``/tmp/x`` put the prepared splits outside the output folder)."""
    if not isinstance(name, str) or not name.strip():
        raise Ptv2Error(f"task name must be a non-empty string, got {name!r}")
    if _NOT_IN_NAMES.search(name) or name.startswith("."):
        raise Ptv2Error(f"task name {name!r} cannot name a folder: it names the task's prepared folder and files, so "
                        "it must not hold '/', '\\' or control characters, nor start with '.'")
    if len(name.encode("utf-8")) > NAME_MAX_BYTES:
        raise Ptv2Error(f"task name {name[:40]!r}... is too long: {len(name.encode('utf-8'))} bytes in UTF-8, at most "
                        f"{NAME_MAX_BYTES} (it names a folder)")
    return name


def safe_task_name(text: str) -> str:
    """``text`` (a hub data set's name, a local data folder's path) made a task name: each run of
    '/', '\\' and control characters becomes '-', leading '.' and '-' and trailing '-' go
    (``user/data`` → ``user-data``, as its registered model ``ptv2-user-data`` is named)."""
    return re.sub(f"{_NOT_IN_NAMES.pattern}+", "-", text).lstrip(".-").rstrip("-")


def stored_task_name(name):
    """A task name as recorded before task names had to be plain folder names (an adapter's or a
    prompt's config, a registered model's ``task`` tag), as such a task is named now: one
    ``check_task_name`` refuses is made safe (``user/data`` → ``user-data``, ``.hidden`` →
    ``hidden``) and cut to ``NAME_MAX_BYTES``; any other (or one nothing is left of) is kept."""
    try:
        return check_task_name(name)
    except Ptv2Error:
        if not isinstance(name, str):
            return name
    fixed = safe_task_name(name).encode("utf-8")[:NAME_MAX_BYTES].decode("utf-8", "ignore").rstrip("-")
    return fixed if fixed.strip() else name


def is_bio_tag(tag: str) -> bool:
    """A BIO tag: "O", "B-<type>" or "I-<type>" (the type not empty)."""
    return tag == "O" or (tag[:2] in ("B-", "I-") and len(tag) > 2)


@dataclass(frozen=True)
class TaskSpec:
    """A classification task: sequence (one label per text) or token (one BIO tag per word).

    ``labels`` fixes the integer ids: ``label`` / ``tags`` values in the data are indices into it.
    """

    name: str
    type: Literal["sequence", "token"]
    labels: tuple[str, ...]
    metric: str
    text_column: str = "text"
    label_column: str = "label"
    max_length: int = DEFAULT_MAX_LENGTH

    def __post_init__(self) -> None:
        check_task_name(self.name)
        if self.type not in TASK_TYPES:
            raise Ptv2Error(f"task '{self.name}': type must be one of {', '.join(TASK_TYPES)}, got {self.type!r}")
        if isinstance(self.labels, (str, bytes)) or not isinstance(self.labels, (list, tuple)):
            raise Ptv2Error(f"task '{self.name}': labels must be a list of strings, got {self.labels!r}")
        labels = tuple(str(x) for x in self.labels)
        object.__setattr__(self, "labels", labels)
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise Ptv2Error(f"task '{self.name}': duplicate labels {dupes}")
        if len(labels) < 2:
            raise Ptv2Error(f"task '{self.name}': needs at least 2 labels, got {list(labels)}")
        if self.type == "token":
            bad = [x for x in labels if not is_bio_tag(x)]
            if "O" not in labels or bad:
                raise Ptv2Error(
                    f"task '{self.name}': token tags must be BIO (\"O\", \"B-<type>\", \"I-<type>\") and include \"O\""
                    + (f"; not BIO: {bad[:5]}" if bad else "")
                )
        if self.metric not in METRICS[self.type]:
            raise Ptv2Error(
                f"task '{self.name}': metric {self.metric!r} is not one of {', '.join(METRICS[self.type])} "
                f"for {self.type} tasks"
            )
        length = self.max_length
        if isinstance(length, bool) or not isinstance(length, int) or length < MIN_MAX_LENGTH:
            raise Ptv2Error(f"task '{self.name}': max_length must be an integer >= {MIN_MAX_LENGTH}, "
                            f"got {self.max_length!r}")
        for key in ("text_column", "label_column"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise Ptv2Error(f"task '{self.name}': {key} must be a non-empty string")

    @property
    def num_labels(self) -> int:
        """Number of classes (sequence) or tags (token)."""
        return len(self.labels)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (labels as a list); ``from_dict`` inverts it."""
        d = asdict(self)
        d["labels"] = list(self.labels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskSpec:
        """Rebuild a spec from ``to_dict`` output; unknown keys are an error (they are usually typos)."""
        if not isinstance(d, dict):
            raise Ptv2Error(f"task spec must be a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise Ptv2Error(f"task spec has unknown keys {unknown}; expected some of {sorted(known)}")
        missing = [k for k in ("name", "type", "labels", "metric") if k not in d]
        if missing:
            raise Ptv2Error(f"task spec is missing required keys {missing}")
        d = {**d, "name": stored_task_name(d["name"])}  # one recorded before names had to be folder names
        return cls(**{**d, "labels": tuple(d["labels"]) if isinstance(d["labels"], list) else d["labels"]})


@dataclass(frozen=True)
class DataSource:
    """Where a user task's rows live: resolved paths; ``dev``/``test`` are carved from train when None."""

    train: Path
    dev: Path | None = None
    test: Path | None = None
    labels_inferred: bool = field(default=False, compare=False)  # the labels are train's (the YAML gives none)
    metric_default: bool = field(default=False, compare=False)  # the YAML gives no metric: the type's default

    def splits(self) -> dict[str, Path]:
        """The given files by split name."""
        return {k: v for k, v in (("train", self.train), ("dev", self.dev), ("test", self.test)) if v is not None}
