"""The precision an adapter or a pre-trained prompt is scored in: the one it was trained in, unless
told otherwise.

Training records its ``bf16`` choice in the adapter's config (``extra.train_config.bf16``: ``ptv2
train``, a search's trials, the pipeline's final step). Scoring an adapter trained with
``--no-bf16`` (fp32 on CUDA, say on a GPU before Ampere) under bf16 autocast would score it in a
precision it never ran in, and on such a GPU in an emulated, slow one. On CPU and MPS both are
fp32 (``ptv2_core.evaluate.autocast`` is a no-op there). Pre-training records its choice in the
prompt's ``pretrain_config.bf16`` (prompt_config.json) and scores its own dev rows in it.
"""
from __future__ import annotations


def trained_bf16(config: dict) -> bool:
    """Whether the adapter ran under bf16 autocast on CUDA when trained: its train_config's ``bf16``;
    True (training's default) where it records none (saved without a train_config)."""
    recorded = ((config.get("extra") or {}).get("train_config") or {}).get("bf16")
    return recorded if isinstance(recorded, bool) else True


def scoring_bf16(config: dict, override: bool | None = None) -> bool:
    """bf16 autocast for scoring or prediction on CUDA: ``override`` when given (``--bf16``/``--no-bf16``),
    else as the adapter was trained (``trained_bf16``)."""
    return trained_bf16(config) if override is None else bool(override)


def pretrained_bf16(config: dict) -> bool:
    """bf16 autocast on CUDA for scoring a pre-trained prompt (``ptv2 eval --pretrained``): its
    ``pretrain_config.bf16``, the precision pre-training scored its dev rows in (``--no-bf16``: fp32);
    True (pre-training's default) where it records none. The choice, as ``trained_bf16`` reads it,
    not ``trained_on.bf16`` (false for a prompt pre-trained on CPU, where bf16 was never possible)."""
    recorded = (config.get("pretrain_config") or {}).get("bf16")
    return recorded if isinstance(recorded, bool) else True
