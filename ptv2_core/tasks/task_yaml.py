"""The user task YAML (docs/tasks.md): ``load_task_yaml`` reads one into a ``TaskSpec`` and the
``DataSource`` it names, refusing what it cannot take before any data is read."""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from ptv2_core.errors import Ptv2Error, yaml_problem
from ptv2_core.tasks.spec import (DATA_SUFFIXES, DEFAULT_MAX_LENGTH, DEFAULT_METRIC, TASK_TYPES, DataSource, TaskSpec,
                                  check_task_name)
from ptv2_core.tasks.text_file import read_utf8


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
        from ptv2_core.tasks.files import infer_labels  # needed only when the YAML gives no labels

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
