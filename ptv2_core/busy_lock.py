"""One process at a time per output: a file lock taken at once or refused with a message, never
waited for (a second run of the same long job, above all a resume while the first still runs,
would work over the first one's files)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from ptv2_core.errors import Ptv2Error


@contextlib.contextmanager
def held(lock_path: str | Path, busy: str) -> Iterator[None]:
    """Hold the lock file at ``lock_path`` (its folder must exist) for the duration, or raise
    ``Ptv2Error(busy)`` at once when another process holds it. The file is removed afterwards, so
    that nothing is left beside the output."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise Ptv2Error(busy) from None
    try:
        yield
    finally:
        lock.release()
        Path(lock.lock_file).unlink(missing_ok=True)
