"""Adapter files: ``adapter.safetensors`` (prefix and head tensors) + ``adapter_config.json``.

The JSON names the base model (a hub model with the commit it loaded, which later loads fetch),
the SHA-256 fingerprint of its weights and (since 2026-12) of its tokenizer; loading refuses any other base, or the same weights beside another tokenizer. Nothing
is ever unpickled: safetensors holds only tensors, JSON only data.
"""
from __future__ import annotations

import errno
import json
import os
import re
import secrets
import time
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save
from torch import nn

from ptv2_core import __version__
from ptv2_core.adapter_schema import check_adapter_config, check_adapter_weights
from ptv2_core.artifact_json import check_prompt_fits, found_instead, read_config
from ptv2_core.backbone import (base_revision, base_tokenizer_fingerprint, check_tokenizer, fingerprint, geometry,
                                load_backbone, pinned_model_ref, used_tokenizer_fingerprint)
from ptv2_core.durable import sync
from ptv2_core.errors import Ptv2Error
from ptv2_core.heads import HeadConfig
from ptv2_core.memory import place
from ptv2_core.model import PromptModel
from ptv2_core.prefix import PromptConfig
from ptv2_core.provenance import provenance
from ptv2_core.tasks import PACKAGED_TASKS, TaskSpec
from ptv2_core.tasks.encode import prepare_tokenizer

WEIGHTS = "adapter.safetensors"
CONFIG = "adapter_config.json"
FORMAT = "ptv2-adapter"
FORMAT_VERSION = 1


def check_out_dir(out_dir: str | Path, overwrite: bool) -> None:
    """Refuse an output path that is a file, a non-empty folder without ``overwrite``, or one
    that cannot be written: checked before any work, so bad input writes nothing."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise Ptv2Error(f"--out '{out_dir}' exists and is not a folder")
    check_not_dangling(out_dir)
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise Ptv2Error(f"--out '{out_dir}' is not empty (pass --overwrite to replace it)")
    check_writable(out_dir)


def check_not_dangling(path: str | Path, flag: str = "--out") -> None:
    """Refuse a symbolic link that points nowhere: taken for a path to create, it failed at the
    last step (the rename into place), after the whole run."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise Ptv2Error(f"{flag} '{path}' is a symbolic link to '{os.readlink(path)}', which does not exist")


def writable_probe(path: str | Path, *, file: bool = False) -> tuple[Path, OSError | None]:
    """``(where, error)``: the nearest existing folder ``path`` would be created in (or the file in
    its way: ``path`` itself when it exists and is not a folder, unless ``file``, a file to be
    replaced), and why nothing can be created there: NotADirectoryError for a file, else the error
    of creating and removing an empty folder there (permissions, a read-only or virtual file
    system; it also holds for root, whom permission bits do not stop); None when it can."""
    path = Path(path).absolute()
    where = path if path.exists() and not (file and path.is_file()) else next(
        p for p in path.parents if p.exists())
    if not where.is_dir():
        return where, NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".ptv2-probe.", dir=where))
    except OSError as e:
        return where, e
    return where, None


def not_a_folder(path: Path) -> str:
    """What is in the way where a folder is wanted, for messages."""
    return "is a file, not a folder" if path.is_file() else "is not a folder"


def check_writable(path: str | Path, flag: str = "--out", *, file: bool = False) -> None:
    """Refuse ``path`` (a folder to be written, or with ``file`` a file) when it cannot be
    (``writable_probe``). Hours of training must not end in a failed save."""
    path = Path(path).absolute()
    where, error = writable_probe(path, file=file)
    if isinstance(error, NotADirectoryError) and where == path:
        raise Ptv2Error(f"{flag} '{path}' {not_a_folder(path)}")
    if isinstance(error, NotADirectoryError):  # a file where the folder would be
        raise Ptv2Error(f"{flag} '{path}' cannot be created: '{where}' is not a folder")
    if error is not None:
        raise Ptv2Error(f"{flag} '{path}' cannot be written: {error.strerror or error} in '{where}'")


