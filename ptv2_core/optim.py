"""The optimisation both training loops share (per-task ``train`` and multi-task ``pretrain``):
AdamW on the trainable parameters, linear warm-up then linear decay, gradient-norm clipping."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

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


@contextmanager
def leading_rows_only(weight: nn.Parameter, opt: torch.optim.Optimizer, rows: int) -> Iterator[None]:
    """The optimizer step inside changes only ``weight[:rows]``: the later rows and their AdamW
    moments are put back afterwards. A nested-length step uses only the first ``rows`` prompt
    positions; their gradient is zero for the rest, yet AdamW would still move those rows by their
    stale momentum (and weight decay). Adam's step count is shared, as in any dense AdamW."""
    if rows >= weight.shape[0]:
        yield
        return
    with torch.no_grad():
        tail = weight[rows:].clone()
        moments = {k: v[rows:].clone() for k, v in opt.state.get(weight, {}).items()
                   if torch.is_tensor(v) and v.shape == weight.shape}
    yield
    with torch.no_grad():
        weight[rows:] = tail
        state = opt.state.get(weight, {})
        for k, v in moments.items():  # (before the first step there are none: the tail's stay zero)
            state[k][rows:] = v
