"""What a task is: ``TaskSpec`` (frozen, JSON-able) and the user task YAML that describes one."""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from ptv2_core.errors import Ptv2Error, yaml_problem
from ptv2_core.tasks.text_file import read_utf8

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


_YAML_KEYS = {"name", "type", "labels", "metric", "text_column", "label_column", "max_length", "data"}


def load_task_yaml(path: str | Path) -> tuple[TaskSpec, DataSource]:
    """Read a user task YAML (see docs/tasks.md) into a spec and the data files it names.

    Sequence tasks may omit ``labels``: they are then the sorted distinct labels of the train
    file; token tasks likewise ("O" first, then the sorted B-/I- tags).
    """
    path = Path(path)
    if not path.is_file():
        raise Ptv2Error(f"task file not found: {path}")
    if path.suffix.lower() in (".csv", ".jsonl", ".parquet"):  # (a .json file may hold a task: JSON is YAML)
        raise Ptv2Error(f"{path} is a data file, not a task file: write a task YAML that names it (name:, type:, "
                        "data: {train: ...}; docs/tasks.md) and pass that")
    try:
        doc, node = _read_yaml(read_utf8(path, "task file"))
    except OSError as e:
        raise Ptv2Error(f"task file {path} cannot be read: {e.strerror or e}") from None
    except yaml.YAMLError as e:  # YAML's own message runs to several lines
        raise Ptv2Error(f"task file {path} is not valid YAML: {yaml_problem(e)}") from None
    if doc is None:  # nothing but blanks or comments
        raise Ptv2Error(f"task file {path} is empty: it must hold a mapping (name:, type:, data: ...; docs/tasks.md)")
    if not isinstance(doc, dict):
        raise Ptv2Error(f"task file {path} must hold a mapping (name:, type:, data: ...), got {type(doc).__name__}")
    unknown = sorted(set(doc) - _YAML_KEYS)
    if unknown:
        raise Ptv2Error(f"task file {path}: unknown keys {unknown}; allowed: {sorted(_YAML_KEYS)}")
    missing = [k for k in ("name", "type", "data") if k not in doc]
    if missing:
        raise Ptv2Error(f"task file {path}: missing required keys {missing}")
    _check_yaml_name(doc["name"], path)
    kind = doc["type"]
    if kind not in TASK_TYPES:
        raise Ptv2Error(f"task file {path}: type must be one of {', '.join(TASK_TYPES)}, got {kind!r}")
    text_col = _column_name(doc, "text_column", "text" if kind == "sequence" else "tokens", path)
    label_col = _column_name(doc, "label_column", "label" if kind == "sequence" else "tags", path)
    source = _data_source(doc["data"], path, kind)
    labels = doc.get("labels")
    if labels is None:
        from ptv2_core.tasks.files import infer_labels  # files.py imports this module

        labels = infer_labels(source.train, kind, text_col, label_col)
        source = replace(source, labels_inferred=True)
    elif not isinstance(labels, list) or not labels:
        raise Ptv2Error(f"task file {path}: labels must be a non-empty list, got {labels!r}")
    else:
        odd = [x for x in labels if not isinstance(x, str) and (isinstance(x, bool) or not isinstance(x, int))]
        if odd:  # YAML 1.1 reads yes/no/on/off as booleans, 1.50 as 1.5, ~ as null: not the data's labels
            raise Ptv2Error(f"task file {path}: label {odd[0]!r} in labels is a {type(odd[0]).__name__}, not the text in the "
                            f"file (YAML reads yes, no, on, off, true as booleans, 1.50 as a number, null as nothing); "
                            f"quote the labels: labels: [\"yes\", \"no\"]")
        _refuse_respelled(labels, _label_spellings(node), path)
    try:
        spec = TaskSpec(
            name=doc["name"],
            type=kind,
            labels=tuple(str(x) for x in labels),
            metric=doc.get("metric", DEFAULT_METRIC[kind]),
            text_column=text_col,
            label_column=label_col,
            max_length=doc.get("max_length", DEFAULT_MAX_LENGTH),
        )
    except Ptv2Error as e:  # "task 't': metric 'f1' ..." named no file
        said = str(e).removeprefix(f"task '{doc['name']}': ")
        raise Ptv2Error(f"task file {path}: {said}") from None
    return spec, replace(source, metric_default="metric" not in doc)


def _column_name(doc: dict, key: str, default: str, path: Path) -> str:
    """``text_column:`` or ``label_column:`` as one column's name, refused naming the task file
    before any data is read (a list, as for a sentence pair, ended in a traceback)."""
    value = doc.get(key, default)
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list):
        pair = (": one text per row (sentence-pair tasks, two text columns, are not supported: join the two texts "
                "into one column)") if key == "text_column" else ""
        raise Ptv2Error(f"task file {path}: {key} must be one column's name, got a list {value!r}{pair}")
    if isinstance(value, (bool, int, float)):
        what = "a boolean" if isinstance(value, bool) else "a number"
        raise Ptv2Error(f"task file {path}: {key} must be one column's name, got {what} {value!r}: put it in quotes, "
                        f"{key}: \"{value}\"")
    what = ("an empty text" if isinstance(value, str) else "nothing" if value is None
            else "a mapping " + repr(value) if isinstance(value, dict) else f"{type(value).__name__} {value!r}")
    raise Ptv2Error(f"task file {path}: {key} must be one column's name, got {what}")


