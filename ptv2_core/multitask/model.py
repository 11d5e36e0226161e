"""One frozen backbone, one shared deep prompt, one head per task."""
from __future__ import annotations

import torch
from torch import nn

from ptv2_core.heads import Head, HeadConfig
from ptv2_core.model import PromptModel, PromptOutput
from ptv2_core.prefix import PrefixEncoder, PromptConfig


class MultiTaskPromptModel(nn.Module):
    """A shared :class:`PrefixEncoder` of ``prompt.prompt_len`` (= max prompt length) positions
    and a head per task, over one frozen backbone.

    ``forward(task, input_ids [B, T], attention_mask [B, T], labels?, prompt_len?)`` runs the
    task's :class:`PromptModel` view: the same prefix → cache path and loss as single-task
    training, using the first ``prompt_len`` prompt positions. Heads are stored under their
    task's index (task names may contain dots, which module names may not).
    """

    def __init__(self, backbone: nn.Module, prompt: PromptConfig, heads: dict[str, HeadConfig]):
        super().__init__()
        self.backbone = backbone
        self.prefix = PrefixEncoder(prompt)
        self.heads = nn.ModuleDict({str(i): Head(c) for i, c in enumerate(heads.values())})
        self.task_names: list[str] = list(heads)
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        # views share this model's modules; kept out of the module tree so nothing is registered twice
        object.__setattr__(self, "_views", {})

    @property
    def prompt_config(self) -> PromptConfig:
        return self.prefix.config

    def task_model(self, task: str) -> PromptModel:
        """A :class:`PromptModel` for ``task`` that shares this model's backbone, prefix and head."""
        view = self._views.get(task)
        if view is None:
            head = self.heads[str(self.task_names.index(task))]
            # the placeholders' random init must not move the global RNG: a resumed run creates
            # its views at another moment than a fresh one, and dropout must not notice
            with torch.random.fork_rng(devices=[]):
                view = PromptModel(self.backbone, PromptConfig(1, *self._geometry()), head.config)
            view.prefix, view.head = self.prefix, head  # replace the placeholders with the shared modules
            self._views[task] = view
        return view

    def _geometry(self) -> tuple[int, int, int]:
        c = self.prefix.config
        return c.num_layers, c.num_kv_heads, c.head_dim

    def forward(self, task: str, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor | None = None, prompt_len: int | None = None) -> PromptOutput:
        return self.task_model(task)(input_ids, attention_mask, labels, prompt_len=prompt_len)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """``prefix.*`` and ``heads.<i>.*`` tensors (what the artifact and checkpoints hold)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("backbone.")}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        """Inverse of :meth:`trainable_state` (strict: every prefix and head tensor)."""
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("backbone.")]
        if missing or unexpected:
            raise KeyError(f"trainable state mismatch: missing {missing}, unexpected {unexpected}")
