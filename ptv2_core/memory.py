"""Running out of memory as an error a user can act on.

A batch too large for the device ends deep inside attention, as ``torch.OutOfMemoryError`` on
CUDA or the CPU allocator's ``RuntimeError``: a traceback that says neither what did not fit nor
which setting makes it fit. ``fits`` turns it into an ``OutOfMemory`` (a ``Ptv2Error``: the CLI
prints one ``error:`` line and exits 2; a search trial ends as failed, alone) naming the device,
what was running, the batch's shape and the option to lower.
"""
from __future__ import annotations

import contextlib
import gc
import re

import torch

from ptv2_core.errors import Ptv2Error


class OutOfMemory(Ptv2Error):
    """The device ran out of memory; the message names what was running and the option to lower."""


def is_out_of_memory(e: BaseException) -> bool:
    """CUDA's ``OutOfMemoryError``, the CPU (or MPS) allocator's RuntimeError, or a CUDA library's
    own allocation failing (``CUBLAS_STATUS_ALLOC_FAILED``, as when a cuBLAS handle is created on a
    GPU torch's cache has filled; cuDNN's and cuSOLVER's alike), which torch raises as a RuntimeError."""
    if isinstance(e, torch.OutOfMemoryError):
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text
                                            or "_STATUS_ALLOC_FAILED" in text)


def batch_shape(batch: dict) -> str:
    """``"32 rows of 128 tokens"`` for a collated batch (its padded input ids)."""
    rows, tokens = batch["input_ids"].shape[:2]
    return f"{rows} rows of {tokens} tokens"


@contextlib.contextmanager
def fits(device: torch.device | str, what: str, hint: str):
    """Run the block; if the device runs out of memory, free the allocator's cache and raise
    ``OutOfMemory("out of memory on DEVICE while WHAT (it asked for N more): HINT")``."""
    try:
        yield
    except RuntimeError as e:  # torch.OutOfMemoryError is a RuntimeError
        if not is_out_of_memory(e):
            raise
        asked = _asked(str(e))
    else:
        return
    release(device)
    raise OutOfMemory(f"out of memory on {device} while {what}{asked}: {hint}") from None


def place(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model.to(device)``, or an ``OutOfMemory`` naming the model's size."""
    size = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    with fits(device, f"placing the model ({size:,.0f} MiB of weights)", "use a device with more memory (--device)"):
        return model.to(device)


def release(device: torch.device | str) -> None:
    """Return what the failed step held to the device (the next trial in this process needs it)."""
    gc.collect()
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _asked(text: str) -> str:
    """`` (it asked for 780 MiB more)`` from the allocator's message, or nothing."""
    m = re.search(r"[Tt]ried to allocate (\d+) bytes", text)  # the CPU allocator
    if m:
        return f" (it asked for {int(m.group(1)) / 2**20:,.0f} MiB more)"
    m = re.search(r"[Tt]ried to allocate ([\d.]+ ?[KMGT]i?B)", text)  # CUDA
    return f" (it asked for {m.group(1)} more)" if m else ""
