"""One process at a time per output: a file lock taken at once or refused with a message, never
waited for (a second run of the same long job, above all a resume while the first still runs,
would work over the first one's files)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from ptv2_core.errors import Ptv2Error


def beside(out: str | Path, job: str) -> Path:
    """The lock file of ``job`` (``train``, ``pretrain``) writing to ``out``: a hidden file beside
    ``out`` in the nearest folder above it that exists (``runs/.trec.train.lock`` for ``runs/trec``;
    ``./.runs.trec.train.lock`` while ``runs`` does not exist yet), so that taking it creates no folder
    and a run refused or failing on bad input leaves nothing behind."""
    out = Path(out).resolve()
    base = next(p for p in out.parents if p.is_dir())
    return base / f".{'.'.join(out.relative_to(base).parts)}.{job}.lock"


@contextlib.contextmanager
def held(lock_path: str | Path, busy: str) -> Iterator[None]:
    """Hold the lock file at ``lock_path`` (its folder must exist) for the duration, or raise
    ``Ptv2Error(busy)`` at once when another process holds it. The file is removed afterwards, so
    that nothing is left beside the output: while it is still held, so that a process that opened
    it before finds it unlinked once it can lock it (filelock then takes it for not acquired: busy,
    a moment too late) instead of holding it beside a process that created a new file there."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise Ptv2Error(busy) from None
    except OSError as e:  # a folder that takes no new files (the output itself may still be writable)
        raise Ptv2Error(f"cannot create the lock file '{lock_path}': {e.strerror or e}") from None
    try:
        yield
    finally:
        try:
            Path(lock.lock_file).unlink(missing_ok=True)
        finally:
            lock.release()