def write_atomic_dir(out_dir: Path, files: dict[str, bytes | str], *, marker: str | None = None,
                     drop: tuple[str, ...] = ()) -> None:
    """Write ``files`` into ``out_dir`` so that it is never seen half-written, a process killed
    midway included.

    A new ``out_dir`` is built beside it and renamed into place whole. Into an existing one (whose
    other files are kept) the files move one by one: ``marker``, the file that makes the folder
    what it is (an adapter's or a prompt's config), is removed first, with ``drop`` (files that
    must not outlive the old content), and comes back last, so that no marker ever sits beside a
    mix of new and old files. A failure before the first change leaves ``out_dir`` as it was.

    The files of an existing ``out_dir`` are staged inside it: a rename cannot cross mounts, and an
    existing folder may be a mount point (a container's volume, a tmpfs, a bind mount of its
    parent's own file system, which no ``st_dev`` tells). A write that
    fails (no space left, a file too large, a read-only file system) is a Ptv2Error naming
    ``out_dir`` and the reason, its temporary folder removed."""
    out_dir = Path(out_dir)
    changed = False
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(out_dir)
        tmp = _staging_folder(out_dir) / f".{out_dir.name}.{secrets.token_hex(6)}.tmp"
        tmp.mkdir()  # the umask's mode, as out_dir gets (mkdtemp's would be private)
    except OSError as e:
        raise _write_error(out_dir, e, changed, marker) from e  # a caller may want the OSError
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data.encode() if isinstance(data, str) else data)
            sync(tmp / name)  # on the disk before a rename publishes it
        if not out_dir.exists():
            try:
                os.rename(tmp, out_dir)  # whole (over an empty folder made meanwhile, too)
                sync(out_dir.parent)
                return
            except OSError as e:  # made and filled meanwhile: written into as an existing one
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
        changed = True
        for name in ([marker] if marker else []) + list(drop):
            (out_dir / name).unlink(missing_ok=True)
        sync(out_dir)
        for name in sorted(files, key=lambda n: n == marker):  # same file system: each rename is atomic
            os.replace(tmp / name, out_dir / name)
        sync(out_dir)
    except OSError as e:
        raise _write_error(out_dir, e, changed, marker) from e  # a caller may want the OSError
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _staging_folder(out_dir: Path) -> Path:
    """Where ``write_atomic_dir`` (and the search's ``write_output``) builds ``out_dir``'s files:
    inside an existing ``out_dir``, the one place sure to be on its mount (renames cannot cross
    mounts: the trained adapter was lost to ``Invalid cross-device link`` after the whole run,
    at a mount point and at a bind mount of the same file system alike, which ``st_dev`` and
    ``os.path.ismount`` do not tell); beside a new one, which the rename of the staged folder
    makes."""
    return out_dir if out_dir.is_dir() else out_dir.parent


def _write_error(out_dir: Path, e: OSError, changed: bool, marker: str | None) -> Ptv2Error:
    """The one line a failed ``write_atomic_dir`` ends with: the folder, the reason, what is left."""
    reason = e.strerror or str(e)
    if isinstance(e, NotADirectoryError) and out_dir.is_symlink():
        reason = f"it is a symbolic link to '{os.readlink(out_dir)}', which is not a folder"
    again = "; once there is room, the same command again writes it" if e.errno in NO_ROOM else ""
    left = (f"its {marker} was removed (the folder reads as unwritten{again})"
            if changed and marker else "its files may be a mix of old and new" if changed
            else "nothing was written there")
    return Ptv2Error(f"cannot write '{out_dir}': {reason}; {left}")


# A write that failed for want of room (no space left, over a quota or the file size limit): another
# try may work once there is room; other failures (a cross-device rename, an I/O error) may recur.
NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)

# A temporary folder older than this is a killed writer's: a live one fills its folder in seconds.
STALE_TMP_S = 3600


def remove_stale_temporaries(out_dir: Path, older_than_s: float = STALE_TMP_S) -> None:
    """Remove the temporary folders ``write_atomic_dir`` left beside (or in) ``out_dir`` when killed midway
    (SIGKILL runs no clean-up) that are older than ``older_than_s``; a concurrent writer's is fresh
    and stays. Silent, and a folder that cannot be removed is left (a clean-up, not the write)."""
    own = re.compile(rf"\.{re.escape(out_dir.name)}\.[0-9a-f]{{12}}\.tmp")
    leftovers = []
    for folder in (out_dir.parent, out_dir):  # inside: an existing folder's (``_staging_folder``)
        try:
            leftovers += [p for p in folder.iterdir() if own.fullmatch(p.name)]
        except OSError:
            pass
    now = time.time()
    for p in leftovers:
        try:
            if p.is_dir() and not p.is_symlink() and now - p.stat().st_mtime > older_than_s:
                shutil.rmtree(p)
        except OSError:
            pass


