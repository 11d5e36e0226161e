"""Prefix attention for backbones whose forward takes no key/value cache (DeBERTa-v2, MPNet).

Used only through :func:`ptv2_core.cache.prefix_injection`, the single entry point for prefixes.

For these families the prefix enters each self-attention module directly: while
:func:`installed` is active, every attention module of the backbone runs a replacement forward
that scores the queries against the layer's prefix keys with the layer's own scale, puts those
scores in front of the text's scores (relative-position terms apply to text keys only: the
prefix has no position), masks the prefix columns (all visible, or all masked out) and puts the
prefix values in front of the text's values. With the prefix masked out the result is the plain
backbone's exactly (its softmax weight is ``exp(finfo.min) = 0``).

The replacement forwards mirror transformers 5.24's ``DisentangledSelfAttention.forward`` and
``MPNetSelfAttention.forward``; the masked-prefix test catches any drift in a later version.
"""
from __future__ import annotations

import math
import threading
import weakref
from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import nn

from ptv2_core.errors import Ptv2Error

Prefix = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: [batch, heads, prefix_len, head_dim]


def _prefix_columns(mask_shape: torch.Size, plen: int, visible: bool, device) -> torch.Tensor:
    """Boolean prefix columns for a ``[..., q_len, k_len]`` mask: ``[..., q_len, plen]``."""
    return torch.full((*mask_shape[:-1], plen), visible, dtype=torch.bool, device=device)


def _deberta_v2_forward(attn: nn.Module, pk: torch.Tensor, pv: torch.Tensor, visible: bool) -> Callable:
    """``DisentangledSelfAttention.forward`` with a prefix. q, k, v are ``[batch*heads, len, dim]``."""
    from transformers.models.deberta_v2.modeling_deberta_v2 import scaled_size_sqrt

    heads, plen = attn.num_attention_heads, pk.shape[2]
    # [B, H, P, D] -> [B*H, P, D]: the batch-major, head-minor order of transpose_for_scores
    pk_flat, pv_flat = pk.reshape(-1, plen, pk.shape[-1]), pv.reshape(-1, plen, pv.shape[-1])

    def forward(hidden_states, attention_mask, output_attentions=False, query_states=None,
                relative_pos=None, rel_embeddings=None):
        if query_states is None:
            query_states = hidden_states
        q = attn.transpose_for_scores(attn.query_proj(query_states), heads)
        k = attn.transpose_for_scores(attn.key_proj(hidden_states), heads)
        v = attn.transpose_for_scores(attn.value_proj(hidden_states), heads)
        scale_factor = 1 + ("c2p" in attn.pos_att_type) + ("p2c" in attn.pos_att_type)
        scale = scaled_size_sqrt(q, scale_factor).to(dtype=q.dtype)
        scores = torch.bmm(q, k.transpose(-1, -2) / scale)
        if attn.relative_attention:  # disentangled c2p/p2c terms: text keys only
            rel = attn.disentangled_attention_bias(q, k, relative_pos, attn.pos_dropout(rel_embeddings), scale_factor)
            scores = scores + rel
        prefix_scores = torch.bmm(q, pk_flat.to(q.dtype).transpose(-1, -2) / scale)
        scores = torch.cat([prefix_scores, scores], dim=-1)
        scores = scores.view(-1, heads, scores.size(-2), scores.size(-1))
        mask = attention_mask.bool()
        mask = torch.cat([_prefix_columns(mask.shape, plen, visible, mask.device), mask], dim=-1)
        scores = scores.masked_fill(~mask, torch.finfo(q.dtype).min)
        probs = attn.dropout(nn.functional.softmax(scores, dim=-1))
        context = torch.bmm(probs.view(-1, probs.size(-2), probs.size(-1)), torch.cat([pv_flat.to(v.dtype), v], dim=1))
        context = context.view(-1, heads, context.size(-2), context.size(-1)).permute(0, 2, 1, 3).contiguous()
        context = context.view(context.size()[:-2] + (-1,))
        return (context, probs if output_attentions else None)

    return forward


