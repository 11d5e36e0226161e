"""One process at a time per output: a file lock taken at once or refused with a message, never
waited for (a second run of the same long job, above all a resume while the first still runs,
would work over the first one's files)."""
from __future__ import annotations

from pathlib import Path

from ptv2_core.errors import Ptv2Error


def acquire(lock_path: str | Path, busy: str):
    """Take the lock file at ``lock_path`` (its folder must exist), or raise ``Ptv2Error(busy)``
    when another process holds it. Returns the lock for ``release``."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise Ptv2Error(busy) from None
    return lock


def release(lock) -> None:
    """Release the lock and remove its file, so that nothing is left beside the output."""
    lock.release()
    Path(lock.lock_file).unlink(missing_ok=True)
