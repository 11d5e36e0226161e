"""One running search per study, whatever its ``--out``.

``--resume`` marks the study's RUNNING trials as interrupted and runs them again: right after a
killed driver, but wrong while another search of the same study still runs them (two ``--out``
folders, one ``--study-name``). The lock on the output folder (``output.search_lock``) does not
see that, so the study itself is locked too, where every process using it can see the lock:
a PostgreSQL session advisory lock (any machine; released when the holder's connection ends, a
killed driver included), or a lock file beside a sqlite database. Other storages are not locked.
"""
from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

from ptv2_core.busy_lock import held
from ptv2_core.errors import Ptv2Error
from optuna_studies.study import mask_url, with_driver


def _busy(name: str) -> str:
    return (f"another `ptv2 search` is running study '{name}' (perhaps into another --out): wait for it to end, "
            "or stop it first (then --resume continues it)")


def _key(name: str) -> int:
    """A signed 64-bit advisory-lock key for the study name."""
    return int.from_bytes(hashlib.sha256(f"ptv2-study:{name}".encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def study_lock(storage_url: str, name: str) -> Iterator[None]:
    """Hold the study's lock for the duration, or raise ``Ptv2Error`` at once when another search holds it."""
    from sqlalchemy.engine import make_url

    url = make_url(storage_url)
    backend = url.get_backend_name()
    if backend == "sqlite" and url.database and url.database != ":memory:":
        db = Path(url.database).resolve()
        digest = hashlib.sha256(name.encode()).hexdigest()[:12]
        with held(db.parent / f".{db.name}.study-{digest}.lock", _busy(name)):
            yield
    elif backend == "postgresql":
        with _advisory_lock(storage_url, name):
            yield
    else:
        yield


@contextlib.contextmanager
def _advisory_lock(storage_url: str, name: str) -> Iterator[None]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    engine = create_engine(with_driver(storage_url), poolclass=NullPool)
    try:
        conn = engine.connect()
    except SQLAlchemyError as e:
        engine.dispose()
        raise Ptv2Error(f"cannot reach the study storage {mask_url(storage_url)}: "
                        f"{str(getattr(e, 'orig', e)).strip().splitlines()[0]}") from None
    try:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _key(name)}).scalar():
            raise Ptv2Error(_busy(name))
        try:
            yield
        finally:
            with contextlib.suppress(SQLAlchemyError):
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _key(name)})
    finally:
        conn.close()
        engine.dispose()
