"""The settings both training loops share: per-task ``train`` (``TrainConfig``) and multi-task
``pretrain`` (``PretrainConfig``) build the same prompt model, optimise it the same way
(``optim.py``) and load data the same way, so they declare those settings once, here."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ptv2_core.errors import Ptv2Error

SEED_MAX = 2**32 - 1  # numpy's and Python's seeded generators take 0 .. 2**32 - 1


def check_seed(value, name: str = "seed") -> int:
    """A seed numpy accepts: an integer in 0 .. 2**32 - 1 (-1 used to end in numpy's traceback)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SEED_MAX:
        raise Ptv2Error(f"{name} must be an integer in 0..{SEED_MAX}, got {value!r}")
    return value


@dataclass(kw_only=True)
class TrainingSettings:
    """Base model, optimiser, prompt and head, data subset, seed and runtime settings."""

    model: str = "minilm"
    lr: float = 1e-2
    epochs: int = 3
    batch_size: int = 32
    eval_batch_size: int = 128
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    reparam: bool = False
    reparam_hidden: int = 512
    prefix_dropout: float = 0.1
    head_dropout: float = 0.1
    pooling: str | None = None
    max_train: int | None = None
    max_eval: int | None = None
    seed: int = 0  # initialisation, dropout, batch order and data splits (TrainConfig.data_seed: splits)
    device: str = "auto"
    bf16: bool = True
    progress: bool = True

    def check_training(self) -> None:
        """Refuse bad shared settings before anything is loaded or written."""
        if self.epochs <= 0:
            raise Ptv2Error(f"epochs must be a positive integer, got {self.epochs}")
        check_seed(self.seed)
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise Ptv2Error(f"learning rate must be a positive number, got {self.lr}")
        for name in ("batch_size", "eval_batch_size"):
            if getattr(self, name) <= 0:
                raise Ptv2Error(f"{name.replace('_', ' ')} must be a positive integer, got {getattr(self, name)}")
