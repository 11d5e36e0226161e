"""The device a pipeline step trains or scores on in its pod."""
from __future__ import annotations

import os


def step_device() -> str:
    """``PTV2_DEVICE`` (``cuda`` in a pipeline compiled with ``--step-gpus 1``: pipelines/step_gpu.py),
    else ``auto``; checked as ``ptv2 train --device`` checks it, naming the variable (a CUDA device
    where torch sees none is one line, not a step training on the CPU while it holds a GPU)."""
    from ptv2_core.device import pick_device

    name = os.environ.get("PTV2_DEVICE", "").strip() or "auto"
    pick_device(name, setting="PTV2_DEVICE")
    return name
