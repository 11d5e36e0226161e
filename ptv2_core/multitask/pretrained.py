"""The pre-training configuration and the pre-trained prompt artifact.

A pre-trained prompt is a folder:

- ``prompt.safetensors``: ``prefix.*`` (the shared deep prompt, ``max_prompt_len`` positions) and
  ``heads.<i>.*`` (one head per pre-training task, ``i`` = the task's index in the JSON);
- ``prompt_config.json``: format ``ptv2-pretrained-prompt``, the tasks with their specs and head
  configs, the candidate lengths, ``max_prompt_len``, the prompt config, the base model's name
  and weight fingerprint, the pre-training config and the dev scores per task and length;
- ``checkpoints/``: per-epoch training state (see ``checkpoint.py``), used to resume;
- ``logged_runs.json``: where the finished prompt's run was logged (written by the tracking
  layer, ``components.pretrain_tracking``), so that the same command again logs a prompt whose
  logging failed, and not one logged already.

``prompt_config.json`` is written last: a folder without it is an unfinished run (resumable),
never a usable prompt. Nothing is ever unpickled.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from ptv2_core import __version__
from ptv2_core.adapter_schema import check_pretrained_config, check_weights
from ptv2_core.artifact_json import found_instead, read_config
from ptv2_core.backbone import check_tokenizer, pinned_model_ref
from ptv2_core.errors import Ptv2Error
from ptv2_core.settings import BadSetting, TrainingSettings

WEIGHTS = "prompt.safetensors"
CONFIG = "prompt_config.json"
CHECKPOINTS = "checkpoints"
LOGGED = "logged_runs.json"
FORMAT = "ptv2-pretrained-prompt"
FORMAT_VERSION = 1


def default_lengths(max_prompt_len: int) -> tuple[int, ...]:
    """The candidate lengths when none are given: 4, 8, 16, 32, 64 below ``max_prompt_len``, then
    ``max_prompt_len`` itself (the longest length must be it: no step trains the positions past it)."""
    return tuple(x for x in (4, 8, 16, 32, 64) if x < max_prompt_len) + (max_prompt_len,)


@dataclass(kw_only=True)
class PretrainConfig(TrainingSettings):
    """Everything a pre-training run depends on.

    Each step draws one task (``temperature``-scaled size sampling) and, with ``nested``, one
    length from ``lengths``; the step then uses only the first ``length`` prompt positions, so
    every leading slice of the shared prompt is trained as a prompt of its own.
    """

    tasks: tuple[str, ...] = ("trec", "rt", "wnut16")
    max_prompt_len: int = 64
    lengths: tuple[int, ...] = (4, 8, 16, 32, 64)
    nested: bool = True  # False: every step uses max_prompt_len (plain pre-training)
    temperature: float = 2.0
    keep_checkpoints: int = 2  # newest checkpoints kept in checkpoints/

    # settings that do not change what is trained: a resume may differ in these
    RUN_NEUTRAL = ("eval_batch_size", "device", "progress", "keep_checkpoints")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.tasks = tuple(self.tasks)
        self.lengths = tuple(sorted(set(int(x) for x in self.lengths))) if self.lengths else ()

    def check(self) -> None:
        """Refuse bad settings before anything is loaded or written."""
        if not self.tasks:
            raise BadSetting("pre-training needs at least one task ({tasks})", tasks="tasks")
        dupes = sorted({t for t in self.tasks if self.tasks.count(t) > 1})
        if dupes:
            raise BadSetting(f"{{tasks}} listed twice: {dupes}", tasks="tasks")
        if isinstance(self.max_prompt_len, bool) or not isinstance(self.max_prompt_len, int) or self.max_prompt_len <= 0:
            raise BadSetting(f"{{max_prompt_len}} must be a positive integer, got {self.max_prompt_len!r}",
                             max_prompt_len="max prompt length")
        words = {"lengths": "prompt lengths", "max_prompt_len": "max prompt length"}
        if not self.lengths:
            raise BadSetting("at least one prompt length is needed ({lengths})", lengths="prompt lengths")
        bad = [x for x in self.lengths if not 0 < x <= self.max_prompt_len]
        if bad:
            raise BadSetting(f"{{lengths}} {bad} are outside 1..{self.max_prompt_len} (the {{max_prompt_len}})", **words)
        if self.lengths[-1] != self.max_prompt_len:  # no step would use (or train) the positions past it
            raise BadSetting(f"the longest of the {{lengths}} ({self.lengths[-1]}) must be the {{max_prompt_len}} "
                             f"({self.max_prompt_len}): positions {self.lengths[-1] + 1}-{self.max_prompt_len} would "
                             "never be trained; add it to the {lengths} or lower the {max_prompt_len}", **words)
        self.check_training()
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise BadSetting(f"{{temperature}} must be a positive number, got {self.temperature}",
                             temperature="mixing temperature")
        if self.keep_checkpoints < 1:
            raise BadSetting(f"{{keep_checkpoints}} must be at least 1, got {self.keep_checkpoints}",
                             keep_checkpoints="keep_checkpoints")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tasks"], d["lengths"] = list(self.tasks), list(self.lengths)
        return d

    def run_key(self) -> dict:
        """The settings a resumed run must share with the checkpoint it continues."""
        return {k: v for k, v in self.to_dict().items() if k not in self.RUN_NEUTRAL}

    @classmethod
    def from_dict(cls, d: dict) -> "PretrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _bytes_of(state: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    # in memory: no TMPDIR to fill up (a full one lost the finished prompt)
    return save({k: v.detach().float().cpu().contiguous() for k, v in state.items()}, metadata=metadata)


def artifact_files(state: dict[str, torch.Tensor], config: dict) -> dict[str, bytes | str]:
    """``{file name: content}`` of the artifact; the JSON is last so that it lands last."""
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "ptv2_version": __version__} | config
    return {WEIGHTS: _bytes_of(state, {"format": FORMAT}), CONFIG: json.dumps(doc, indent=2, sort_keys=True) + "\n"}


def config_digest(prompt_dir: str | Path) -> str | None:
    """SHA-256 of the folder's ``prompt_config.json`` (None without one): what a record of its
    logged run, or a run started to replace it, names the prompt by."""
    import hashlib

    path = Path(prompt_dir) / CONFIG
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def started_from(init_dir: str | Path | None) -> dict[str, str]:
    """``{"init": DIR, "init_sha256": …}``: the pre-trained prompt an adapter started from, as every
    record of it names it (``ptv2 train --init``, a search's trials, the pipeline's final step): its
    folder as an absolute path and its weights' digest (``ptv2_core.provenance.file_digest``: a prompt
    pre-trained there again is another). No digest when the weights cannot be read (loading them
    says why); empty without a prompt."""
    if not init_dir:
        return {}
    from ptv2_core.provenance import file_digest

    folder = Path(init_dir).expanduser().resolve()
    try:
        return {"init": str(folder), "init_sha256": file_digest(folder / WEIGHTS)}
    except OSError:
        return {"init": str(folder)}


def read_pretrained_config(pretrained_dir: str | Path) -> dict:
    """The validated JSON of a pre-trained prompt folder (its values' types and ranges too: see
    ``adapter_schema.check_pretrained_config``)."""
    d = Path(pretrained_dir)
    path = d / CONFIG
    if not d.exists():
        raise Ptv2Error(f"pre-trained prompt folder '{d}' does not exist")
    if not path.is_file():
        if (d / CHECKPOINTS).is_dir():
            raise Ptv2Error(f"pre-training in '{d}' has not finished (checkpoints only): run the same "
                            "`ptv2 pretrain` command again to resume it")
        raise Ptv2Error(f"no pre-trained prompt at '{d}': {CONFIG} is missing{found_instead(d)}")
    return check_pretrained_config(read_config(path, FORMAT, FORMAT_VERSION, "pre-trained prompt",
                                               ("tasks", "lengths", "max_prompt_len", "prompt", "base_model")), path)


def read_pretrained_state(pretrained_dir: str | Path, config: dict | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a pre-trained prompt folder (``prefix.*``, ``heads.<i>.*``), checked
    (floating point, finite) and against ``config`` (default: the folder's, read and checked):
    every tensor its prompt and heads need, of the shape they need, and no other."""
    path = Path(pretrained_dir) / WEIGHTS
    if config is None:
        config = read_pretrained_config(pretrained_dir)
    try:
        state = load_file(str(path))
    except FileNotFoundError:
        raise Ptv2Error(f"pre-trained prompt '{pretrained_dir}' has no {WEIGHTS}") from None
    except Exception as e:  # safetensors raises its own types for truncated/garbled files
        raise Ptv2Error(f"corrupt pre-trained prompt weights '{path}': {e}") from None
    check_weights(state, path, "pre-trained prompt")
    _check_shapes(state, config, path)
    return state


