"""Library log lines that are not news for a ptv2 user's console, turned down for a while."""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_logger(name: str, level: int = logging.WARNING) -> Iterator[None]:
    """Raise logger ``name`` to ``level`` for the duration: MLflow's INFO lines about its own
    housekeeping, Optuna's about the study ptv2 names itself."""
    log = logging.getLogger(name)
    before = log.level
    log.setLevel(level)
    try:
        yield
    finally:
        log.setLevel(before)
