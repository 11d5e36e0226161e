"""Putting a PromptModel together for a task, with the checks a user needs to hear about."""
from __future__ import annotations

from torch import nn

from ptv2_core.backbone import as_model, checkpoint_lacks_pooler, geometry, has_pooler, load_config, pooler_untrained
from ptv2_core.cache import padding_idx
from ptv2_core.errors import Ptv2Error
from ptv2_core.heads import HeadConfig, check_pooling, default_pooling
from ptv2_core.model import PromptModel
from ptv2_core.prefix import PromptConfig
from ptv2_core.tasks import TaskSpec


def check_prompt_len(prompt_len: int, config, max_length: int) -> None:
    """A prompt must be positive; the text must fit the model's positions; with a sliding window,
    prompt and text must fit the window.

    Explicit position ids keep the prefix out of the position budget (the text keeps positions
    0..max_length-1 whatever the prompt length), so only the text counts against
    ``max_position_embeddings``; the prompt alone may be as long as the context. A sliding-window
    model (Mistral style) attends only to the last ``sliding_window`` keys: a prefix in front of a
    longer span is invisible to the later tokens.
    """
    if prompt_len <= 0:
        raise Ptv2Error(f"prompt length must be a positive integer, got {prompt_len}")
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    pad = padding_idx(config)
    if limit and pad is not None:  # positions count from padding_idx + 1
        limit -= pad + 1
    if limit and max_length > limit:
        # it comes from a task file, a packaged or hub task's default, or a search space's fixed: say where
        raise Ptv2Error(f"max length {max_length} is too long for this model: it has {limit} positions; lower it "
                        f"to at most {limit}: `max_length:` in the task file, or `max_length` under `fixed:` in a "
                        "search space (the only place for a packaged or hub task's own)")
    if limit and prompt_len > limit:  # a bound on memory and sense: more prefix keys than the model's context
        raise Ptv2Error(f"prompt length {prompt_len} is too long for this model: at most its context size, {limit}")
    window = getattr(config, "sliding_window", None)
    if isinstance(window, int) and window > 0 and prompt_len + max_length > window:
        raise Ptv2Error(
            f"prompt length {prompt_len} is too long for this model: it attends to the last {window} keys only, so "
            f"prompt + text ({max_length} tokens) must fit them, i.e. "
            + (f"a prompt of at most {window - max_length}" if window > max_length else "a lower max length")
        )


def check_model_pooling(model: str, pooling: str | None, config=None) -> None:
    """``pooling`` (None: the family's default, which every model runs) as the model named
    ``model`` can run it, from its config alone (``config``: it, loaded already) and, for a model
    folder, its checkpoint's header: a 'pooler' on a model without a pooler layer failed only at
    its first batch, after data and weights loaded; on a checkpoint without pooler weights it
    trained on a random pooler, with no error (a hub name is checked as it loads: ``build_model``)."""
    if pooling is None:
        return
    if pooling != "pooler":
        return check_pooling(pooling, True, model)
    config = load_config(model) if config is None else config
    geometry(config)  # an unsupported family is named as such, not built
    built = as_model(config)  # on the meta device, once for both questions
    layer = has_pooler(built)
    check_pooling(pooling, layer, model, pooler_untrained=layer and checkpoint_lacks_pooler(model, built))


def check_backbone_pooling(pooling: str, backbone: nn.Module, model: str | None = None) -> None:
    """``pooling`` as the loaded ``backbone`` can run it: a pooler layer, with its checkpoint's
    weights (what ``check_model_pooling`` cannot see from files: a hub model's). ``model``: its name
    in messages (else the config's)."""
    name = model or backbone.config.name_or_path or backbone.config.model_type
    check_pooling(pooling, has_pooler(backbone), name, pooler_untrained=pooler_untrained(backbone))


def build_model(
    backbone: nn.Module,
    spec: TaskSpec,
    prompt_len: int,
    *,
    max_length: int,
    reparam: bool = False,
    reparam_hidden: int = 512,
    prefix_dropout: float = 0.1,
    pooling: str | None = None,
    head_dropout: float = 0.1,
) -> PromptModel:
    """A PromptModel for ``spec`` on ``backbone`` with a fresh prompt and head."""
    geo = geometry(backbone.config)
    check_prompt_len(prompt_len, backbone.config, max_length)
    pooling = pooling or default_pooling(geo.family)
    check_backbone_pooling(pooling, backbone)
    prompt = PromptConfig(prompt_len, geo.num_layers, geo.num_kv_heads, geo.head_dim, reparam, reparam_hidden, prefix_dropout)
    head = HeadConfig(spec.type, len(spec.labels), geo.hidden_size, pooling, head_dropout)
    return PromptModel(backbone, prompt, head)
