"""One process at a time per output: a file lock taken at once or refused with a message, never
waited for (a second run of the same long job, above all a resume while the first still runs,
would work over the first one's files)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from ptv2_core.errors import Ptv2Error


def beside(out: str | Path, job: str) -> Path:
    """The lock file of ``job`` (``train``, ``pretrain``, ``search``) writing to ``out``: a hidden
    file beside ``out`` in its parent folder (``runs/.trec.train.lock`` for ``runs/trec``)."""
    out = Path(out).resolve()
    return out.parent / f".{out.name}.{job}.lock"


@contextlib.contextmanager
def output_lock(out: str | Path, job: str, busy: str) -> Iterator[None]:
    """Hold ``job``'s lock on ``out`` (``beside`` it) for the duration, or raise ``Ptv2Error(busy)``.

    ``out``'s parent folder is made first, so that the lock is in one place for the whole run (it
    used to be beside the nearest folder that existed, which moved once the parent appeared: a
    second run then took another file and wrote over the first one's output). The folders made
    for it are removed again, when still empty, if the job fails: a refused or interrupted run
    leaves nothing behind."""
    out = Path(out).resolve()
    made = [p for p in out.parents if not p.exists()]  # the innermost first
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise Ptv2Error(f"cannot create the folder '{out.parent}': {e.strerror or e}") from None
    try:
        with held(beside(out, job), busy):
            yield
    except BaseException:
        for folder in made:
            with contextlib.suppress(OSError):  # not empty (another run's), or gone
                folder.rmdir()
        raise


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