def _mpnet_forward(attn: nn.Module, pk: torch.Tensor, pv: torch.Tensor, visible: bool) -> Callable:
    """``MPNetSelfAttention.forward`` with a prefix. q, k, v are ``[batch, heads, len, dim]``;
    the mask arrives additive (``[B, 1, T, T]`` float) or as None (no padding)."""
    plen = pk.shape[2]

    def forward(hidden_states, attention_mask=None, position_bias=None, output_attentions=False, **kwargs):
        shape = (*hidden_states.shape[:-1], -1, attn.attention_head_size)
        q = attn.q(hidden_states).view(shape).transpose(1, 2)
        k = attn.k(hidden_states).view(shape).transpose(1, 2)
        v = attn.v(hidden_states).view(shape).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(attn.attention_head_size)
        if position_bias is not None:  # relative bias: text keys only
            scores = scores + position_bias
        if attention_mask is not None:
            scores = scores + attention_mask
        prefix_scores = torch.matmul(q, pk.to(q.dtype).transpose(-1, -2)) / math.sqrt(attn.attention_head_size)
        if not visible:
            prefix_scores = torch.full_like(prefix_scores, torch.finfo(q.dtype).min)
        probs = attn.dropout(nn.functional.softmax(torch.cat([prefix_scores, scores], dim=-1), dim=-1))
        c = torch.matmul(probs, torch.cat([pv.to(v.dtype), v], dim=2))
        c = c.permute(0, 2, 1, 3).contiguous().view(*hidden_states.shape[:-1], attn.all_head_size)
        o = attn.o(c)
        return (o, probs) if output_attentions else (o,)

    return forward


# model type -> (the backbone's self-attention modules in layer order, replacement-forward factory)
HOOKS: dict[str, tuple[Callable[[nn.Module], list[nn.Module]], Callable]] = {
    "deberta-v2": (lambda bb: [layer.attention.self for layer in bb.encoder.layer], _deberta_v2_forward),
    "mpnet": (lambda bb: [layer.attention.attn for layer in bb.encoder.layer], _mpnet_forward),
}

# One forward at a time per backbone: the replacement lives on shared modules.
_locks: "weakref.WeakKeyDictionary[nn.Module, threading.RLock]" = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def _lock_for(backbone: nn.Module) -> threading.RLock:
    with _locks_guard:
        return _locks.setdefault(backbone, threading.RLock())


@contextmanager
def installed(backbone: nn.Module, prefix: Prefix, prefix_visible: bool) -> Iterator[None]:
    """Run every self-attention of ``backbone`` with its layer's prefix until the block exits.

    The originals are restored on exit, exceptions included. Gradients still flow to the prefix
    afterwards: the autograd graph holds the prefix tensors, not the hook.
    """
    modules_of, make_forward = HOOKS[backbone.config.model_type]
    modules = modules_of(backbone)
    if len(prefix) != len(modules):
        raise Ptv2Error(f"prefix has {len(prefix)} layers, the backbone {len(modules)}")
    for attn, (pk, _) in zip(modules, prefix):
        want = (attn.num_attention_heads, attn.attention_head_size)
        if tuple(pk.shape[1:2]) + tuple(pk.shape[3:]) != want:
            raise Ptv2Error(f"prefix heads × head_dim {tuple(pk.shape[1:2]) + tuple(pk.shape[3:])} != attention's {want}")
    with _lock_for(backbone):
        saved = [attn.__dict__.get("forward") for attn in modules]  # an instance forward someone else set
        try:
            for attn, (pk, pv) in zip(modules, prefix):
                attn.forward = make_forward(attn, pk, pv, prefix_visible)
            yield
        finally:
            for attn, prev in zip(modules, saved):
                if prev is None:
                    attn.__dict__.pop("forward", None)
                else:
                    attn.forward = prev
