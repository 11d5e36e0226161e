"""Choosing where to run."""
from __future__ import annotations

import torch

from ptv2_core.errors import Ptv2Error

CHOICES = "auto, cpu, cuda, cuda:1 ..."


def pick_device(name: str = "auto", setting: str | None = None) -> torch.device:
    """``auto``: CUDA when present, else CPU. Explicit names must exist. ``setting`` names where
    ``name`` came from when that is not the command line (e.g. ``PTV2_DEVICE``), in the error."""
    where = f"{setting}: " if setting else ""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise Ptv2Error(f"{where}unknown device '{name}' ({CHOICES})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise Ptv2Error(f"{where}device '{name}' asked for, but no CUDA GPU is available")
    return device
