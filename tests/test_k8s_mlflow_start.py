"""The MLflow Deployment's start script (k8s/base/mlflow.yaml), run for real against PostgreSQL.

It reads the backend URL from the mounted Secret, gives a bare ``postgresql://`` the psycopg2
driver (the one in the image; docs/deploy.md once told users to write the bare form, which
SQLAlchemy 2.1 maps to psycopg 3), creates or migrates the schema (`mlflow db upgrade`: the
server refuses an out-of-date schema, so a version bump crash-looped), then starts the server.
It runs with the pod's environment from the manifest (ConfigMap mlflow-config, the container's
own values). Only the pod's paths and its address change here: the Secret's file, the artifact
folder and HOME, and 127.0.0.1 on a free port instead of 0.0.0.0:5000.

Two replicas (the prod overlay) start at once on a new database: the schema is created under a
PostgreSQL advisory lock, so the second waits, then finds it current.
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import yaml

from test_registry_support import (BIN, base_env, free_port, job_runner_commands, postgres_database,
                                   postgres_url_or_skip, session_commands, stop, wait_http)

MANIFEST = Path(__file__).resolve().parents[1] / "k8s" / "base" / "mlflow.yaml"
SECRET_FILE = "/var/run/secrets/ptv2/mlflow-db/url"


def _container() -> dict:
    deployment = next(d for d in yaml.safe_load_all(MANIFEST.read_text()) if d and d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def start_script() -> str:
    container = _container()
    assert container["command"] == ["/bin/sh", "-c"]
    (script,) = container["args"]
    return script


def pod_env() -> dict[str, str]:
    """The environment the manifest gives the pod: its ConfigMaps' data (envFrom), then the
    container's own values."""
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    container, env = _container(), {}
    for source in container["envFrom"]:
        name = source["configMapRef"]["name"]
        env.update(next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name)["data"])
    env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    return env


@pytest.fixture
def pg_url():
    yield from postgres_database(postgres_url_or_skip())


def argv_log(folder: Path, log: Path) -> str:
    """A PATH entry whose ``mlflow`` and ``python`` write their command line to ``log``, then run
    the real ones: what ``ps`` shows of each command the script starts."""
    folder.mkdir()
    for name in ("mlflow", "python", "python3"):
        if (BIN / name).exists():
            (folder / name).write_text(f'#!/bin/sh\nprintf "%s\\n" "{name} $*" >> "{log}"\nexec "{BIN / name}" "$@"\n')
            (folder / name).chmod(0o755)
    return str(folder)


def local_script(secret: Path, port: int) -> str:
    return start_script().replace(SECRET_FILE, str(secret)).replace(
        "--host 0.0.0.0 --port 5000", f"--host 127.0.0.1 --port {port}").replace("--workers 2", "--workers 1")


def start_local(script: str, tmp_path: Path, log_name: str, path: str | None = None) -> subprocess.Popen:
    """The script as the pod runs it, in the pod's environment, with ``path`` (when given) first on PATH."""
    env = base_env(**(pod_env() | {"MLFLOW_ARTIFACTS_DESTINATION": str(tmp_path / "artifacts"), "HOME": str(tmp_path)}))
    if path:
        env["PATH"] = path + ":" + env["PATH"]
    with open(tmp_path / log_name, "a") as log:
        return subprocess.Popen(["/bin/sh", "-c", script], stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)


