"""Prefix injection: everything that turns prefix tensors into backbone inputs, in one place.

Entry point: :func:`run_backbone` (or :func:`prefix_injection` for the keyword arguments and the
scope they are valid in). Each model type has one strategy (:func:`strategy`):
- "cache": the backbone's forward takes a key/value cache (BERT, RoBERTa, GPT-2, Llama, Qwen…);
- "hook": it takes none (DeBERTa-v2, MPNet in transformers 5.x), so the prefix enters through a
  replacement attention forward, installed for one backbone call (``attention_hooks``).

transformers 5.x takes a per-layer prefix as a ``DynamicCache`` (never legacy tuples). Rules:
- build a new cache every forward pass: the model appends the step's keys/values to it in place;
- the keyword is ``cache`` from 5.24 on, ``past_key_values`` before (detected from the signature);
- the attention mask gets ``prefix_len`` columns in front (ones, or zeros to mask the prefix out);
- position ids are passed explicitly, so absolute-position models (BERT, RoBERTa, GPT-2) do not
  shift the text by ``prefix_len`` and the prefix does not eat the position budget;
- gradient checkpointing re-runs layers without the cache, silently dropping the prefix: refused.
"""
from __future__ import annotations

import inspect
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn
from transformers import DynamicCache

from ptv2_core import attention_hooks
from ptv2_core.errors import Ptv2Error

# Model types whose position ids count from padding_idx + 1 over non-pad tokens (fairseq style).
_PADDING_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "camembert", "longformer", "mpnet"}


def padding_idx(config) -> int | None:
    """The padding index a fairseq-style model counts its positions from (they start at
    ``padding_idx + 1``), or None for a model whose positions start at 0."""
    if config.model_type not in _PADDING_OFFSET_POSITIONS:
        return None
    # MPNet's embeddings hard-code padding_idx 1, whatever the config says
    return 1 if config.model_type == "mpnet" else (config.pad_token_id or 0)


def strategy(model_type: str) -> str:
    """How a prefix enters this model type: "cache" (forward keyword) or "hook" (attention)."""
    return "hook" if model_type in attention_hooks.HOOKS else "cache"


# forward class -> its cache keyword (or None). A plain dict, not lru_cache: torch.compile reads a
# dict hit as a constant, but traces through lru_cache wrappers (re-running inspect, with a warning).
_CACHE_KEYWORDS: dict[type, str | None] = {}


def _cache_keyword_for(forward_cls: type) -> str | None:
    if forward_cls not in _CACHE_KEYWORDS:
        params = inspect.signature(forward_cls.forward).parameters
        _CACHE_KEYWORDS[forward_cls] = next((n for n in ("cache", "past_key_values") if n in params), None)
    return _CACHE_KEYWORDS[forward_cls]


def cache_keyword(backbone: nn.Module) -> str:
    """The forward keyword that takes a cache in the installed transformers."""
    kw = _cache_keyword_for(type(backbone))
    if kw is None:
        raise Ptv2Error(f"model type '{backbone.config.model_type}' takes no key/value cache in its forward")
    return kw


def build_cache(prefix: list[tuple[torch.Tensor, torch.Tensor]], config) -> DynamicCache:
    """A fresh cache holding one (key, value) prefix per layer."""
    return DynamicCache(ddp_cache_data=prefix, config=config)


def position_ids(backbone: nn.Module, attention_mask: torch.Tensor) -> torch.Tensor:
    """Text positions as the model would number them without a prefix (right padding)."""
    pad = padding_idx(backbone.config)
    if pad is not None:
        mask = attention_mask.long()
        return torch.cumsum(mask, dim=1) * mask + pad
    seq = attention_mask.shape[1]
    return torch.arange(seq, device=attention_mask.device).unsqueeze(0).expand(attention_mask.shape[0], -1)


def check_no_gradient_checkpointing(backbone: nn.Module) -> None:
    """Refuse gradient checkpointing: it re-runs layers without the cache, so the prefix
    would get no gradient and no error."""
    # transformers 5.x renamed the flag; read the new one, fall back to the old
    name = "is_activation_checkpointing" if hasattr(type(backbone), "is_activation_checkpointing") else "is_gradient_checkpointing"
    if getattr(backbone, name, False):
        raise Ptv2Error(
            "gradient checkpointing is on in the backbone: it drops the prefix cache, so the prompt "
            "would silently get no gradient; call backbone.gradient_checkpointing_disable()"
        )


def prefix_inputs(
    backbone: nn.Module,
    attention_mask: torch.Tensor,
    prefix: list[tuple[torch.Tensor, torch.Tensor]],
    prefix_visible: bool = True,
) -> dict:
    """Keyword arguments that feed ``prefix`` into a "cache"-strategy ``backbone`` alongside the text.

    ``attention_mask`` is the text's ``[batch, seq]`` mask. With ``prefix_visible=False`` the
    prefix columns are masked out, which must reproduce the plain backbone exactly.
    Works for every family through :func:`prefix_injection` / :func:`run_backbone`.
    """
    check_no_gradient_checkpointing(backbone)
    if strategy(backbone.config.model_type) != "cache":
        raise Ptv2Error(
            f"model type '{backbone.config.model_type}' takes its prefix through attention hooks, "
            "not forward keywords: use ptv2_core.cache.prefix_injection or run_backbone"
        )
    batch, plen = attention_mask.shape[0], prefix[0][0].shape[2]
    fill = torch.ones if prefix_visible else torch.zeros
    prefix_mask = fill(batch, plen, dtype=attention_mask.dtype, device=attention_mask.device)
    return {
        cache_keyword(backbone): build_cache(prefix, backbone.config),
        "attention_mask": torch.cat([prefix_mask, attention_mask], dim=1),
        "position_ids": position_ids(backbone, attention_mask),
        "use_cache": False,
    }


@contextmanager
def prefix_injection(
    backbone: nn.Module,
    attention_mask: torch.Tensor,
    prefix: list[tuple[torch.Tensor, torch.Tensor]],
    prefix_visible: bool = True,
) -> Iterator[dict]:
    """Yield the keyword arguments for one ``backbone(input_ids=..., **kwargs)`` call inside the
    block, on every family: for "hook" families the prefix attention is installed for the block
    (and removed on exit, exceptions included); for "cache" families this is :func:`prefix_inputs`."""
    if strategy(backbone.config.model_type) == "cache":
        yield prefix_inputs(backbone, attention_mask, prefix, prefix_visible)
        return
    check_no_gradient_checkpointing(backbone)
    with attention_hooks.installed(backbone, prefix, prefix_visible):
        yield {"attention_mask": attention_mask, "position_ids": position_ids(backbone, attention_mask)}


def run_backbone(
    backbone: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    prefix: list[tuple[torch.Tensor, torch.Tensor]],
    prefix_visible: bool = True,
):
    """``backbone``'s output on ``input_ids`` with ``prefix`` in every layer (any supported family)."""
    with prefix_injection(backbone, attention_mask, prefix, prefix_visible) as kwargs:
        return backbone(input_ids=input_ids, **kwargs)
