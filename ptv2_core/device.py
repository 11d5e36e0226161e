"""Choosing where to run."""
from __future__ import annotations

import torch

from ptv2_core.errors import Ptv2Error


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when present, else CPU. Explicit names must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise Ptv2Error(f"unknown device '{name}'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise Ptv2Error("device 'cuda' asked for, but no CUDA GPU is available")
    return device