def test_the_start_script_waits_for_the_lock_creates_the_schema_then_serves_and_starts_again_on_it(pg_url, tmp_path):
    """On an empty database, while another session holds the script's advisory lock (a replica
    migrating), the script creates nothing and serves nothing; once it is released, it creates the
    schema and serves. Started again on that schema, it serves again, without MLflow's job runner.
    No command it starts carries the database password. (Two tests before, each with its own empty
    database: the lock one's start after the release was the other's first start.)"""
    import secrets

    import psycopg2
    from sqlalchemy.engine import make_url

    script = start_script()
    assert SECRET_FILE in script and "--host 0.0.0.0 --port 5000" in script
    key = int(script.split("pg_advisory_lock(", 1)[1].split(")", 1)[0])
    secret = tmp_path / "url"
    # the bare postgresql:// form, with a marker password (the test server trusts local connections):
    # no command the script starts may carry it (`mlflow db upgrade "$URL"` did, in `ps`, for everyone)
    password = f"pw-{secrets.token_hex(6)}"
    secret.write_text(make_url(pg_url).set(password=password).render_as_string(hide_password=False))
    assert pg_url.startswith("postgresql://")
    port = free_port()
    here = local_script(secret, port)
    started = tmp_path / "argv.log"
    shims = argv_log(tmp_path / "shims", started)
    log = tmp_path / "server.log"

    holder = psycopg2.connect(pg_url)
    holder.autocommit = True
    proc = None
    try:  # start 1, on the empty database, its lock held by another session
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (key,))
        proc = start_local(here, tmp_path, log.name, shims)
        # until the script waits for the lock, which it asks for before anything else (a fixed 15 s
        # sleep stood here: the same state is checked as soon as it is reached). A script that took
        # no lock never waits: the poll gives up after 120 s and the assertion below fails.
        deadline, waiting = time.monotonic() + 120, 0
        while waiting == 0 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            with holder.cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                            "AND classid = 0 AND objid = %s", (key,))
                waiting = cur.fetchone()[0]
        assert proc.poll() is None, log.read_text()[-3000:]
        with holder.cursor() as cur:
            assert waiting == 1  # the script is waiting for it
            cur.execute("SELECT to_regclass('alembic_version') IS NULL AND to_regclass('experiments') IS NULL")
            assert cur.fetchone()[0] is True  # and has created nothing
            cur.execute("SELECT pg_advisory_unlock(%s)", (key,))
        try:
            wait_http(f"http://127.0.0.1:{port}/health", 180, proc)
        except Exception:
            raise AssertionError(f"empty database: {log.read_text()[-3000:]}") from None
    finally:
        holder.close()
        if proc is not None:
            stop(proc)
    proc = start_local(here, tmp_path, log.name, shims)  # start 2, on the schema start 1 made
    try:
        wait_http(f"http://127.0.0.1:{port}/health", 120, proc)
        serving = session_commands(proc.pid)  # the server and all it started
    except Exception:
        raise AssertionError(f"existing schema: {log.read_text()[-3000:]}") from None
    finally:
        stop(proc)
    # MLflow's job runner (huey consumers for GenAI jobs ptv2 never submits) is not among them:
    # MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false from the manifest's ConfigMap
    assert any(b"mlflow" in c for c in serving.values()) and job_runner_commands(serving) == [], serving
    commands = started.read_text().splitlines()
    # the shims did see the script's commands: the schema upgrade, then the server, at each start
    assert [c.split(" ", 2)[:2] for c in commands] == [["python", "-c"], ["mlflow", "server"]] * 2, commands
    assert [c for c in commands if password in c] == []
    conn = psycopg2.connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT version_num FROM alembic_version")
            assert len(cur.fetchall()) == 1  # the schema is at a migration head
            cur.execute("SELECT count(*) FROM experiments")
            assert cur.fetchone()[0] >= 1  # the server's Default experiment
    finally:
        conn.close()


def test_two_replicas_starting_at_once_on_a_new_database_both_come_up(pg_url, tmp_path):
    """The prod overlay runs two replicas; on a new database both created the schema at once
    (`mlflow db upgrade`: create_all, then every migration) and one failed on tables or an
    alembic_version row the other had just made, and crash-looped. Under the advisory lock the
    second waits and finds the schema current. (Before the lock this failed on this machine's
    PostgreSQL in the runs tried, see the commit; a race can also pass by luck, which is why the
    next test checks the lock itself.)"""
    secret = tmp_path / "url"
    secret.write_text(pg_url)
    ports = [free_port(), free_port()]
    procs = [start_local(local_script(secret, p), tmp_path, f"server{i}.log") for i, p in enumerate(ports)]
    try:
        for i, (proc, port) in enumerate(zip(procs, ports)):
            try:
                wait_http(f"http://127.0.0.1:{port}/health", 180, proc)
            except Exception as e:
                raise AssertionError(f"replica {i}: {e}: {(tmp_path / f'server{i}.log').read_text()[-3000:]}") from None
    finally:
        for proc in procs:
            stop(proc)
    import psycopg2

    conn = psycopg2.connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT version_num FROM alembic_version")
            assert len(cur.fetchall()) == 1
    finally:
        conn.close()
