"""PromptModel: a frozen backbone, a trainable deep prompt and a task head."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ptv2_core.cache import run_backbone
from ptv2_core.heads import Head, HeadConfig
from ptv2_core.prefix import PrefixEncoder, PromptConfig


@dataclass
class PromptOutput:
    logits: torch.Tensor  # sequence: [batch, labels]; token: [batch, seq, labels]
    loss: torch.Tensor | None = None


class PromptModel(nn.Module):
    """P-Tuning v2 around any supported backbone (see ``backbone.FAMILIES``).

    ``forward(input_ids [B, T], attention_mask [B, T], labels?)``: the prefix enters every
    layer as a key/value cache; only ``prefix`` and ``head`` have trainable parameters.
    ``prompt_len`` uses only the first positions of the prompt (nested prompts);
    ``prefix_visible=False`` masks the prefix out (the output is then the plain backbone's).
    """

    def __init__(self, backbone: nn.Module, prompt: PromptConfig, head: HeadConfig):
        super().__init__()
        self.backbone = backbone
        self.prefix = PrefixEncoder(prompt)
        self.head = Head(head)
        for p in self.backbone.parameters():
            p.requires_grad_(False)

    @property
    def prompt_config(self) -> PromptConfig:
        return self.prefix.config

    @property
    def head_config(self) -> HeadConfig:
        return self.head.config

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
        prompt_len: int | None = None,
        prefix_visible: bool = True,
    ) -> PromptOutput:
        prefix = self.prefix(input_ids.shape[0], prompt_len)
        out = run_backbone(self.backbone, input_ids, attention_mask, prefix, prefix_visible)
        pooler = getattr(out, "pooler_output", None)
        logits = self.head(out.last_hidden_state, attention_mask, pooler)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100)
        return PromptOutput(logits=logits, loss=loss)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The adapter: prefix and head tensors only (what gets saved)."""
        return {f"prefix.{k}": v for k, v in self.prefix.state_dict().items()} | {
            f"head.{k}": v for k, v in self.head.state_dict().items()
        }

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        """Inverse of :meth:`trainable_state` (strict: every prefix and head tensor)."""
        self.prefix.load_state_dict({k[len("prefix."):]: v for k, v in state.items() if k.startswith("prefix.")})
        self.head.load_state_dict({k[len("head."):]: v for k, v in state.items() if k.startswith("head.")})

    def parameter_counts(self) -> tuple[int, int]:
        """``(trainable, total)`` parameter counts."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        total = sum(p.numel() for p in self.parameters())
        return trainable, total