def adapter_files(model: PromptModel, spec: TaskSpec, base_name: str, base_fingerprint: str,
                  extra: dict | None = None, fold: bool = False) -> dict[str, bytes | str]:
    """The adapter as ``{file name: content}``; ``fold`` exports an MLP prompt as a flat one."""
    state = model.trainable_state()
    prefix = model.prefix
    if fold and model.prompt_config.reparam:
        prefix = model.prefix.fold()
        state = {k: v for k, v in state.items() if not k.startswith("prefix.")} | {
            f"prefix.{k}": v for k, v in prefix.state_dict().items()
        }
    state = {k: v.detach().float().cpu().contiguous() for k, v in state.items()}
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "ptv2_version": __version__,
        "provenance": provenance(),  # the code's commit and the libraries' versions
        "prompt": prefix.config.to_dict(),
        "head": model.head_config.to_dict(),
        "task": spec.to_dict(),
        "base_model": {
            "name": base_name,
            "model_type": model.backbone.config.model_type,
            "fingerprint": base_fingerprint,
            # a hub model's commit (later loads fetch it, not the hub's newest); absent for an alias or a folder
            **({"revision": rev} if (rev := base_revision(model.backbone)) else {}),
            # absent for a backbone not loaded by load_backbone (nothing known of its tokenizer)
            **({"tokenizer_fingerprint": tok_fp} if (tok_fp := base_tokenizer_fingerprint(model.backbone)) else {}),
        },
    } | ({"extra": extra} if extra else {})
    weights = save(state, metadata={"format": FORMAT})  # in memory: no TMPDIR to fill up
    return {WEIGHTS: weights, CONFIG: json.dumps(config, indent=2, sort_keys=True) + "\n"}


def save_adapter(model: PromptModel, out_dir: str | Path, spec: TaskSpec, base_name: str,
                 base_fingerprint: str | None = None, extra: dict | None = None, fold: bool = False,
                 files: dict[str, bytes | str] | None = None) -> Path:
    """Write the adapter files (plus any ``files``, e.g. metrics.json) into ``out_dir``, all
    or nothing. Returns the folder."""
    fp = base_fingerprint or fingerprint(model.backbone)
    write_atomic_dir(Path(out_dir), adapter_files(model, spec, base_name, fp, extra, fold) | (files or {}),
                     marker=CONFIG)
    return Path(out_dir)


def read_adapter_config(adapter_dir: str | Path) -> dict:
    """The JSON config of an adapter folder, validated."""
    path = Path(adapter_dir) / CONFIG
    if not Path(adapter_dir).exists():
        raise Ptv2Error(f"adapter folder '{adapter_dir}' does not exist")
    if not path.is_file():
        raise Ptv2Error(f"no adapter at '{adapter_dir}': {CONFIG} is missing{found_instead(Path(adapter_dir))}")
    return check_adapter_config(read_config(path, FORMAT, FORMAT_VERSION, "adapter",
                                            ("prompt", "head", "task", "base_model")), path)


def split_seed_of(config: dict) -> int | None:
    """The seed of the data splits an adapter was trained on (its TrainConfig's ``data_seed``,
    else its ``seed``), from its config; None when the adapter does not record one."""
    train_cfg = (config.get("extra") or {}).get("train_config") or {}
    seed = train_cfg.get("data_seed")
    seed = train_cfg.get("seed") if seed is None else seed
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, float)) or seed != int(seed):
        raise Ptv2Error(f"corrupt adapter config: its train_config's seed is no whole number: {str(seed)[:80]!r}")
    return int(seed)


def own_task(config: dict, metrics: dict | None = None) -> str:
    """The task an adapter was trained on, as a task reference: as training named it (a packaged
    name, a task YAML's path, ``hub:<name>``; a YAML's ``name:`` alone is no reference). A pipeline
    step trains on its prepared copy of the task and records, in ``metrics`` (the adapter's
    metrics.json), the reference it was prepared from (``task_source``): when the copy is not found
    here (another pod), that reference is used if it is found. A task file named like a packaged
    task is not that task: a recorded path not found here raises a ``Ptv2Error`` naming it and
    ``--task``, never a silent switch to the packaged data of the same name."""
    name = config["task"]["name"]
    ref = str(((config.get("extra") or {}).get("train_config") or {}).get("task") or name)
    if task_ref_found(ref):
        return ref
    source = (metrics or {}).get("task_source") if isinstance(metrics, dict) else None
    if isinstance(source, str) and source and task_ref_found(source):
        return source
    prepared = f" (prepared from '{source}', not found here either)" if isinstance(source, str) and source else ""
    raise Ptv2Error(f"the adapter's task '{name}' was read from '{ref}' when it was trained, which is not found "
                    f"here{prepared}: pass --task PATH (its task YAML, or the packaged task if that is what it was)")