def expected_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """``{tensor name: shape}`` that a pre-trained prompt of ``config`` (checked) holds: its prefix
    encoder's and, per task ``i``, its head's (built on the meta device: nothing is allocated)."""
    from ptv2_core.heads import Head, HeadConfig
    from ptv2_core.prefix import PrefixEncoder, PromptConfig

    with torch.device("meta"):
        modules = {"prefix": PrefixEncoder(PromptConfig.from_dict(config["prompt"]))}
        modules |= {f"heads.{i}": Head(HeadConfig.from_dict(t["head"])) for i, t in enumerate(config["tasks"])}
    return {f"{name}.{k}": tuple(v.shape) for name, m in modules.items() for k, v in m.state_dict().items()}


def _check_shapes(state: dict[str, torch.Tensor], config: dict, path: Path) -> None:
    """Refuse tensors that the config beside them does not describe (one of them edited by hand, or
    the two files from different prompts), naming the first that differs."""
    expected = expected_shapes(config)
    where = f"corrupt pre-trained prompt weights '{path}' (they do not match {CONFIG} beside them)"
    for key, shape in expected.items():
        if key not in state:
            raise Ptv2Error(f"{where}: tensor '{key}' is missing")
        if tuple(state[key].shape) != shape:
            raise Ptv2Error(f"{where}: tensor '{key}' has shape {list(state[key].shape)}, the config's "
                            f"{_part(key, config)} needs {list(shape)}")
    extra = sorted(set(state) - set(expected))
    if extra:
        raise Ptv2Error(f"{where}: tensor '{extra[0]}' is not part of the prompt or heads the config names")


