"""Helpers the commands share: library progress bars on a terminal only, the ``--batch-size``
check, and a registered version loaded on a device (``eval --model``, ``predict --model``)."""
from __future__ import annotations

import sys


def bars_on_a_terminal_only() -> None:
    """Off a terminal (a log file, a pipe, a pipeline step's log), the libraries' own progress bars
    (datasets' "encode" bars) are noise: like ptv2's scoring bars, they show on a terminal only."""
    if not sys.stderr.isatty():
        from ptv2_core.train import quiet_libraries

        quiet_libraries()


def check_batch_size(batch_size: int) -> None:
    from ptv2_core.errors import Ptv2Error

    if batch_size <= 0:
        raise Ptv2Error(f"--batch-size must be a positive integer, got {batch_size}")


def registered_version(model_uri: str, device: str):
    """The registered version ``model_uri`` loaded as its pyfunc model, on ``device`` (``auto``:
    where ``PTV2_DEVICE`` says, as for serving, else the best there is)."""
    import os

    from components.registry.load import load_registered
    from ptv2_core.device import pick_device

    if device == "auto":
        # a bad value fails before the store is opened, named as the variable (not as --device)
        pick_device(os.environ.get("PTV2_DEVICE", "auto"), setting="PTV2_DEVICE")
        return load_registered(model_uri)
    pick_device(device)  # a bad --device is told as one (below, the pyfunc model reads it as PTV2_DEVICE)
    previous = os.environ.get("PTV2_DEVICE")
    os.environ["PTV2_DEVICE"] = device  # read by the pyfunc model's load_context
    try:
        return load_registered(model_uri)
    finally:
        if previous is None:
            os.environ.pop("PTV2_DEVICE", None)
        else:
            os.environ["PTV2_DEVICE"] = previous
