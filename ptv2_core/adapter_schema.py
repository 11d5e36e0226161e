"""The checks on an adapter's two files as read, before anything is built from them: the types and
ranges of ``adapter_config.json``'s values, and the tensors of ``adapter.safetensors`` (floating
point and finite). A hand-edited or damaged file is one Ptv2Error naming the file and the field,
never a TypeError from deep inside torch, nor a model that predicts from NaN."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from ptv2_core.errors import Ptv2Error
from ptv2_core.heads import POOLINGS

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
    },
}


def _shown(v) -> str:
    return repr(v)[:80]


def check_adapter_config(config: dict, path: Path) -> dict:
    """``config`` (read from ``path``) if its sections and values have the types and ranges ptv2
    writes, else a Ptv2Error naming ``path`` and the first bad field."""
    for section, fields in _FIELDS.items():
        node = config.get(section, _MISSING)
        if not isinstance(node, dict):
            raise Ptv2Error(f"corrupt adapter config '{path}': '{section}' must be a mapping, got {_shown(node)}")
        for key, (ok, what, required) in fields.items():
            value = node.get(key, _MISSING)
            if value is _MISSING:
                if required:
                    raise Ptv2Error(f"corrupt adapter config '{path}': '{section}.{key}' is missing")
                continue
            if not ok(value):
                raise Ptv2Error(f"corrupt adapter config '{path}': '{section}.{key}' must be {what}, got {_shown(value)}")
    return config


def check_adapter_weights(state: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """``state`` (read from ``path``) if every tensor is floating point and finite, else a
    Ptv2Error naming ``path`` and the first bad tensor."""
    for key, tensor in state.items():
        if not tensor.is_floating_point():
            raise Ptv2Error(f"corrupt adapter weights '{path}': tensor '{key}' is {str(tensor.dtype).removeprefix('torch.')}, "
                            "not floating point")
        if not bool(torch.isfinite(tensor).all()):
            raise Ptv2Error(f"corrupt adapter weights '{path}': tensor '{key}' holds values that are not finite "
                            "(NaN or infinity)")
    return state
