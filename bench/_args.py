"""The bench scripts' shared command-line checks and writes.

Bad input answers one line on stderr starting ``error:`` and exits 2, before anything is trained or
written (no traceback, no usage block); results are written whole or not at all (each file to a
temporary name first, then moved into place, once every file's content is ready).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import textwrap
from functools import partial
from pathlib import Path
from typing import NoReturn


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


class Parser(argparse.ArgumentParser):
    """argparse with the bench's error line, and ``writes`` / ``takes`` said under the options."""

    def __init__(self, description: str, *, writes: str, takes: str, **kwargs) -> None:
        wrap = partial(textwrap.fill, width=100, subsequent_indent="  ")
        epilog = "\n".join([wrap(f"Writes: {writes}"), wrap(f"Takes: {takes}")])
        super().__init__(description=textwrap.fill(" ".join(description.split()), width=100), epilog=epilog,
                         formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)

    def error(self, message: str) -> NoReturn:  # argparse's own: usage block + "prog: error: ..."
        fail(message)


def count(least: int):
    """An argparse type: an integer of at least ``least``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        return value
    parse.__name__ = f"count{least}"
    return parse


positive = count(1)
natural = count(0)


def above_zero(text: str) -> float:
    """An argparse type: a number above 0 (a learning rate)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text}")
    return value


def lengths(text: str) -> str:
    """An argparse type: a comma-separated list of prompt lengths, each at least 1 (checked, returned as
    given: the scripts record it in their settings as written)."""
    try:
        values = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers such as 4,16, got {text!r}") from None
    if min(values) < 1:
        raise argparse.ArgumentTypeError(f"each length must be at least 1, got {text!r}")
    return text


def check_tasks(names: list[str], option: str = "--tasks") -> list[str]:
    """Each name a task ptv2 knows (packaged, ``hub:<name>`` or a task YAML here); reads no data."""
    from ptv2_core.errors import Ptv2Error
    from ptv2_core.tasks import task_ref_kind

    if not names:
        fail(f"{option}: name at least one task")
    for name in names:
        try:
            task_ref_kind(name, must_exist=True)
        except Ptv2Error as e:
            fail(f"{option}: {e}")
    return names


def check_device(device: str, option: str = "--device") -> None:
    """``cuda`` (or ``cuda:N``) needs a CUDA GPU torch can use."""
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            fail(f"{option} {device}: torch finds no CUDA GPU on this machine (torch {torch.__version__})")


def check_out(folder: Path, option: str = "--out") -> Path:
    """A folder the results can be written to: an existing folder, or a new one under a writable folder."""
    if folder.exists() and not folder.is_dir():
        fail(f"{option} '{folder}' exists and is not a folder")
    probe = folder.absolute()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        fail(f"{option} '{folder}': '{probe}' is not a folder")
    try:  # a real try, not os.access: root passes that everywhere, /proc and read-only mounts included
        tempfile.TemporaryDirectory(dir=probe, prefix=".bench-probe-").cleanup()
    except OSError as e:
        fail(f"{option} '{folder}': cannot write in '{probe}': {e.strerror or e}")
    return folder


def figure_bytes(fig, dpi: float | str = "figure") -> bytes:
    """A matplotlib figure as PNG bytes (closed afterwards)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return buffer.getvalue()


def write_files(folder: Path, files: dict[str, str | bytes]) -> None:
    """Write ``files`` (name: text or bytes, text as UTF-8) into ``folder``: every one to a temporary
    name of its own first (two runs into one folder never share one), then all moved into place, so a
    failure leaves the old results or none, never half a file."""
    folder.mkdir(parents=True, exist_ok=True)
    temps = []
    try:
        for name, content in files.items():
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
            temps.append((Path(tmp), folder / name))
            with os.fdopen(fd, "wb") as f:
                f.write(content if isinstance(content, bytes) else content.encode("utf-8"))
        for tmp, final in temps:
            tmp.replace(final)
    finally:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)


def write_file(path: Path, content: str | bytes) -> None:
    """One file written whole or not at all (its folder made if need be): see ``write_files``."""
    write_files(path.parent, {path.name: content})


def read_json(path: Path, what: str):
    """``path``'s JSON, else exit 2 with one error line (``what``: whose file, such as ``--work 'w'``)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        fail(f"{what}: '{path}' is not readable JSON ({e})" if isinstance(e, ValueError)
             else f"{what}: cannot read '{path}': {e.strerror or e}")


def progress(items, desc: str, total: int | None = None):
    """A progress bar on stderr over ``items`` (tqdm; it redraws in place on a terminal, prints
    plain updates into a log)."""
    from tqdm import tqdm

    return tqdm(items, desc=desc, total=total, file=sys.stderr, mininterval=1.0)
