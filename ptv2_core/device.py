"""Choosing where to run: CPU, a CUDA GPU (``cuda``, ``cuda:N``), or Apple's MPS.

A device that cannot run here is refused when it is picked, before any data or weights load:
``torch.device`` accepts many names this code never runs on (``meta``, ``xpu``, ``hpu`` ...),
``cuda:1`` on a one-GPU machine failed at the first ``.to()`` with CUDA's "invalid device
ordinal" traceback, and ``mps`` off a Mac likewise.
"""
from __future__ import annotations

import os

import torch

from ptv2_core.errors import Ptv2Error

CHOICES = "auto, cpu, cuda, cuda:1 ..."
RUNS_ON = ("cpu", "cuda", "mps")  # the device types the training loop, autocast and scoring are written for


def pick_device(name: str = "auto", setting: str | None = None) -> torch.device:
    """``auto``: CUDA when present, else CPU. Explicit names must exist. ``setting`` names where
    ``name`` came from when that is not the command line (e.g. ``PTV2_DEVICE``), in the error."""
    where = f"{setting}: " if setting else ""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in RUNS_ON:
        raise Ptv2Error(f"{where}unknown device '{name}' ({CHOICES})") from None
    if device.type == "cuda":
        _check_cuda(device, name, where)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise Ptv2Error(f"{where}device '{name}' asked for, but MPS (an Apple GPU) is not available here")
    return device


def _check_cuda(device: torch.device, name: str, where: str) -> None:
    if not torch.cuda.is_available():
        raise Ptv2Error(f"{where}device '{name}' asked for, but no CUDA GPU is available{why_no_cuda()}")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        shown = f" (CUDA_VISIBLE_DEVICES={visible!r} numbers them from 0)" if visible is not None else ""
        raise Ptv2Error(f"{where}device '{name}' asked for, but this process sees {count} CUDA GPU"
                        f"{'' if count == 1 else 's'}: cuda:0 to cuda:{count - 1}{shown}")


def why_no_cuda() -> str:
    """Why torch sees no GPU, where it can tell: a CPU-only build of torch (the default image's), or
    GPUs hidden by ``CUDA_VISIBLE_DEVICES`` (Ray sets it empty for a trial that reserves no GPU)."""
    if torch.version.cuda is None and torch.version.hip is None:
        return (f" (this torch, {torch.__version__}, is a CPU-only build: install a CUDA build, "
                "e.g. the -cuda image, see docs/gpu.md)")
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return " (CUDA_VISIBLE_DEVICES is empty: this process may use no GPU)"
    return ""
