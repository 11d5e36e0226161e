"""The optimisation both training loops share (per-task ``train`` and multi-task ``pretrain``):
AdamW on the trainable parameters, linear warm-up then linear decay, gradient-norm clipping."""
from __future__ import annotations

import torch
from torch import nn
from transformers import get_linear_schedule_with_warmup


def make_optimizer(model: nn.Module, cfg, total_steps: int):
    """``(params, optimizer, scheduler)`` for the trainable parameters of ``model``; ``cfg`` gives
    ``lr``, ``weight_decay`` and ``warmup_ratio`` (a ``TrainConfig`` or a ``PretrainConfig``)."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = get_linear_schedule_with_warmup(opt, int(cfg.warmup_ratio * total_steps), total_steps)
    return params, opt, sched


def optimizer_step(loss: torch.Tensor, params: list[nn.Parameter], opt: torch.optim.Optimizer, sched,
                   grad_clip: float) -> None:
    """One update: gradients of ``loss``, clipped to norm ``grad_clip``, then the optimizer's and
    the schedule's step."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, grad_clip)
    opt.step()
    sched.step()
