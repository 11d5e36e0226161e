"""Creating a database schema from several processes at once.

Optuna's RDB storage and MLflow's database stores create their tables (and run their alembic
migrations) on first use. Processes that first open the same new database together race: the
first wins, the others fail with "already exists", a duplicate key, or a migration that found
its row gone (measured here: 4 processes opening a new PostgreSQL study storage at once, 8 of 12
failed over three tries; 3 on a new MLflow sqlite file, 6 of 9). That is what the first run of
the pipeline does on a fresh cluster (parallel search steps), and two ``ptv2 search`` commands
started together on a new ``PTV2_HOME``. On PostgreSQL the database is sound after such a race
(the winner's transaction holds), so a loser only has to open the store again once the winner is
done. On sqlite it is not: MLflow's migrations rebuild tables through ``_alembic_tmp_*`` copies,
and a loser can leave one behind, after which the store never opens again (seen once in 12). So a
sqlite file is created under a lock file beside it (``<file>.lock``), one process at a time.
"""
from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

# What a schema-creation race looks like from the loser's side (sqlite, PostgreSQL, alembic).
RACE_MARKERS = (
    "already exists",
    "duplicate key value",
    "duplicate column name",
    "UNIQUE constraint failed: alembic_version",
    "Online migration expected to match one row",
    "database is locked",
)


def is_schema_race(e: BaseException) -> bool:
    text = str(e)
    return any(marker in text for marker in RACE_MARKERS)


def retry_schema_race(fn: Callable[[], T], attempts: int = 6, pause: float = 0.5) -> T:
    """``fn()``, opened again (after a jittered pause) while it fails as a schema race loses."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as e:
            if attempt == attempts or not is_schema_race(e):
                raise
            time.sleep(pause * attempt * (0.5 + random.random()))
    raise AssertionError("unreachable")


def open_once(url: str, fn: Callable[[], T]) -> T:
    """``fn()`` opens the database store at ``url`` (creating its schema if new): under a lock file
    for a sqlite file, and opened again while it loses a creation race elsewhere."""
    with _sqlite_lock(url):
        return retry_schema_race(fn)


@contextlib.contextmanager
def _sqlite_lock(url: str) -> Iterator[None]:
    path = sqlite_file(url)
    if path is None or not path.parent.is_dir():
        yield
        return
    from filelock import FileLock

    with FileLock(str(path) + ".lock"):
        yield


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:`` URL (absolute), else None (another database, in memory)."""
    if not url.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    return Path(database).resolve() if database and database != ":memory:" else None
