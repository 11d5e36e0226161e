"""A sqlite store's file, checked before it is opened (MLflow's store and Optuna's storage alike).

sqlalchemy opens ``sqlite://``, ``sqlite:///`` and ``sqlite:///:memory:`` as a database in memory:
what a command writes there is gone when it ends (``ptv2 register`` "succeeded" into one). And
MLflow makes a missing folder and a new, empty store in it, so a mistyped path was a second store,
silently. Light on purpose (sqlalchemy only, imported when called).
"""
from __future__ import annotations

from pathlib import Path

from ptv2_core.errors import Ptv2Error
from optuna_studies.urls import mask_url


def check_sqlite_file(url: str, what: str, example: str, fix: str, made_later: Path | None = None,
                      folder_here: bool = True) -> Path | None:
    """The absolute path of the file a ``sqlite:`` ``url`` names, None for any other URL.
    Ptv2Error when it names none (in memory), or its folder is missing or a file. ``what`` names
    the store in messages ("MLflow store"), ``example`` a file for it ("sqlite:///path/mlflow.db"),
    ``fix`` the other way out ("point MLFLOW_TRACKING_URI at another store"); ``made_later``: a
    folder the command makes itself when it opens the store (not refused for missing);
    ``folder_here`` false: the file is opened on another machine, its folder is not looked for."""
    if not url.lower().startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # sqlite:x.db: the caller's own parse says it in its words first
        raise Ptv2Error(f"{what} '{mask_url(url)}' is not a database URL: expected {example}") from None
    if parsed.get_backend_name() != "sqlite":
        return None
    shown = mask_url(url) if "@" in url else url  # as written (sqlalchemy quotes ':memory:' as %3Amemory%3A)
    database = parsed.database
    if not database or database == ":memory:" or "mode=memory" in url:
        raise Ptv2Error(f"{what} {shown} names no file (sqlite in memory): what is written there is gone "
                        f"when the command ends; name a file, e.g. {example}")
    if not folder_here:
        return Path(database)
    path = Path(database).resolve()
    folder = path.parent
    if folder.is_dir() or (made_later is not None and folder == made_later):
        return path
    if folder.exists() or any(p.is_file() for p in folder.parents):
        raise Ptv2Error(f"{what} {shown}: '{_first_file(folder)}' is not a folder (create it, or {fix})")
    raise Ptv2Error(f"{what} {shown}: its folder '{folder}' does not exist (create it, or {fix})")


def _first_file(folder: Path) -> Path:
    """The part of ``folder``'s path that is a file (what keeps it from being a folder)."""
    return next((p for p in reversed((folder, *folder.parents)) if p.exists() and not p.is_dir()), folder)
