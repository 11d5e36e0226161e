"""Per-epoch pre-training checkpoints, without pickle.

``checkpoints/epoch-N.safetensors`` holds tensors: the model's trainable state (``model.*``),
AdamW's per-parameter state (``optim.<param index>.<name>``, e.g. ``exp_avg``, ``step``) and the
torch RNG states (``rng.torch``, ``rng.cuda`` on a GPU: dropout). ``checkpoints/epoch-N.json`` holds the rest as
data: optimizer param groups, LR scheduler state, sampler state, the history so far, and the
run key that a resume must match. The JSON is written after the tensors, each file by an
atomic rename, so the newest checkpoint with a readable JSON is always complete.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ptv2_core.durable import sync
from ptv2_core.errors import Ptv2Error

FORMAT = "ptv2-pretrain-checkpoint"
_NAME = re.compile(r"^epoch-(\d+)\.json$")


def optimizer_to_files(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """``(tensors, json)`` of an optimizer's ``state_dict``: tensors apart, everything else as data."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for name, value in st.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{name}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_files(tensors: dict[str, torch.Tensor], data: dict) -> dict:
    """The ``state_dict`` that :func:`optimizer_to_files` split apart."""
    state: dict[int, dict] = {}
    for key, t in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = t
    for key, value in data["scalars"].items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    groups = [dict(g, betas=tuple(g["betas"])) if "betas" in g else dict(g) for g in data["param_groups"]]
    return {"state": state, "param_groups": groups}


def _atomic_write(path: Path, write) -> None:
    """``write(tmp)``, then ``tmp`` renamed to ``path``; a write that fails (no space left, a file
    too large) is a Ptv2Error naming ``path``, its partial temporary file removed."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        sync(tmp)  # on the disk before the rename publishes it (a crash could leave an empty file)
        os.replace(tmp, path)
        sync(path.parent)
    except (OSError, SafetensorError) as e:  # safetensors reports an I/O error as its own
        tmp.unlink(missing_ok=True)
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        # safetensors' "Error while serializing: I/O error: No space left on device (os error 28)"
        reason = re.sub(r"^.*I/O error: (.*?)(?: \(os error \d+\))?$", r"\1", reason)
        raise Ptv2Error(f"cannot write the checkpoint '{path}': {reason}; the checkpoints before it are kept") from None


def save_checkpoint(ckpt_dir: Path, epoch: int, model_state: dict[str, torch.Tensor],
                    opt: torch.optim.Optimizer, data: dict, keep: int, device: torch.device | None = None) -> Path:
    """Write epoch ``epoch``'s checkpoint, then drop all but the ``keep`` newest. ``device``: the
    training device, whose random generator (dropout on a GPU) is saved with the CPU's."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    opt_tensors, opt_data = optimizer_to_files(opt)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model_state.items()} | opt_tensors
    tensors["rng.torch"] = torch.get_rng_state()
    if device is not None and device.type == "cuda":  # the training GPU's generator (cuda:1's, not cuda:0's)
        tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
    doc = {"format": FORMAT, "epoch": epoch, "optimizer": opt_data} | data
    text = json.dumps(doc, indent=1, sort_keys=True)  # before any file: a non-JSON value fails here
    _atomic_write(ckpt_dir / f"epoch-{epoch}.safetensors", lambda p: save_file(tensors, str(p), metadata={"format": FORMAT}))
    _atomic_write(ckpt_dir / f"epoch-{epoch}.json", lambda p: p.write_text(text + "\n"))
    for old in checkpoint_epochs(ckpt_dir)[:-keep]:
        for suffix in (".json", ".safetensors"):  # JSON first: a half-pruned checkpoint is ignored
            (ckpt_dir / f"epoch-{old}{suffix}").unlink(missing_ok=True)
    return ckpt_dir / f"epoch-{epoch}.json"


def checkpoint_epochs(ckpt_dir: Path) -> list[int]:
    """Epochs with a checkpoint JSON, oldest first."""
    if not ckpt_dir.is_dir():
        return []
    return sorted(int(m.group(1)) for p in ckpt_dir.iterdir() if (m := _NAME.match(p.name)))


def load_latest_checkpoint(ckpt_dir: Path) -> tuple[dict, dict[str, torch.Tensor]] | None:
    """``(json, tensors)`` of the newest complete checkpoint, or None when there is none."""
    for epoch in reversed(checkpoint_epochs(ckpt_dir)):
        try:
            doc = json.loads((ckpt_dir / f"epoch-{epoch}.json").read_text())
            tensors = load_file(str(ckpt_dir / f"epoch-{epoch}.safetensors"))
        except Exception:  # unreadable (e.g. a disk-full write): fall back to the one before
            continue
        if doc.get("format") != FORMAT:
            raise Ptv2Error(f"'{ckpt_dir}/epoch-{epoch}.json' is not a ptv2 pre-training checkpoint")
        return doc, tensors
    return None


def model_state_of(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}


def restore_rng(tensors: dict[str, torch.Tensor], device: torch.device | None = None) -> None:
    """Put the RNG states of a checkpoint back, so dropout continues as if never stopped."""
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and device is not None and device.type == "cuda":
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)
