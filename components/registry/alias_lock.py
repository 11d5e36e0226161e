"""The lock that serialises alias moves of processes sharing a local sqlite store (MLflow has no
compare-and-set on aliases): ``register.converge_alias`` and a promotion's check-then-move."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from ptv2_core.errors import Ptv2Error


@contextlib.contextmanager
def alias_lock(uri: str, name: str) -> Iterator[None]:
    """Serialise alias moves of processes sharing a local sqlite store (MLflow has no
    compare-and-set on aliases): ``converge_alias`` and a promotion's check-then-move. A tracking
    server gets no lock: see ``converge_alias``."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    lock = Path(uri[len("sqlite:///"):]).with_name(f".{name}.alias.lock")
    fd = _open_lock(lock)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _open_lock(lock: Path) -> int:
    """The lock file's descriptor, made if missing: never through a symbolic link (one planted in a
    store folder others can write would have ptv2 create or touch the file it names), and only a
    plain file (a FIFO would block the open). Read-only: ``flock`` needs no more, and a lock made by
    another user of a shared store opens as before (mode 0o666 less the umask, as ``open`` made it)."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise Ptv2Error(f"the alias lock {lock} is a symbolic link, which ptv2 never makes: remove it (someone "
                            "who can write the store's folder may have planted it) and run again") from None
        raise Ptv2Error(f"cannot open the alias lock {lock}: {e.strerror or e}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise Ptv2Error(f"the alias lock {lock} is not a plain file: remove it and run again")
    return fd
