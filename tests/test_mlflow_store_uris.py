"""MLflow store URIs as users write them: a bare ``postgresql://`` opens with the installed driver,
a database that does not answer is one error line, and a password in the URI is never shown (in
messages, on the ``mlflow server`` command line, in what Ray Tune pickles).

Real parts: PostgreSQL (a fresh database per module; the test server trusts local connections,
so any password is accepted, which lets a marker password be looked for), ``ptv2`` processes."""
from __future__ import annotations

import re
import time

import pytest

from test_registry_support import base_env, postgres_database, postgres_url_or_skip, ptv2

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


def with_password(url: str, secret: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(password=secret).render_as_string(hide_password=False)


def marker() -> str:
    import secrets

    return f"pw-{secrets.token_hex(6)}"


def test_a_password_in_the_tracking_uri_is_never_shown(pg_url, tmp_path):
    """`MLFLOW_TRACKING_URI='https://u:S3CRET@...' ptv2 predict ...` printed the password in its
    error line; so did every other message naming the store."""
    from ptv2_core.errors import Ptv2Error

    secret = marker()
    home = str(tmp_path / "home")
    fast = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}  # a refused connection: no backoff to wait out
    server = f"https://u:{secret}@{DEAD}"
    r = ptv2("predict", "--model", "models:/ptv2-trec@champion", "hi",
             env=base_env(PTV2_HOME=home, MLFLOW_TRACKING_URI=server, **fast))
    assert f"against the MLflow store at https://u:***@{DEAD}: server unreachable" in only_error(r)
    r = ptv2("ui", env=base_env(PTV2_HOME=home, MLFLOW_TRACKING_URI=server))
    assert f"points to a server (https://u:***@{DEAD})" in only_error(r)

    store = with_password(pg_url, secret)  # a database store, answering
    masked = pg_url.replace("postgresql://postgres@", "postgresql+psycopg2://postgres:***@", 1)
    r = ptv2("predict", "--model", "models:/nope@champion", "hi", env=base_env(PTV2_HOME=home, MLFLOW_TRACKING_URI=store))
    assert only_error(r) == f"error: no registered model 'nope' in {masked}"
    r = ptv2("promote", "--task", "nope", env=base_env(PTV2_HOME=home, MLFLOW_TRACKING_URI=store))
    assert only_error(r).startswith(f"error: no registered model 'ptv2-nope' for 'nope' in {masked} ")
    r = ptv2("predict", "--model", "models:/nope@champion", "hi",
             env=base_env(PTV2_HOME=home, MLFLOW_TRACKING_URI=f"postgresql://u:{secret}@{DEAD}/mlflow"))
    assert only_error(r).startswith(f"error: cannot open the MLflow store postgresql+psycopg2://u:***@{DEAD}/mlflow: ")

    from components.registry.store import describe
    from optuna_studies.tracking_setup import check_reachable, check_tracking_uri

    for uri, needle in ((f"foo://u:{secret}@h/x", "has an unknown scheme 'foo'"),
                        (f"file://u:{secret}@h/x", "is a folder"),
                        (f"http://u:{secret}@{DEAD}", f"MLflow tracking server http://u:***@{DEAD} does not answer")):
        with pytest.raises(Ptv2Error, match=re.escape(needle)) as e:
            check_reachable(uri) if needle.startswith("MLflow tracking server") else check_tracking_uri(uri)
        assert secret not in str(e.value) and "u:***@" in str(e.value)
    # MLflow's own errors quote the URL they failed on
    said = describe(RuntimeError(f"API request to {server}/api/2.0/mlflow/registered-models/get failed: 502"))
    assert secret not in said and f"https://u:***@{DEAD}/api" in said


def test_ptv2_ui_gives_the_server_its_database_by_environment(pg_url, tmp_path):
    """`ptv2 ui` on a PostgreSQL store put `--backend-store-uri postgresql+psycopg2://u:PASSWORD@...`
    on the `mlflow server` command line, which `ps` shows to every user of the machine. The server
    also started MLflow's job runner (8 more processes, about 0.8 GiB with two workers): not now."""
    import json
    import subprocess
    import urllib.request
    from pathlib import Path

    from test_registry_support import BIN, free_port, job_runner_commands, session_commands, stop, wait_http

    secret = marker()
    port = free_port()
    with open(tmp_path / "ui.log", "w") as out:
        proc = subprocess.Popen([str(BIN / "ptv2"), "ui", "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, env=base_env(PTV2_HOME=str(tmp_path / "home"),
                                                                     MLFLOW_TRACKING_URI=with_password(pg_url, secret)))
    try:
        wait_http(f"http://127.0.0.1:{port}/health", 120, proc)
        # the server and every process it started (its workers), by session: their command lines
        argv = {str(pid): a for pid, a in session_commands(proc.pid).items()}
        server_env = (Path("/proc") / str(proc.pid) / "environ").read_bytes().split(b"\0")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=5",
                                    timeout=30) as r:
            experiments = json.loads(r.read())["experiments"]
    finally:
        stop(proc)
    assert str(proc.pid) in argv and any(b"mlflow" in a for a in argv.values()), argv
    assert [pid for pid, a in argv.items() if secret.encode() in a] == []
    # without MLflow's job runner (huey consumers for GenAI jobs, which ptv2 never submits)
    assert b"MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false" in server_env
    assert job_runner_commands(argv) == [], argv
    assert experiments  # the server did open the store it was given
    banner = (tmp_path / "ui.log").read_text()
    assert "postgres:***@" in banner and secret not in banner


