"""The settings both training loops share: per-task ``train`` (``TrainConfig``) and multi-task
``pretrain`` (``PretrainConfig``) build the same prompt model, optimise it the same way
(``optim.py``) and load data the same way, so they declare those settings once, here."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from ptv2_core.errors import Ptv2Error

SEED_MAX = 2**32 - 1  # numpy's and Python's seeded generators take 0 .. 2**32 - 1


class BadSetting(Ptv2Error):
    """A bad value of a setting, its message naming settings as ``{field}`` placeholders: filled
    with plain words for a Python caller (``mixing temperature``), and by the CLI with the
    options the user typed (``naming(flag)``: ``--temperature``)."""

    def __init__(self, template: str, **words: str) -> None:
        self.template, self.words = template, words
        super().__init__(self._filled(words))

    def _filled(self, names: dict) -> str:
        text = self.template
        for field, name in names.items():  # no str.format: a value shown in the message may hold braces
            text = text.replace("{" + field + "}", name)
        return text

    def naming(self, name) -> Ptv2Error:
        """The same error with each setting named ``name(field)`` (e.g. its command-line option)."""
        return Ptv2Error(self._filled({field: name(field) for field in self.words}))


def check_seed(value, name: str = "seed", setting: str = "seed") -> int:
    """A seed numpy accepts: an integer in 0 .. 2**32 - 1 (-1 used to end in numpy's traceback)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SEED_MAX:
        raise BadSetting(f"{{{setting}}} must be an integer in 0..{SEED_MAX}, got {value!r}", **{setting: name})
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

    def __post_init__(self) -> None:
        # numpy's numbers (a search hands them over) become Python's: the settings go into JSON
        # (checkpoints, adapter configs), which cannot hold an int64
        for name, value in vars(self).items():
            if isinstance(value, numbers.Number) and not isinstance(value, (bool, int, float)) and hasattr(value, "item"):
                setattr(self, name, value.item())

    def check_training(self) -> None:
        """Refuse bad shared settings before anything is loaded or written. Some would not fail at
        all: a negative ``grad_clip`` turned every gradient around (torch scales by max_norm / norm),
        0 zeroed them, and a head dropout of 1 left the head nothing to learn from."""
        for name in ("epochs", "batch_size", "eval_batch_size", "reparam_hidden"):
            value = getattr(self, name)
            if not is_integer(value) or value <= 0:
                raise BadSetting(f"{{{name}}} must be a positive integer, got {value!r}", **{name: name.replace('_', ' ')})
        for name in ("max_train", "max_eval"):
            value = getattr(self, name)
            if value is not None and (not is_integer(value) or value <= 0):
                raise BadSetting(f"{{{name}}} must be a positive integer (or unset: all rows), got {value!r}",
                                 **{name: name})
        check_seed(self.seed)
        if not (_number(self.lr) and self.lr > 0 and math.isfinite(self.lr)):
            raise BadSetting(f"{{lr}} must be a positive number, got {self.lr!r}", lr="learning rate")
        if not (_number(self.grad_clip) and self.grad_clip > 0):  # inf: no clipping
            raise BadSetting(f"{{grad_clip}} must be a positive number (the largest gradient norm; inf: no clipping), "
                             f"got {self.grad_clip!r}", grad_clip="grad_clip")
        if not (_number(self.weight_decay) and 0 <= self.weight_decay < math.inf):
            raise BadSetting(f"{{weight_decay}} must be a number >= 0, got {self.weight_decay!r}",
                             weight_decay="weight_decay")
        if not (_number(self.warmup_ratio) and 0 <= self.warmup_ratio <= 1):
            raise BadSetting(f"{{warmup_ratio}} must be in [0, 1] (the share of steps warming up), got "
                             f"{self.warmup_ratio!r}", warmup_ratio="warmup_ratio")
        for name in ("prefix_dropout", "head_dropout"):
            value = getattr(self, name)
            if not (_number(value) and 0 <= value < 1):
                raise BadSetting(f"{{{name}}} must be in [0, 1), got {value!r}", **{name: name})
        for name in ("reparam", "bf16", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise BadSetting(f"{{{name}}} must be true or false, got {getattr(self, name)!r}", **{name: name})

def is_integer(value) -> bool:
    """An integer that is not a bool (numpy's integers count: a search may hand them over)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _number(value) -> bool:
    """A real number that is not a bool and not NaN (every comparison with NaN is false anyway)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and value == value
