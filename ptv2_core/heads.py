"""Task heads over the backbone's hidden states: pooling, sequence and token classification."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ptv2_core.errors import Ptv2Error

POOLINGS = ("cls", "pooler", "mean", "last")


@dataclass(frozen=True)
class HeadConfig:
    """``task_type`` is "sequence" or "token"; ``pooling`` applies to sequence heads only."""

    task_type: str
    num_labels: int
    hidden_size: int
    pooling: str = "mean"
    dropout: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "HeadConfig":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def default_pooling(family: str) -> str:
    """Mean over tokens for encoders (the packaged MiniLM is a mean-pooling sentence encoder:
    a probe on its [CLS] pooler reaches 41 % on TREC-6, on mean-pooled tokens 81 %);
    the last real token for causal decoders, the only one that has seen the whole text."""
    return "last" if family == "decoder" else "mean"


def check_pooling(pooling: str, has_pooler: bool, model: str, *, pooler_untrained: bool = False) -> None:
    """A ``Ptv2Error`` unless ``pooling`` is one of ``POOLINGS`` and the model ``model`` (a name for
    messages) can run it: 'pooler' needs a pooler layer (``backbone.has_pooler``), which BERT-like
    encoders have and DeBERTa-v2 and the decoders do not (it failed at the first batch), and its
    trained weights: a checkpoint saved without them (``pooler_untrained``) gets a random pooler
    from transformers, frozen, so the head would train on noise, with no error."""
    if pooling not in POOLINGS:
        raise Ptv2Error(f"unknown pooling '{pooling}': expected one of {', '.join(POOLINGS)}")
    others = ", ".join(p for p in POOLINGS if p != "pooler")
    if pooling == "pooler" and not has_pooler:
        raise Ptv2Error(f"model '{model}' has no pooler layer, so pooling 'pooler' cannot run on it; it supports {others}")
    if pooling == "pooler" and pooler_untrained:
        raise Ptv2Error(f"model '{model}' has a pooler layer but its checkpoint has no pooler weights (transformers "
                        "would initialise them randomly and they stay frozen), so pooling 'pooler' cannot be trained "
                        f"on it; it supports {others}")


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, how: str, pooler_output: torch.Tensor | None = None) -> torch.Tensor:
    """``[batch, seq, hidden]`` → ``[batch, hidden]``. Padding is on the right."""
    if how == "cls":
        return hidden[:, 0]
    if how == "pooler":
        if pooler_output is None:
            raise ValueError("pooling 'pooler' needs a backbone with a pooler layer")
        return pooler_output
    mask = attention_mask.to(hidden.dtype).unsqueeze(-1)
    if how == "mean":
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    if how == "last":
        last = attention_mask.long().sum(1).clamp(min=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"unknown pooling '{how}': expected one of {', '.join(POOLINGS)}")


class Head(nn.Module):
    """Dropout + linear. Sequence: ``[batch, hidden] → [batch, labels]`` after pooling;
    token: ``[batch, seq, hidden] → [batch, seq, labels]``."""

    def __init__(self, config: HeadConfig):
        super().__init__()
        if config.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling '{config.pooling}': expected one of {', '.join(POOLINGS)}")
        self.config = config
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor, pooler_output: torch.Tensor | None = None) -> torch.Tensor:
        if self.config.task_type == "sequence":
            hidden = pool(hidden, attention_mask, self.config.pooling, pooler_output)
        return self.classifier(self.dropout(hidden))