def test_ptv2_ui_keeps_the_user_s_own_job_execution_setting(tmp_path):
    """`ptv2 ui` turns MLflow's job runner off only when the user has not set
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION: one who wants MLflow's GenAI jobs sets it to true and the
    server gets true. Read from the server's environment once `ptv2 ui` has become it (exec), then
    stopped: the job runner itself is MLflow's business."""
    import subprocess
    from pathlib import Path

    from test_registry_support import BIN, free_port, stop

    with open(tmp_path / "ui.log", "w") as out:
        proc = subprocess.Popen([str(BIN / "ptv2"), "ui", "--port", str(free_port())], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env=base_env(PTV2_HOME=str(tmp_path / "home"),
                                             MLFLOW_SERVER_ENABLE_JOB_EXECUTION="true"))
    me = Path("/proc") / str(proc.pid)
    try:
        deadline = time.monotonic() + 120
        while b"mlflow\0server" not in (me / "cmdline").read_bytes() and proc.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None, (tmp_path / "ui.log").read_text()[-3000:]
        assert b"mlflow\0server" in (me / "cmdline").read_bytes()  # the server, not ptv2 any more
        server_env = (me / "environ").read_bytes().split(b"\0")
    finally:
        stop(proc)
    assert b"MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true" in server_env
    assert b"MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false" not in server_env


def test_the_trial_callback_pickles_without_the_tracking_password(tmp_path):
    """Ray Tune pickles its callbacks into the work folder (tuner.pkl), and the trial callback kept
    the tracking URI, password and all. It keeps it masked now, as the searcher keeps the study
    storage's: the process that made it knows the URL, another one takes it from
    MLFLOW_TRACKING_URI when that names the same store (the Ray head, under Ray Client)."""
    import os
    import pickle
    import subprocess
    import sys

    import mlflow

    from optuna_studies.space import parse_space
    from optuna_studies.trial_log import TrialLog

    secret = marker()
    uri = f"postgresql://ptv2:{secret}@{DEAD}/mlflow"  # set as the tracking URI only: never connected to
    driver = uri.replace("postgresql://", "postgresql+psycopg2://", 1)
    space = parse_space({"prompt_len": [4, 8], "lr": {"low": 1e-3, "high": 1e-1}, "epochs": 1, "trials": 2})
    (tmp_path / "tuner.pkl").write_bytes(pickle.dumps(TrialLog("parent-run", tmp_path, space, uri, echo=print)))
    blob = (tmp_path / "tuner.pkl").read_bytes()
    assert secret.encode() not in blob and b"ptv2:***@" in blob
    try:
        pickle.loads(blob).setup()  # the process that made it: the URL is known
        assert mlflow.get_tracking_uri() == driver
    finally:
        mlflow.set_tracking_uri(None)
    load = ("import pickle, mlflow\nfrom ptv2_core.errors import Ptv2Error\ntry:\n"
            f"    pickle.load(open({str(tmp_path / 'tuner.pkl')!r}, 'rb')).setup()\n"
            "    print(mlflow.get_tracking_uri())\nexcept Ptv2Error as e:\n    print('error:', e)\n")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    for extra, expected in (({}, f"error: the MLflow store postgresql+psycopg2://ptv2:***@{DEAD}/mlflow needs its "
                                 "password in this process"),
                            ({"MLFLOW_TRACKING_URI": uri}, driver)):
        out = subprocess.run([sys.executable, "-c", load], env=env | extra, capture_output=True, text=True)
        assert out.stdout.startswith(expected), (out.stdout, out.stderr[-2000:])


@pytest.mark.parametrize("uri, args", [
    ("postgresql+psycopg2://u@h/d", {"connect_timeout": 10}),
    ("postgresql+psycopg://u@h/d", {"connect_timeout": 10}),
    ("postgresql+pg8000://u@h/d", {"timeout": 10}),  # pg8000.connect(timeout=...): connect_timeout is a TypeError
    ("mysql+pymysql://u@h/d", {"connect_timeout": 10}),
    ("mysql://u@h/d", {"connect_timeout": 10}),  # mysqlclient (MySQLdb)
    ("mysql+mysqlconnector://u@h/d", {"connection_timeout": 10}),
    ("mssql+pymssql://u@h/d", {"login_timeout": 10}),
    ("mssql+pyodbc://u@h/d", {"timeout": 10}),
])
def test_the_first_connection_times_out_with_the_drivers_own_argument(uri, args):
    """The connection made before MLflow's waits at most 10 s, by the argument its driver takes
    (every postgresql URL got psycopg's connect_timeout, which pg8000 refuses with a TypeError,
    reported as 'cannot open the MLflow store'; mysql got none)."""
    from optuna_studies.tracking_setup import connect_timeout_args

    assert connect_timeout_args(uri, 10) == args
