"""Reaching the MLflow store: which URI, bounded retries, and MLflow errors as ``Ptv2Error``.

The URI comes from ``optuna_studies.settings`` (explicit argument, else ``MLFLOW_TRACKING_URI``,
else the sqlite file under ``PTV2_HOME``); the registry lives in the same store. A dead
tracking server must give a clear error within about a minute, not after MLflow's default
of 7 retries with exponential backoff (minutes), so the HTTP retry settings get tighter
defaults here unless the user set them (``optuna_studies/tracking_http.py``, shared with the search).
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TypeVar

from optuna_studies import settings
from optuna_studies.schema_race import sqlite_file
from optuna_studies.tracking_http import HTTP_DEFAULTS, bounded_http, is_unreachable, unreachable_text  # noqa: F401
from optuna_studies.urls import mask_in_text, mask_url
from ptv2_core.errors import Ptv2Error

T = TypeVar("T")

REGISTRY_EXPERIMENT = "ptv2-registry"


def tracking_uri(explicit: str | None = None) -> str:
    """The tracking (and registry) URI in force: argument, environment, or the sqlite default
    (Ptv2Error for one MLflow cannot open, and for a sqlite file in a missing folder, before a
    command builds or writes anything)."""
    from optuna_studies.tracking_setup import check_store_uri

    return check_store_uri(settings.mlflow_tracking_uri(explicit), "mlflow_uri" if explicit else None)


is_local_store = settings.is_local_store


def client(uri: str):
    """An ``MlflowClient`` on ``uri`` for both tracking and registry (no global state touched)."""
    from mlflow import MlflowClient

    from optuna_studies.tracking_setup import open_local_store

    open_local_store(uri)  # a new database store: its schema, once, also with other processes at it
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def reading_client(uri: str):
    """``client(uri)`` for reading a registry that must exist already: a sqlite store whose file
    is missing is an error, instead of a new empty database (and MLflow's log lines as it makes one)."""
    path = sqlite_file(uri)
    if path is not None and not path.is_file():
        raise Ptv2Error(f"no MLflow store at {path}: nothing is registered there yet (register a model with "
                        "`ptv2 register`, or point MLFLOW_TRACKING_URI or PTV2_HOME at the store)")
    return client(uri)


def describe(e: BaseException) -> str:
    """A short reason for an MLflow/HTTP error, without the stack of wrappers (nor the password of
    a URL it quotes)."""
    text = str(e)
    if is_unreachable(e):
        return unreachable_text(e)
    if _HTML_ANSWER.search(text):  # the first line of a web page says nothing: a wrong host, port or path, most likely
        code, endpoint = re.search(r"error code (\d+) != 200", text), re.search(r"endpoint (/\S+)", text)
        return (f"{'HTTP ' + code[1] if code else 'an answer'}{' for ' + endpoint[1] if endpoint else ''}, answered "
                "with an HTML page: no MLflow tracking server at that URL, or one without that endpoint (check its "
                "host, port and path, and the server's MLflow version)")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return type(e).__name__
    if lines[0].endswith(":") and len(lines) > 1:  # "... failures occurred while downloading ...:", the failure below
        return f"{mask_in_text(lines[0])[:400]} {mask_in_text(lines[-1])[:200]}"
    return mask_in_text(lines[0])[:400]


# MLflow's REST client quoting a web page: "API request to endpoint /api/2.0/... failed with error code
# 404 != 200. Response body: '<!DOCTYPE HTML>..." (or "... not in a valid JSON format. Response body: '<html>")
_HTML_ANSWER = re.compile(r"Response body: '\s*<")


def unreachable(uri: str, e: BaseException) -> Ptv2Error:
    return Ptv2Error(f"MLflow store at {mask_url(uri)} failed: {describe(e)}")


def retry(fn: Callable[[], T], what: str, uri: str, attempts: int = 2, delay: float = 1.0) -> T:
    """Call ``fn`` up to ``attempts`` times (MLflow's own HTTP retries run inside each);
    a ``Ptv2Error`` naming ``what`` when all fail. For idempotent calls only."""
    from mlflow.exceptions import MlflowException

    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except MlflowException as e:
            if e.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS"):
                raise  # answers, not outages: retrying changes nothing
            last: BaseException = e
        except Exception as e:  # requests/sqlalchemy errors: the store is unreachable or busy
            last = e
        if is_unreachable(last):
            break  # MLflow's HTTP layer has already retried with backoff
        if attempt < attempts:
            time.sleep(delay * attempt)
    raise Ptv2Error(f"{what} failed against the MLflow store at {mask_url(uri)}: {describe(last)}")


def registry_experiment(c, uri: str, name: str = REGISTRY_EXPERIMENT) -> str:
    """Id of the experiment that holds registration runs, created on first use (race-safe)."""
    from mlflow.exceptions import MlflowException

    def get_or_create() -> str:
        exp = c.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        root = settings.artifact_root(tracking_uri=uri)  # a server chooses its own unless configured
        try:
            return c.create_experiment(name, artifact_location=root)
        except MlflowException:  # another process created it meanwhile
            exp = c.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    return retry(get_or_create, f"opening experiment '{name}'", uri)
