"""A study's storage opened read-only, before Ray: nothing is created or stamped in it (Optuna's
``RDBStorage``, even told to skip creating tables, records a schema version in a storage without
one), so a search's early checks can read a study without making the storage they read."""
from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Iterator

import optuna
from optuna.trial import TrialState


@contextmanager
def read_only_storage(url: str) -> Iterator[optuna.storages.RDBStorage | None]:
    """The storage at ``url``, or None where there is nothing to read yet: a sqlite file not there,
    none or some of Optuna's tables, an empty version table, or a storage that fails now (opening it
    after the join creates what it lacks, or says why it cannot)."""
    import sqlalchemy
    from sqlalchemy.exc import SQLAlchemyError

    from optuna_studies.cluster import file_store_path
    from optuna_studies.urls import with_driver

    if url.startswith("sqlite") and not ((path := file_store_path(url)) and path.is_file()):
        yield None
        return
    engine = storage = None
    try:
        try:
            engine = sqlalchemy.create_engine(with_driver(url))
            with engine.connect() as connection:
                tables = set(sqlalchemy.inspect(connection).get_table_names())
                complete = {"studies", "version_info", "alembic_version"} <= tables and all(
                    connection.execute(sqlalchemy.text(f"SELECT 1 FROM {table} LIMIT 1")).first() is not None
                    for table in ("version_info", "alembic_version"))
            if complete:
                storage = optuna.storages.RDBStorage(with_driver(url), skip_compatibility_check=True,
                                                     skip_table_creation=True)
        except (SQLAlchemyError, RuntimeError):
            storage = None
        yield storage
    finally:
        for made in (storage.engine if storage is not None else None, engine):
            if made is not None:
                made.dispose()


def recorded_settings(url: str, name: str) -> dict | None:
    """The settings study ``name`` recorded for its trials (``study.SETTINGS_ATTR``), read without
    creating anything; None for a study not there, one no trial of which has started (a resume makes
    it anew), one that recorded none, or a storage that fails."""
    from sqlalchemy.exc import SQLAlchemyError

    from optuna_studies.study import SETTINGS_ATTR

    with read_only_storage(url) as storage:
        if storage is None:
            return None
        try:
            study = optuna.load_study(study_name=name, storage=storage)
            if all(t.state == TrialState.WAITING for t in study.get_trials(deepcopy=False)):
                return None  # enqueued trials alone never ran
            doc = study.user_attrs.get(SETTINGS_ATTR)
        except (SQLAlchemyError, KeyError, RuntimeError):
            return None
    try:
        return json.loads(doc) if doc else None
    except ValueError:
        return None