def _check_yaml_name(name: Any, path: Path) -> None:
    """``name:`` as ``check_task_name`` takes it, refused naming the file; before any data is read.
    YAML reads ``name: 123`` as a number and ``name: yes`` as a boolean: say to quote it."""
    if isinstance(name, (bool, int, float)):
        what = "a boolean" if isinstance(name, bool) else "a number"
        raise Ptv2Error(f"task file {path}: name must be text, got {name!r} (YAML read {what}): put it in quotes, "
                        "name: \"...\"")
    try:
        check_task_name(name)
    except Ptv2Error as e:
        raise Ptv2Error(f"task file {path}: {e}") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (the last one won
    silently: ``name: x`` then ``name: y`` named the task y). A ``<<`` merge may still be
    overridden, as YAML means it to be."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:  # an unhashable key: SafeLoader's own error follows
                continue
            if first is not key_node:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice (first at line {first.start_mark.line + 1})",
                    key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    """``yaml.safe_load`` refusing duplicate keys, plus the node tree: it keeps each scalar's text
    as written, which the loaded document has lost (010 is already 8 there)."""
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()


def _label_spellings(node: yaml.Node | None) -> list[str | None]:
    """The ``labels:`` items as the file spells them (None for an item that is not a plain scalar);
    the last ``labels:`` wins, as it does in the document."""
    items: list[yaml.Node] = []
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == "labels" and isinstance(value, yaml.SequenceNode):
                items = value.value
    return [n.value if isinstance(n, yaml.ScalarNode) else None for n in items]


def _refuse_respelled(labels: list, spellings: list[str | None], path: Path) -> None:
    """Refuse a label YAML read as a number other than its text: YAML 1.1 reads 010 as octal 8,
    0x1F as 31, 1_000 as 1000, +5 as 5, 1:30 as 90, so the label list no longer held the data's
    "010". A number written as itself (labels: [0, 1]) is its own text, and kept."""
    if len(spellings) != len(labels):
        return  # not read from a plain list (cannot happen for a mapping's own labels: list)
    for value, text in zip(labels, spellings):
        if isinstance(value, int) and not isinstance(value, bool) and text is not None and text != str(value):
            quoted = [json.dumps(t if t is not None else str(v)) for v, t in zip(labels, spellings)]
            shown = ", ".join(quoted[:4]) + (", ..." if len(quoted) > 4 else "")
            raise Ptv2Error(f"task file {path}: label {text} in labels is the number {value} to YAML, not the text "
                            f"{json.dumps(text)} in the file (YAML 1.1 reads a leading 0 as octal, 0x as hex, drops _ "
                            f"and +); quote the labels: labels: [{shown}]")


# a token task's file in CoNLL form (a word and its tag per line) by its usual names: told to be JSON Lines
_CONLL_SUFFIXES = (".conll", ".conllu", ".txt", ".tsv", ".iob", ".iob2", ".bio")
_CONLL_HINT = ("; a CoNLL file (a word and its tag per line, a blank line between sentences) is not read: write it as "
               "JSON Lines, one sentence a line, {\"tokens\": [\"Ada\", \"wrote\"], \"tags\": [\"B-per\", \"O\"]} "
               "(docs/tasks.md, \"Token tasks\")")


def _data_source(data: Any, yaml_path: Path, kind: str = "sequence") -> DataSource:
    if not isinstance(data, dict):
        raise Ptv2Error(f"task file {yaml_path}: data must be a mapping with train: (and optional dev:, test:)")
    unknown = sorted(set(data) - {"train", "dev", "test"})
    if unknown:
        raise Ptv2Error(f"task file {yaml_path}: unknown data keys {unknown}; allowed: train, dev, test")
    if data.get("train") is None:
        raise Ptv2Error(f"task file {yaml_path}: missing required key data.train")
    resolved: dict[str, Path] = {}
    for split, rel in data.items():
        if rel is None:
            continue
        if not isinstance(rel, str):  # a list's text ['a.csv'] was taken as a file name
            what = ("a boolean" if isinstance(rel, bool) else "a number" if isinstance(rel, (int, float))
                    else "a list" if isinstance(rel, list) else "a mapping" if isinstance(rel, dict)
                    else type(rel).__name__)
            raise Ptv2Error(f"task file {yaml_path}: data.{split} must be a data file's path, got {what} ({rel!r})")
        if not rel.strip():  # Path("") is the YAML's folder, reported as a file without an extension
            raise Ptv2Error(f"task file {yaml_path}: data.{split} is empty: give a data file's path"
                            + ("" if split == "train" else f", or leave {split}: out"))
        p = Path(str(rel)).expanduser()
        p = p if p.is_absolute() else yaml_path.parent / p
        if p.suffix.lower() not in DATA_SUFFIXES:
            raise Ptv2Error(
                f"data file {p} ({split}): unsupported extension {p.suffix or '(none)'!r}; "
                f"use one of {', '.join(DATA_SUFFIXES)}"
                + (_CONLL_HINT if kind == "token" and p.suffix.lower() in _CONLL_SUFFIXES else "")
            )
        if not p.is_file():
            raise Ptv2Error(f"data file not found: {p} ({split}, named in {yaml_path}){_from_here(rel, yaml_path)}")
        resolved[split] = p
    return DataSource(**resolved)



def _from_here(rel: str, yaml_path: Path) -> str:
    """A hint when a missing data path exists relative to the current folder: it is meant from here,
    but paths in a task file are relative to the file's folder."""
    here = Path(rel).expanduser()
    if here.is_absolute() or not here.is_file() or yaml_path.parent.resolve() == Path.cwd().resolve():
        return ""
    there = os.path.relpath(here.resolve(), yaml_path.parent.resolve())
    return (f"; paths in a task file are relative to its folder ({yaml_path.parent}): {rel} from here is {there} "
            "there")
