"""The precision an adapter is scored in: the one it was trained in, unless told otherwise.

Training records its ``bf16`` choice in the adapter's config (``extra.train_config.bf16``: ``ptv2
train``, a search's trials, the pipeline's final step). Scoring an adapter trained with
``--no-bf16`` (fp32 on CUDA, say on a GPU before Ampere) under bf16 autocast would score it in a
precision it never ran in, and on such a GPU in an emulated, slow one. On CPU and MPS both are
fp32 (``ptv2_core.evaluate.autocast`` is a no-op there).
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
