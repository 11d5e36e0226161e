"""Pointing MLflow at the configured store (the one place that does it)."""
from __future__ import annotations

from optuna_studies import settings
from optuna_studies.quiet import quiet_logger
from optuna_studies.schema_race import open_once, sqlite_file
from optuna_studies.sqlite_file_check import check_sqlite_file
from optuna_studies.urls import check_password_has_no_at, mask_in_text, mask_url, with_driver


def use_mlflow(experiment: str, tracking_uri: str | None = None) -> str:
    """Set the tracking URI and the active experiment (created with the configured artifact
    root when new). Returns the experiment id."""
    import mlflow

    uri = check_tracking_uri(settings.mlflow_tracking_uri(tracking_uri))
    open_local_store(uri)
    mlflow.set_tracking_uri(uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        try:
            exp_id = mlflow.create_experiment(experiment, artifact_location=settings.artifact_root(tracking_uri=tracking_uri))
        except mlflow.exceptions.MlflowException:  # created meanwhile by a concurrent process
            exp_id = mlflow.get_experiment_by_name(experiment).experiment_id
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


# MLflow's stores by URI scheme (a database's "+driver" suffix aside); a bare path or file: is its
# file store, which MLflow 3 refuses unless MLFLOW_ALLOW_FILE_STORE is set
TRACKING_SCHEMES = ("http", "https", "sqlite", "postgresql", "mysql", "mssql", "databricks", "databricks-uc")


def check_tracking_uri(uri: str) -> str:
    """The tracking URI as MLflow is to open it (a bare ``postgresql://`` with the installed driver:
    SQLAlchemy 2.1 maps it to psycopg 3, which is not installed); Ptv2Error for one MLflow cannot
    open, before anything is written (it was MLflow's traceback from inside a search whose work
    folder existed)."""
    import os
    from urllib.parse import urlsplit

    from ptv2_core.errors import Ptv2Error

    scheme = urlsplit(uri).scheme.split("+")[0].lower()
    if scheme in ("", "file") or (len(scheme) == 1 and uri[1:2] == ":"):  # a path (or a Windows drive)
        if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() in ("1", "true"):
            return uri
        raise Ptv2Error(f"MLflow tracking URI '{mask_url(uri)}' is a folder (MLflow's file store, which MLflow 3 refuses): "
                        "use a database, e.g. sqlite:///path/mlflow.db, or a server, http://host:5000")
    if scheme not in TRACKING_SCHEMES:
        raise Ptv2Error(f"MLflow tracking URI '{mask_url(uri)}' has an unknown scheme '{scheme}': use one of "
                        f"{', '.join(TRACKING_SCHEMES)}")
    if scheme not in ("http", "https"):  # a database URL (an HTTP client takes the last '@' as the end)
        check_password_has_no_at(uri, "MLflow tracking URI")
    if scheme == "postgresql":
        try:
            return with_driver(uri)
        except Exception:  # sqlalchemy cannot parse it (a bad port, an unclosed bracket)
            raise Ptv2Error(f"MLflow tracking URI '{mask_url(uri)}' is not a database URL: expected "
                            "postgresql://user:password@host:5432/db") from None
    if scheme == "sqlite":
        from sqlalchemy.engine import make_url

        try:
            make_url(uri)
        except Exception:  # sqlite:x.db, sqlite:/x.db: sqlalchemy cannot parse it
            raise Ptv2Error(f"MLflow tracking URI '{mask_url(uri)}' is not a database URL: expected "
                            "sqlite:///path/mlflow.db") from None
    return uri


def check_store_uri(uri: str, given_by: str | None = None) -> str:
    """``uri`` as MLflow is to open it (``check_tracking_uri``), with a sqlite store refused in
    memory (``sqlite://``: what is written there is gone when the command ends) or whose folder does
    not exist or is a file: MLflow makes the folder and a new, empty store there, so a mistyped path
    was a second store, silently. Only the default store's folder (``PTV2_HOME``) is made when the
    store is opened. ``given_by``: what the command takes the URI from besides
    ``MLFLOW_TRACKING_URI``, as its message names it (None: the environment only)."""
    uri = check_tracking_uri(uri)
    where = f"{given_by} / MLFLOW_TRACKING_URI" if given_by else "MLFLOW_TRACKING_URI"
    check_sqlite_file(uri, "MLflow store", "sqlite:///path/mlflow.db", f"point {where} at another store",
                      made_later=settings.home_path())
    return uri


def open_local_store(uri: str) -> None:
    """Create the schema of a database-backed MLflow store this process opens itself (sqlite,
    PostgreSQL), if new; processes creating it at once open it again until one has
    (``optuna_studies/schema_race.py``). A sqlite file in a missing folder is refused
    (``check_store_uri``). A tracking server migrates its own database."""
    uri = check_store_uri(uri)
    if not settings.is_local_store(uri) or uri.startswith("file:"):
        return
    from mlflow import MlflowClient

    from ptv2_core.errors import Ptv2Error

    _check_database_answers(uri)
    path = sqlite_file(uri)
    if path is not None and path.parent == settings.home_path():  # the default store: its folder, made now
        settings.home()
    # MLflow announces a new database's schema at INFO ("Creating initial MLflow database tables...",
    # "Updating database tables") on the console of whichever ptv2 command opens it first
    try:
        with quiet_logger("mlflow.store.db.utils"):
            open_once(uri, lambda: MlflowClient(uri).search_experiments(max_results=1))
    except Ptv2Error:
        raise
    except Exception as e:  # sqlalchemy, driver and MLflow errors: a refused login, a broken schema, ...
        raise Ptv2Error(f"cannot open the MLflow store {mask_url(uri)}: {_first_line(e)}") from None


def _check_database_answers(uri: str) -> None:
    """One connection to a database server before MLflow's own, which retries a refused one ten
    times over about 100 s, with a WARNING line each time, then raises a traceback."""
    if not uri.startswith(("postgresql", "mysql", "mssql")):
        return
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from ptv2_core.errors import Ptv2Error

    try:
        engine = create_engine(uri, poolclass=NullPool, connect_args=connect_timeout_args(uri, 10))
        try:
            engine.connect().close()
        finally:
            engine.dispose()
    except Exception as e:  # unreachable host, refused login, missing database or driver
        raise Ptv2Error(f"cannot open the MLflow store {mask_url(uri)}: {_first_line(e)}") from None


# each database driver's own name for the connect timeout, in seconds (pg8000 refuses psycopg's
# connect_timeout with a TypeError)
_TIMEOUT_ARG = {"psycopg2": "connect_timeout", "psycopg": "connect_timeout", "pg8000": "timeout",
                "pymysql": "connect_timeout", "mysqldb": "connect_timeout", "mysqlconnector": "connection_timeout",
                "pyodbc": "timeout", "pymssql": "login_timeout"}


def connect_timeout_args(uri: str, seconds: int) -> dict:
    """``connect_args`` for sqlalchemy that bound the first connection to ``uri`` to ``seconds``,
    by its driver (none for a driver not known here)."""
    from sqlalchemy.engine import make_url

    try:
        driver = make_url(uri).get_driver_name()
    except Exception:  # unparsable: the connection itself will say why
        return {}
    arg = _TIMEOUT_ARG.get(driver)
    return {arg: seconds} if arg else {}


def _first_line(e: BaseException) -> str:
    """The driver's own reason (sqlalchemy wraps it with its background link), on one line."""
    lines = str(getattr(e, "orig", None) or e).strip().splitlines()
    return mask_in_text(lines[0]) if lines else type(e).__name__


def check_reachable(tracking_uri: str | None = None, timeout: float = 5.0, given_by: str | None = "--mlflow-uri") -> None:
    """Refuse a store that cannot be reached, before a study or a run is opened, writing nothing: a
    sqlite file in a missing folder (``check_store_uri``), a tracking server that does not
    answer (MLflow's own client would retry with backoff for minutes and leave a study behind).
    Only a server (http/https) is probed, at its ``/health`` endpoint; any HTTP answer counts as
    reachable (an auth proxy's 401 is the client's next error to report, not an outage).
    ``given_by``: what the command takes the URI from besides ``MLFLOW_TRACKING_URI``, as its
    message names it (None: the environment only)."""
    import urllib.error
    import urllib.request
    from urllib.parse import urlsplit

    from ptv2_core.errors import Ptv2Error

    uri = check_store_uri(settings.mlflow_tracking_uri(tracking_uri), given_by)
    if not uri.startswith(("http://", "https://")):
        return
    # the server's host alone: urllib keeps a user:password@ in the host name it resolves (a DNS query
    # carrying the password, and a running server refused); any HTTP answer counts, so no credential is sent
    parts = urlsplit(uri)
    probe = parts._replace(netloc=parts.netloc.rpartition("@")[2], query="", fragment="").geturl()
    try:
        urllib.request.urlopen(probe.rstrip("/") + "/health", timeout=timeout).close()  # noqa: S310 (http(s) only)
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        where = f"{given_by} / MLFLOW_TRACKING_URI" if given_by else "MLFLOW_TRACKING_URI"
        raise Ptv2Error(f"MLflow tracking server {mask_url(uri)} does not answer ({reason}): start it, or point "
                        f"{where} at one that runs") from None
