"""Starting a single-task prompt from a pre-trained one: its first L positions (and the task's head).

Used as ``train(cfg, init=functools.partial(init_from_pretrained, pretrained_dir=DIR, task=cfg.task))``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from ptv2_core.backbone import base_tokenizer_fingerprint, fingerprint, geometry
from ptv2_core.errors import Ptv2Error
from ptv2_core.heads import HeadConfig
from ptv2_core.model import PromptModel
from ptv2_core.multitask.pretrained import check_base, read_pretrained_config, read_pretrained_state, task_index
from ptv2_core.prefix import PromptConfig
from ptv2_core.tasks import TaskSpec

# head settings that must agree for a pre-trained head to mean the same thing in the new model
_HEAD_KEYS = ("task_type", "num_labels", "hidden_size", "pooling")


def init_from_pretrained(model: PromptModel, spec: TaskSpec | None = None, *, pretrained_dir: str | Path,
                         prompt_len: int | None = None, task: str | None = None, seed: int | None = None,
                         note: bool = False) -> None:
    """Copy the first ``prompt_len`` positions of a pre-trained prompt into ``model``'s prompt.

    ``prompt_len`` defaults to the model's own prompt length. With ``task`` (a pre-training
    task's reference, e.g. ``"trec"``, or its name) that took part in pre-training, its head is
    copied too when the head configs agree (type, number of labels, width, pooling) and, with
    ``spec`` (the task being trained, as ``train`` passes it), its label names in the same order
    (a task YAML of the same name with other or reordered labels would get a head whose outputs
    mean other classes); otherwise the head stays fresh, which ``note`` (``ptv2 train --init``; not
    a search's every trial) says on stderr. ``seed``, when given, must be the
    pre-training seed for a task that took part:
    data splits are seeded, and another seed would put rows the prompt was trained on into this
    task's dev and test splits.

    Raises Ptv2Error for another base model (weight fingerprint), ``prompt_len`` beyond the
    pre-trained ``max_prompt_len`` or the model's own length, or a different reparameterization.
    """
    config = read_pretrained_config(pretrained_dir)
    check_base(config, fingerprint(model.backbone), pretrained_dir, base_tokenizer_fingerprint(model.backbone))
    pre = PromptConfig.from_dict(config["prompt"])
    own = model.prompt_config
    n = own.prompt_len if prompt_len is None else prompt_len
    check_init(config, pretrained_dir, n, task=task, seed=seed, reparam=own.reparam,
               reparam_hidden=own.reparam_hidden)
    if n > own.prompt_len:
        raise Ptv2Error(f"cannot copy {n} pre-trained positions into a prompt of length {own.prompt_len}")
    if (pre.num_layers, pre.num_kv_heads, pre.head_dim) != (own.num_layers, own.num_kv_heads, own.head_dim):
        raise Ptv2Error(f"pre-trained prompt '{pretrained_dir}' has another shape (layers/heads) than the model's")
    idx = task_index(config, task) if task is not None else None
    state = read_pretrained_state(pretrained_dir, config)
    with torch.no_grad():
        src = state.get("prefix.embedding.weight")
        if src is None or src.shape[0] < n or src.shape[1:] != model.prefix.embedding.weight.shape[1:]:
            raise Ptv2Error(f"pre-trained prompt '{pretrained_dir}' weights do not match its config")
        model.prefix.embedding.weight[:n].copy_(src[:n])
        if own.reparam:  # the MLP is position-wise: shared by every prefix length, copied whole
            model.prefix.mlp.load_state_dict({k[len("prefix.mlp."):]: v for k, v in state.items() if k.startswith("prefix.mlp.")})
        fresh = None  # why the head is not copied
        if idx is not None:
            head = HeadConfig.from_dict(config["tasks"][idx]["head"])
            same_labels = spec is None or tuple(spec.labels) == tuple(config["tasks"][idx]["spec"]["labels"])
            other = [k for k in _HEAD_KEYS if getattr(head, k) != getattr(model.head_config, k)]
            if same_labels and not other:
                model.head.load_state_dict({k[len(f"heads.{idx}."):]: v for k, v in state.items()
                                            if k.startswith(f"heads.{idx}.")})
            else:
                fresh = ("with other labels or another label order" if not same_labels else
                         "with another head (" + ", ".join(f"{k} {getattr(head, k)}, not {getattr(model.head_config, k)}"
                                                          for k in other) + ")")
                fresh = f"took part in pre-training the prompt in '{pretrained_dir}' {fresh}"
        elif task is not None:
            names = ", ".join(t["spec"]["name"] for t in config["tasks"])
            fresh = f"took no part in pre-training the prompt in '{pretrained_dir}' (tasks {names})"
    if note and fresh is not None:
        print(f"note: task '{task}' {fresh}: its first {n} positions are copied, its head starts fresh",
              file=sys.stderr, flush=True)


@dataclass(frozen=True)
class InitWords:
    """How a refusal of ``check_init``/``check_init_base`` tells its reader what to change: who runs
    with the settings (``who``), and the fix for another data seed (``seed_fix``, with ``{seed}``:
    the pre-training's), another reparameterization (``reparam_fix``, with ``{reparam}``: the
    prompt's, ``true``/``false``) and another base model (``base_fix``). ``TRAIN_WORDS``: ``ptv2
    train --init``'s; a search's plan words them for its space and trials."""

    who: str
    seed_fix: str
    reparam_fix: str
    base_fix: str


TRAIN_WORDS = InitWords(who="the model", seed_fix="use seed {seed}",
                        reparam_fix="pre-train and train with the same --reparam setting",
                        base_fix="train with the model it was pre-trained on, or pre-train one on this model")


def check_init(config: dict, pretrained_dir: str | Path, prompt_len, *, task: str | None = None,
               seed: int | None = None, reparam: bool | None = None, reparam_hidden: int | None = None,
               words: InitWords = TRAIN_WORDS) -> None:
    """The checks of ``init_from_pretrained`` that need only the prompt's config (read with
    ``read_pretrained_config``), not the model: a prompt length beyond ``max_prompt_len``
    (``prompt_len`` None: not checked), another data seed for a task that took part, another
    reparameterization (``reparam`` None: not checked). ``train --init`` runs them before any data
    or weights load: a wrong --prompt-len or --seed is told at once, not after the task and the
    model have loaded; a search's plan, before its study exists (``words``: its advice)."""
    pre = PromptConfig.from_dict(config["prompt"])
    if prompt_len is not None:
        if isinstance(prompt_len, bool) or not isinstance(prompt_len, int) or prompt_len <= 0:
            raise Ptv2Error(f"prompt length must be a positive integer, got {prompt_len!r}")
        if prompt_len > pre.prompt_len:
            raise Ptv2Error(f"prompt length {prompt_len} is longer than the pre-trained prompt in '{pretrained_dir}' "
                            f"(max_prompt_len {pre.prompt_len})")
    if reparam is not None and (pre.reparam != reparam or (reparam and pre.reparam_hidden != reparam_hidden)):
        def form(on: bool, hidden) -> str:
            return f"MLP reparameterization (hidden {hidden})" if on else "no reparameterization"
        fix = words.reparam_fix.format(reparam=str(pre.reparam).lower())
        raise Ptv2Error(f"pre-trained prompt '{pretrained_dir}' uses {form(pre.reparam, pre.reparam_hidden)}, "
                        f"{words.who} {form(reparam, reparam_hidden)}: {fix}")
    idx = task_index(config, task) if task is not None else None
    if idx is not None and seed is not None:
        pre_seed = config.get("pretrain_config", {}).get("seed")
        if pre_seed is not None and seed != pre_seed:
            raise Ptv2Error(f"task '{task}' took part in pre-training with data seed {pre_seed}; training it with "
                            f"seed {seed} would score it on rows the prompt was trained on: "
                            f"{words.seed_fix.format(seed=pre_seed)}")


def check_init_base(config: dict, pretrained_dir: str | Path, model: str, model_config,
                    words: InitWords = TRAIN_WORDS) -> None:
    """Refuse a base model of another shape (family, layers, heads) than the one the prompt was
    pre-trained on, from the prompt's config and the model's (``load_config``): no weights load.
    The same shape with other weights is refused by ``init_from_pretrained``, on the weights'
    fingerprint. A prompt that does not record its base's family is not checked here."""
    base, prompt = config.get("base_model", {}), config.get("prompt", {})
    geo = geometry(model_config)
    want = (base.get("model_type"), prompt.get("num_layers"), prompt.get("num_kv_heads"), prompt.get("head_dim"))
    have = (model_config.model_type, geo.num_layers, geo.num_kv_heads, geo.head_dim)
    if None not in want and want != have:
        def shape(s: tuple) -> str:
            return f"{s[0]}, {s[1]} layers, {s[2]} heads of {s[3]}"
        raise Ptv2Error(f"the pre-trained prompt in '{pretrained_dir}' was pre-trained on base model "
                        f"'{base.get('name')}' ({shape(want)}); model '{model}' is {shape(have)}: {words.base_fix}")