def _part(key: str, config: dict) -> str:
    """What a tensor belongs to, in words: the prompt, or the head of a task named in ``config``."""
    if not key.startswith("heads."):
        return f"prompt (max_prompt_len {config['max_prompt_len']})"
    task = config["tasks"][int(key.split(".")[1])]
    return f"head of task '{task['spec']['name']}' ({task['head']['num_labels']} labels)"


def check_base(config: dict, actual_fingerprint: str, where: str | Path,
               actual_tokenizer: str | None = None) -> None:
    """Refuse a base model other than the one the prompt was pre-trained on: other weights, or
    (where the prompt records its fingerprint) another tokenizer, ``actual_tokenizer``."""
    base = config["base_model"]
    if actual_fingerprint != base.get("fingerprint"):
        raise Ptv2Error(
            f"pre-trained prompt '{where}' was trained on base model '{pinned_model_ref(base)}' with fingerprint "
            f"{str(base.get('fingerprint'))[:19]}…, but the given base has {actual_fingerprint[:19]}…: "
            "refusing a different base model"
        )
    check_tokenizer(base, actual_tokenizer, f"pre-trained prompt '{where}'")


def task_index(config: dict, task: str) -> int | None:
    """Index of ``task`` (its reference as given to pre-training, its spec name, or a task YAML
    whose ``name:`` is that name: the same file read from another path, as a search's trials read
    a copy in the shared folder) among the pre-training tasks; None when it did not take part."""
    from ptv2_core.tasks import task_name

    names = {task}
    try:
        names.add(task_name(task))
    except Ptv2Error:  # not a task reference (a bare name): compared as it is
        pass
    for i, t in enumerate(config["tasks"]):
        if t.get("ref") == task or t.get("spec", {}).get("name") in names:
            return i
    return None
