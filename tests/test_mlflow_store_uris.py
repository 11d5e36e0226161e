"""MLflow store URIs as users write them: a bare ``postgresql://`` opens with the installed driver,
a database that does not answer is one error line, and a password in the URI is never shown (in
messages, on the ``mlflow server`` command line, in what Ray Tune pickles).

Real parts: PostgreSQL (a fresh database per module; the test server trusts local connections,
so any password is accepted, which lets a marker password be looked for), ``ptv2`` processes."""
from __future__ import annotations

import time

import pytest

from test_registry_support import base_env, error_line, postgres_database, postgres_url_or_skip, ptv2

DEAD = "127.0.0.1:1"  # nothing listens on port 1


@pytest.fixture(scope="module")
def pg_url():
    yield from postgres_database(postgres_url_or_skip())


def only_error(r) -> str:
    """The one line a refused command prints: exit 2, no traceback, no log lines."""
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), r.stderr[-3000:]
    return lines[0]


def test_a_bare_postgresql_uri_opens_with_the_installed_driver(pg_url, tmp_path):
    """SQLAlchemy 2.1 maps postgresql:// to psycopg 3, which is not installed: every command on
    such a store ended in ModuleNotFoundError (the Optuna storage got the mapping, MLflow's not)."""
    import mlflow

    from optuna_studies.tracking_setup import use_mlflow

    assert pg_url.startswith("postgresql://")
    driver = pg_url.replace("postgresql://", "postgresql+psycopg2://", 1)
    r = ptv2("predict", "--model", "models:/nope@champion", "hi",
             env=base_env(PTV2_HOME=str(tmp_path / "home"), MLFLOW_TRACKING_URI=pg_url))
    assert only_error(r) == f"error: no registered model 'nope' in {driver}"
    try:
        use_mlflow("ptv2-uri-test", pg_url)  # the search's and pre-training's way in
        assert mlflow.get_tracking_uri() == driver
        assert mlflow.get_experiment_by_name("ptv2-uri-test") is not None
    finally:
        mlflow.set_tracking_uri(None)


def test_a_database_that_does_not_answer_is_one_error_line(tmp_path):
    """It was a sqlalchemy OperationalError traceback, after MLflow's ten tries over about 100 s,
    each with a WARNING line."""
    for uri in (f"postgresql://ptv2@{DEAD}/mlflow", f"postgresql+psycopg2://ptv2@{DEAD}/mlflow"):
        t0 = time.monotonic()
        r = ptv2("predict", "--model", "models:/ptv2-trec@champion", "hi",
                 env=base_env(PTV2_HOME=str(tmp_path / "home"), MLFLOW_TRACKING_URI=uri))
        assert only_error(r).startswith(f"error: cannot open the MLflow store postgresql+psycopg2://ptv2@{DEAD}/mlflow: "
                                        'connection to server at "127.0.0.1", port 1 failed: Connection refused')
        assert time.monotonic() - t0 < 60
