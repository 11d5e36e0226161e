"""Loading a pre-trained prompt with its heads, and scoring every pre-training task at every length."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ptv2_core.artifact_json import check_prompt_fits
from ptv2_core.backbone import fingerprint, geometry, load_backbone, pinned_model_ref, used_tokenizer_fingerprint
from ptv2_core.errors import Ptv2Error
from ptv2_core.settings import BadSetting
from ptv2_core.evaluate import evaluate
from ptv2_core.heads import HeadConfig
from ptv2_core.memory import place
from ptv2_core.multitask.model import MultiTaskPromptModel
from ptv2_core.multitask.pretrained import check_base, read_pretrained_config, read_pretrained_state
from ptv2_core.precision import pretrained_bf16
from ptv2_core.prefix import PromptConfig
from ptv2_core.tasks import TaskSpec, load_task
from ptv2_core.tasks.encode import Collator, encode, prepare_tokenizer


@dataclass
class LoadedPretrained:
    model: MultiTaskPromptModel
    tokenizer: object
    specs: list[TaskSpec]
    config: dict


def load_pretrained(pretrained_dir: str | Path, backbone: nn.Module | None = None, tokenizer=None,
                    device: str | torch.device = "cpu") -> LoadedPretrained:
    """Rebuild the multi-task model of a pre-trained prompt folder on its base model.

    ``backbone``/``tokenizer`` default to loading the base named in the config; its weight
    fingerprint must be the recorded one.
    """
    config = read_pretrained_config(pretrained_dir)
    state = read_pretrained_state(pretrained_dir, config)  # a broken file fails before any base model loads
    if backbone is None:
        name = pinned_model_ref(config["base_model"])  # a hub model at the commit it was pre-trained on
        try:
            backbone, tokenizer = load_backbone(name)
        except Ptv2Error as e:  # the user named no model: say it is the prompt's recorded base
            raise Ptv2Error(f"pre-trained prompt '{pretrained_dir}': its base model '{name}' cannot be loaded here: "
                            f"{e}") from None
    check_base(config, fingerprint(backbone), pretrained_dir, used_tokenizer_fingerprint(backbone, tokenizer))
    try:
        prompt = PromptConfig.from_dict(config["prompt"])
        specs = [TaskSpec.from_dict(t["spec"]) for t in config["tasks"]]
        heads = {s.name: HeadConfig.from_dict(t["head"]) for s, t in zip(specs, config["tasks"])}
    except (TypeError, KeyError, ValueError) as e:
        raise Ptv2Error(f"corrupt pre-trained prompt config in '{pretrained_dir}': {e}") from None
    check_prompt_fits(prompt, geometry(backbone.config), f"pre-trained prompt '{pretrained_dir}'")
    model = MultiTaskPromptModel(backbone, prompt, heads)
    expected = model.trainable_state()
    if set(state) != set(expected) or any(state[k].shape != expected[k].shape for k in expected):
        raise Ptv2Error(f"pre-trained prompt '{pretrained_dir}' tensors do not match its config")
    model.load_trainable_state(state)
    place(model, device).eval()
    return LoadedPretrained(model, prepare_tokenizer(tokenizer) if tokenizer is not None else None, specs, config)


def parse_lengths(text: str) -> list[int]:
    """``"16,4,8"`` → ``[4, 8, 16]`` (sorted); Ptv2Error on anything else, a length listed twice
    or an empty item (``4,,8``: a typo, not two lengths) too."""
    items = [x.strip() for x in text.split(",")]
    if "" in items:
        raise BadSetting(f"{{lengths}} has an empty item in '{text}': give comma-separated lengths, none empty",
                         lengths="lengths")
    try:
        listed = [int(x) for x in items]
    except ValueError:
        raise BadSetting(f"{{lengths}} must be comma-separated integers, got '{text}'", lengths="lengths") from None
    twice = sorted({x for x in listed if listed.count(x) > 1})
    if twice:  # as the pipeline's config refuses them: a typo more often than a wish
        raise BadSetting(f"{{lengths}} listed twice: {', '.join(map(str, twice))}", lengths="lengths")
    values = sorted(listed)
    if values[0] <= 0:
        raise BadSetting(f"{{lengths}} must be positive integers, got '{text}'", lengths="lengths")
    return values


def scored_lengths(config: dict, lengths: list[int] | None = None) -> list[int]:
    """The lengths ``evaluate_pretrained`` scores a prompt of ``config`` at: ``lengths`` sorted
    (default: the pre-training candidates); a Ptv2Error for one outside 1..max_prompt_len."""
    lengths = sorted(set(lengths or config["lengths"]))
    bad = [n for n in lengths if not 0 < n <= config["max_prompt_len"]]
    if bad:
        raise Ptv2Error(f"prompt lengths {bad} are outside 1..{config['max_prompt_len']} (the pre-trained max_prompt_len)")
    return lengths


def evaluate_pretrained(pretrained: str | Path | LoadedPretrained, lengths: list[int] | None = None, *,
                        seed: int | None = None, max_eval: int | None = None, batch_size: int = 128,
                        device: str | torch.device = "cpu") -> dict:
    """Dev metrics of every pre-training task at every prompt length, with no further training.

    ``lengths`` defaults to the pre-training candidates; ``seed`` (the data split seed) to the
    pre-training one, so that dev rows are rows the prompt was not trained on. On CUDA it scores in
    the precision pre-training recorded (``pretrained_bf16``).
    Returns ``{"lengths", "seed", "base_model", "tasks": {name: {"metric", "dev": {length: metrics}}}}``.
    """
    config = pretrained.config if isinstance(pretrained, LoadedPretrained) else read_pretrained_config(pretrained)
    lengths = scored_lengths(config, lengths)  # checked before any weights load
    loaded = pretrained if isinstance(pretrained, LoadedPretrained) else load_pretrained(pretrained, device=device)
    seed = config.get("pretrain_config", {}).get("seed", 0) if seed is None else seed
    model_device = next(loaded.model.parameters()).device
    bf16 = pretrained_bf16(config)
    out = {"lengths": lengths, "seed": seed, "base_model": config["base_model"]["name"], "tasks": {}}
    for task, spec in zip(config["tasks"], loaded.specs):
        got, data = load_task(task["ref"], seed=seed, max_train=1, max_eval=max_eval)
        if got.type != spec.type or tuple(got.labels) != tuple(spec.labels):
            raise Ptv2Error(f"task '{task['ref']}' now has other labels than when the prompt was pre-trained")
        dev = encode(data["dev"], loaded.tokenizer, spec)
        collator = Collator(loaded.tokenizer, spec)
        view = loaded.model.task_model(spec.name)
        scores = {str(n): evaluate(view, dev, spec, collator, model_device, batch_size, prompt_len=n,
                                   bf16=bf16, batch_option="--batch-size") for n in lengths}
        out["tasks"][spec.name] = {"metric": spec.metric, "dev": scores}
    return out
