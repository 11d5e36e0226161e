"""The MLflow Deployment's start script (k8s/base/mlflow.yaml), run for real against PostgreSQL.

It reads the backend URL from the mounted Secret, gives a bare ``postgresql://`` the psycopg2
driver (the one in the image; docs/deploy.md once told users to write the bare form, which
SQLAlchemy 2.1 maps to psycopg 3), creates or migrates the schema (`mlflow db upgrade`: the
server refuses an out-of-date schema, so a version bump crash-looped), then starts the server.
Only the pod's paths and its address change here: the Secret's file, and 127.0.0.1 on a free
port instead of 0.0.0.0:5000.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from test_registry_support import BIN, base_env, free_port, postgres_database, postgres_url_or_skip, stop, wait_http

MANIFEST = Path(__file__).resolve().parents[1] / "k8s" / "base" / "mlflow.yaml"
SECRET_FILE = "/var/run/secrets/ptv2/mlflow-db/url"


def start_script() -> str:
    deployment = next(d for d in yaml.safe_load_all(MANIFEST.read_text()) if d and d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["/bin/sh", "-c"]
    (script,) = container["args"]
    return script


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


def test_the_start_script_creates_the_schema_then_serves_and_starts_again_on_it(pg_url, tmp_path):
    import secrets

    import psycopg2
    from sqlalchemy.engine import make_url

    script = start_script()
    assert SECRET_FILE in script and "--host 0.0.0.0 --port 5000" in script
    secret = tmp_path / "url"
    # the bare postgresql:// form, with a marker password (the test server trusts local connections):
    # no command the script starts may carry it (`mlflow db upgrade "$URL"` did, in `ps`, for everyone)
    password = f"pw-{secrets.token_hex(6)}"
    secret.write_text(make_url(pg_url).set(password=password).render_as_string(hide_password=False))
    assert pg_url.startswith("postgresql://")
    port = free_port()
    here = script.replace(SECRET_FILE, str(secret)).replace("--host 0.0.0.0 --port 5000",
                                                            f"--host 127.0.0.1 --port {port}")
    here = here.replace("--workers 2", "--workers 1")
    started = tmp_path / "argv.log"
    env = base_env(MLFLOW_ARTIFACTS_DESTINATION=str(tmp_path / "artifacts"), HOME=str(tmp_path))
    env["PATH"] = argv_log(tmp_path / "shims", started) + ":" + env["PATH"]
    for start in ("empty database", "existing schema"):
        with open(tmp_path / "server.log", "a") as log:
            proc = subprocess.Popen(["/bin/sh", "-c", here], stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)
        try:
            wait_http(f"http://127.0.0.1:{port}/health", 120, proc)
        except Exception:
            raise AssertionError(f"{start}: {(tmp_path / 'server.log').read_text()[-3000:]}") from None
        finally:
            stop(proc)
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
