"""The search's own MLflow calls (its parent run's, as it opens and as it ends): a store that fails
there (a server restarting, a locked or lost database) is told on one line, by its first cause,
instead of MLflow's traceback and its own ERROR line."""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Callable, Iterator

from ptv2_core.errors import Ptv2Error
from optuna_studies.quiet import quiet_logger
from optuna_studies.ray_session import one_line
from optuna_studies.tracking_http import is_unreachable, unreachable_text


@contextlib.contextmanager
def mlflow_guard(what: str, then: str, down: str | None = None) -> Iterator[None]:
    """MLflow calls the search needs (its parent run's): the store failing there (a server restarting,
    a locked or lost database) ends it with one error line, ``the MLflow store failed to <what>
    (<why>)<then>``, where it was MLflow's traceback (and its own ERROR line's). ``down``: why the
    store is known to be down (``finish.server_down``): the same line at once, without calling it."""
    if down is not None:
        raise Ptv2Error(f"the MLflow store failed to {what} ({down}){then}")
    try:
        with quiet_logger("mlflow", logging.CRITICAL):
            yield
    except Ptv2Error:
        raise
    except Exception as e:  # noqa: BLE001 (any store or client error)
        raise Ptv2Error(f"the MLflow store failed to {what} ({why(e)}){then}") from None


def quietly(call: Callable, *args) -> tuple[Any, Exception | None]:
    """``(call(*args), None)``, or ``(None, the error)`` when MLflow (or its store) failed: for calls
    whose failure the caller words itself, as a warning; MLflow's own ERROR line and traceback kept off."""
    try:
        with quiet_logger("mlflow", logging.CRITICAL):
            return call(*args), None
    except Exception as e:  # noqa: BLE001 (any store or client error)
        return None, e


def why(e: BaseException) -> str:
    """Why an MLflow call failed, on one line: the first cause's message (a database store's is the
    database's own, "no such table: runs", where MLflow's own first line may be SQLAlchemy's note; a
    tracking server that does not answer, ``server unreachable (connection refused; gave up after 3
    retries)``, where it was MLflow's request URL and urllib3's pool text, cut at 300 characters)."""
    if is_unreachable(e):
        return unreachable_text(e)
    while e.__cause__ is not None:
        e = e.__cause__
    return one_line(e)[:300]
