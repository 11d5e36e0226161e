"""The checks on an adapter's two files as read, before anything is built from them: the types and
ranges of ``adapter_config.json``'s values, and the tensors of ``adapter.safetensors`` (floating
point and finite); and the same for a pre-trained prompt's ``prompt_config.json`` and
``prompt.safetensors``. A hand-edited or damaged file is one Ptv2Error naming the file and the field,
never a TypeError from deep inside torch, nor a model that predicts from NaN."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from ptv2_core.errors import Ptv2Error
from ptv2_core.heads import POOLINGS
from ptv2_core.model_ref import is_commit_sha

_MISSING = object()


def _whole(v, least: int) -> bool:
    return not isinstance(v, bool) and isinstance(v, int) and v >= least


def _rate(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and 0 <= v < 1


def _text(v) -> bool:
    return isinstance(v, str) and bool(v)


# section → field → (check, what it must be, required)
_FIELDS = {
    "prompt": {
        "prompt_len": (lambda v: _whole(v, 1), "a positive integer", True),
        "num_layers": (lambda v: _whole(v, 1), "a positive integer", True),
        "num_kv_heads": (lambda v: _whole(v, 1), "a positive integer", True),
        "head_dim": (lambda v: _whole(v, 1), "a positive integer", True),
        "reparam": (lambda v: isinstance(v, bool), "true or false", False),
        "reparam_hidden": (lambda v: _whole(v, 1), "a positive integer", False),
        "dropout": (_rate, "a number in [0, 1)", False),
    },
    "head": {
        "task_type": (_text, "a non-empty text", True),
        "num_labels": (lambda v: _whole(v, 1), "a positive integer", True),
        "hidden_size": (lambda v: _whole(v, 1), "a positive integer", True),
        "pooling": (lambda v: v in POOLINGS, f"one of {', '.join(POOLINGS)}", False),
        "dropout": (_rate, "a number in [0, 1)", False),
    },
    "task": {
        "labels": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of texts", True),
    },
    "base_model": {
        "name": (_text, "a non-empty text", True),
        "fingerprint": (_text, "a non-empty text", True),
        "revision": (is_commit_sha,
                     "a hub commit sha (40 hexadecimal digits)", False),
    },
}


def _shown(v) -> str:
    return repr(v)[:80]


def _check_fields(node, fields: dict, where: str, fail) -> None:
    """Each of ``fields`` (``key → (check, what, required)``) of the mapping ``node`` (at ``where``,
    a dotted prefix ending in '.', or '' at the top)."""
    for key, (ok, what, required) in fields.items():
        value = node.get(key, _MISSING)
        if value is _MISSING:
            if required:
                fail(f"'{where}{key}' is missing")
            continue
        if not ok(value):
            fail(f"'{where}{key}' must be {what}, got {_shown(value)}")


def _section(config: dict, key: str, where: str, fail, required: bool = True):
    node = config.get(key, _MISSING)
    if node is _MISSING and not required:
        return None
    if not isinstance(node, dict):
        fail(f"'{where}{key}' must be a mapping, got {_shown(None if node is _MISSING else node)}")
    return node


def check_adapter_config(config: dict, path: Path) -> dict:
    """``config`` (read from ``path``) if its sections and values have the types and ranges ptv2
    writes, else a Ptv2Error naming ``path`` and the first bad field."""
    def fail(why: str):
        raise Ptv2Error(f"corrupt adapter config '{path}': {why}")

    for section, fields in _FIELDS.items():
        _check_fields(_section(config, section, "", fail), fields, f"{section}.", fail)
    return config


def _lengths_ok(v) -> bool:
    return isinstance(v, list) and bool(v) and all(_whole(x, 1) for x in v)


_PRETRAINED_TOP = {
    "max_prompt_len": (lambda v: _whole(v, 1), "a positive integer", True),
    "lengths": (_lengths_ok, "a non-empty list of positive integers", True),
    "tasks": (lambda v: isinstance(v, list) and bool(v), "a non-empty list", True),
}
_PRETRAINED_TASK = {
    "ref": (_text, "a non-empty text", True),
}
_PRETRAINED_SPEC = {
    "name": (_text, "a non-empty text", True),
    "labels": _FIELDS["task"]["labels"],
}
_PRETRAINED_RUN = {
    "seed": (lambda v: _whole(v, 0), "a non-negative integer", False),
}


def check_pretrained_config(config: dict, path: Path) -> dict:
    """``config`` (a pre-trained prompt's ``prompt_config.json``, read from ``path``) if its values
    have the types and ranges ``ptv2 pretrain`` writes: the prompt and base model as an adapter's,
    the lengths within ``max_prompt_len``, each task's reference, spec and head; else a Ptv2Error
    naming ``path`` and the first bad field."""
    def fail(why: str):
        raise Ptv2Error(f"corrupt pre-trained prompt config '{path}': {why}")

    _check_fields(config, _PRETRAINED_TOP, "", fail)
    for section in ("prompt", "base_model"):
        _check_fields(_section(config, section, "", fail), _FIELDS[section], f"{section}.", fail)
    longest = config["max_prompt_len"]
    if config["prompt"]["prompt_len"] != longest:
        fail(f"'prompt.prompt_len' must be max_prompt_len ({longest}), got {_shown(config['prompt']['prompt_len'])}")
    beyond = [x for x in config["lengths"] if x > longest]
    if beyond:
        fail(f"'lengths' must be at most max_prompt_len ({longest}), got {_shown(beyond)}")
    for i, task in enumerate(config["tasks"]):
        where = f"tasks[{i}]"
        if not isinstance(task, dict):
            fail(f"'{where}' must be a mapping, got {_shown(task)}")
        _check_fields(task, _PRETRAINED_TASK, f"{where}.", fail)
        _check_fields(_section(task, "spec", f"{where}.", fail), _PRETRAINED_SPEC, f"{where}.spec.", fail)
        _check_fields(_section(task, "head", f"{where}.", fail), _FIELDS["head"], f"{where}.head.", fail)
    run = _section(config, "pretrain_config", "", fail, required=False)
    if run is not None:
        _check_fields(run, _PRETRAINED_RUN, "pretrain_config.", fail)
    _section(config, "task_keys", "", fail, required=False)
    return config


def check_weights(state: dict[str, torch.Tensor], path: Path, what: str = "adapter") -> dict[str, torch.Tensor]:
    """``state`` (read from ``path``) if every tensor is floating point and finite, else a
    Ptv2Error naming ``path`` and the first bad tensor."""
    for key, tensor in state.items():
        if not tensor.is_floating_point():
            raise Ptv2Error(f"corrupt {what} weights '{path}': tensor '{key}' is {str(tensor.dtype).removeprefix('torch.')}, "
                            "not floating point")
        if not bool(torch.isfinite(tensor).all()):
            raise Ptv2Error(f"corrupt {what} weights '{path}': tensor '{key}' holds values that are not finite "
                            "(NaN or infinity)")
    return state


def check_adapter_weights(state: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """``state`` (an adapter's tensors, read from ``path``), checked as ``check_weights`` does."""
    return check_weights(state, path, "adapter")
