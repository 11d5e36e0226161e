"""The trainable prefix: one key and one value vector per layer and prompt position.

P-Tuning v2 stores the prefix as a plain embedding (``reparam=False``); prefix-tuning passes a
smaller embedding through an MLP (``reparam=True``). Both are this one module behind one switch,
and :meth:`PrefixEncoder.fold` turns the MLP form into the flat form for export and serving.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
from torch import nn


@dataclass(frozen=True)
class PromptConfig:
    """Shape and form of a deep prompt.

    ``num_kv_heads`` is the model's key/value head count (smaller than the query head count
    for grouped-query attention); ``head_dim`` the per-head width.
    """

    prompt_len: int
    num_layers: int
    num_kv_heads: int
    head_dim: int
    reparam: bool = False  # False: P-Tuning v2 (plain embedding); True: prefix-tuning (MLP)
    reparam_hidden: int = 512
    dropout: float = 0.1  # as in the original P-Tuning v2 code

    @property
    def width(self) -> int:
        """Values per prompt position: layers × (key, value) × kv heads × head dim."""
        return self.num_layers * 2 * self.num_kv_heads * self.head_dim

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PromptConfig":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


class PrefixEncoder(nn.Module):
    """Maps prompt positions to per-layer key/value prefixes.

    ``forward(batch_size, length)`` returns ``num_layers`` pairs ``(key, value)``, each of shape
    ``[batch_size, num_kv_heads, length, head_dim]``. ``length`` defaults to ``prompt_len``; a
    shorter length takes the first ``length`` positions (nested prompts, see multitask).
    """

    def __init__(self, config: PromptConfig):
        super().__init__()
        if config.prompt_len <= 0:
            raise ValueError(f"prompt length must be positive, got {config.prompt_len}")
        self.config = config
        if config.reparam:
            # prefix-tuning: a token-sized embedding re-parameterised by a 2-layer MLP
            embed_dim = config.num_kv_heads * config.head_dim
            self.embedding = nn.Embedding(config.prompt_len, embed_dim)
            self.mlp: nn.Module | None = nn.Sequential(
                nn.Linear(embed_dim, config.reparam_hidden),
                nn.Tanh(),
                nn.Linear(config.reparam_hidden, config.width),
            )
        else:
            # P-Tuning v2: the prefix itself is the parameter (N(0, 1) init, as in the original)
            self.embedding = nn.Embedding(config.prompt_len, config.width)
            self.mlp = None
        self.dropout = nn.Dropout(config.dropout)

    def flat(self, length: int | None = None) -> torch.Tensor:
        """The prefix as ``[length, width]``, before dropout."""
        length = self.config.prompt_len if length is None else length
        if not 0 < length <= self.config.prompt_len:
            raise ValueError(f"prefix length {length} outside 1..{self.config.prompt_len}")
        x = self.embedding.weight[:length]
        return self.mlp(x) if self.mlp is not None else x

    def forward(self, batch_size: int, length: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        c = self.config
        flat = self.flat(length)
        length = flat.shape[0]
        # [L, layers*2*H*D] -> [layers*2, H, L, D], then broadcast over the batch (a view, no copy)
        kv = flat.view(length, c.num_layers * 2, c.num_kv_heads, c.head_dim).permute(1, 2, 0, 3)
        # dropout after the broadcast: each example draws its own mask, as in the original's
        # get_prompt (one mask for the batch would drop the same entries for every example); in
        # eval mode, or with p = 0, the view stays a view
        kv = self.dropout(kv.unsqueeze(1).expand(-1, batch_size, -1, -1, -1))
        return [(kv[2 * i], kv[2 * i + 1]) for i in range(c.num_layers)]

    @torch.no_grad()
    def fold(self) -> "PrefixEncoder":
        """A flat (``reparam=False``) encoder whose prefix equals this one's MLP output."""
        folded = PrefixEncoder(replace(self.config, reparam=False))
        folded.embedding.weight.copy_(self.flat())
        return folded.to(self.embedding.weight.device).train(self.training)