def recorded_metrics(adapter_dir: str | Path) -> dict | None:
    """An adapter folder's metrics.json as a mapping, or None when it is missing or unreadable (the
    commands that need it say so themselves)."""
    try:
        doc = json.loads((Path(adapter_dir) / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def task_ref_found(ref: str) -> bool:
    """Whether a task reference can be loaded here: a packaged name, a hub data set, a task file."""
    return ref in PACKAGED_TASKS or ref.startswith("hub:") or Path(ref).is_file()


def read_adapter_weights(adapter_dir: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of an adapter folder, checked (floating point, finite)."""
    adapter_dir = Path(adapter_dir)
    try:
        state = load_file(str(adapter_dir / WEIGHTS))
    except FileNotFoundError:
        raise Ptv2Error(f"adapter '{adapter_dir}' has no {WEIGHTS}") from None
    except Exception as e:  # safetensors raises its own error types for truncated/garbled files
        raise Ptv2Error(f"corrupt adapter weights '{adapter_dir / WEIGHTS}': {e}") from None
    return check_adapter_weights(state, adapter_dir / WEIGHTS)


@dataclass
class LoadedAdapter:
    model: PromptModel
    tokenizer: object
    spec: TaskSpec
    config: dict


def load_adapter(adapter_dir: str | Path, backbone: nn.Module | None = None, tokenizer=None,
                 device: str | torch.device = "cpu") -> LoadedAdapter:
    """Rebuild the PromptModel of an adapter folder on its base model.

    ``backbone``/``tokenizer`` default to loading the base by the name in the config. The
    base's weight fingerprint must match the one recorded at training time, and so must its
    tokenizer's where the adapter records one (adapters saved before it was recorded load as before).
    """
    config = read_adapter_config(adapter_dir)
    state = read_adapter_weights(adapter_dir)  # a broken file fails before any base model loads
    base = config["base_model"]
    if backbone is None:
        name = pinned_model_ref(base)  # a hub model at the commit it was trained on
        try:
            backbone, tokenizer = load_backbone(name)
        except Ptv2Error as e:  # the user named no model: say it is the adapter's recorded base
            raise Ptv2Error(f"adapter '{adapter_dir}': its base model '{name}' cannot be loaded here: {e}") from None
    actual = fingerprint(backbone)
    if actual != base["fingerprint"]:
        raise Ptv2Error(
            f"adapter '{adapter_dir}' was trained on base model '{pinned_model_ref(base)}' with fingerprint "
            f"{base['fingerprint'][:19]}…, but the given base has {actual[:19]}…: refusing a different base model"
        )
    check_tokenizer(base, used_tokenizer_fingerprint(backbone, tokenizer), f"adapter '{adapter_dir}'")
    try:
        prompt = PromptConfig.from_dict(config["prompt"])
        head = HeadConfig.from_dict(config["head"])
        spec = TaskSpec.from_dict(config["task"])
    except (TypeError, KeyError, ValueError) as e:
        raise Ptv2Error(f"corrupt adapter config in '{adapter_dir}': {e}") from None
    geo = geometry(backbone.config)
    check_prompt_fits(prompt, geo, f"adapter '{adapter_dir}'")
    # the head must be the task's (a 2-label head on a 3-label task never predicts the third)
    if (head.task_type, head.num_labels, head.hidden_size) != (spec.type, len(spec.labels), geo.hidden_size):
        raise Ptv2Error(f"corrupt adapter config in '{adapter_dir}': its head ({head.task_type}, {head.num_labels} "
                        f"labels, width {head.hidden_size}) does not fit its task ({spec.type}, {len(spec.labels)} "
                        f"labels) on this base model (width {geo.hidden_size})")
    model = PromptModel(backbone, prompt, head)
    expected = model.trainable_state()
    if set(state) != set(expected):
        raise Ptv2Error(f"adapter '{adapter_dir}' tensors do not match its config: expected {sorted(expected)}, found {sorted(state)}")
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise Ptv2Error(f"adapter '{adapter_dir}': tensor '{key}' has shape {tuple(tensor.shape)}, config implies {tuple(expected[key].shape)}")
    model.load_trainable_state(state)
    place(model, device).eval()
    tokenizer = prepare_tokenizer(tokenizer) if tokenizer is not None else None
    return LoadedAdapter(model, tokenizer, spec, config)
