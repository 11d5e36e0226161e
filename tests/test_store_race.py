"""Several processes opening the same new study storage and MLflow store at once (the pipeline's
parallel search steps on a fresh cluster, two `ptv2 search` on a new PTV2_HOME): every one
opens it, and the store works afterwards. Real processes, real sqlite and PostgreSQL."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

# each process imports first and says so; then every one gets the same line at once (written to
# all of them back to back once all are ready), so the schema creations overlap
OPENER = """
import logging, sys
logging.disable(logging.CRITICAL)
from optuna_studies.study import open_storage
from optuna_studies.tracking_setup import open_local_store
print("ready", flush=True)
for line in sys.stdin:
    kind, url = line.split()
    try:
        open_storage(url) if kind == "optuna" else open_local_store(url)
        print("ok", flush=True)
    except Exception as e:
        print("failed:", str(e).splitlines()[0][:300], flush=True)
"""


def open_at_once(opens: list[tuple[str, str]], processes: int = 4) -> list[list[str]]:
    """For each ``(kind, url)`` in turn, ``processes`` processes open it at the same moment;
    their answers per open."""
    procs = [subprocess.Popen([sys.executable, "-c", OPENER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, cwd=Path(__file__).parents[1])
             for _ in range(processes)]
    try:
        assert [p.stdout.readline().strip() for p in procs] == ["ready"] * processes
        answers = []
        for kind, url in opens:
            for p in procs:
                p.stdin.write(f"{kind} {url}\n")
                p.stdin.flush()
            answers.append([p.stdout.readline().strip() for p in procs])
        return answers
    finally:
        for p in procs:
            p.stdin.close()
            p.wait(timeout=60)


def check_usable(url: str, mlflow_url: str) -> None:
    import optuna
    from mlflow import MlflowClient

    from optuna_studies.study import open_storage

    study = optuna.create_study(study_name="after-the-race", storage=open_storage(url))
    study.tell(study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}), 0.5)
    assert optuna.load_study(study_name="after-the-race", storage=open_storage(url)).best_value == 0.5
    client = MlflowClient(mlflow_url)
    exp = client.create_experiment("after-the-race")
    assert client.get_experiment(exp).name == "after-the-race"


def test_new_sqlite_stores_opened_by_several_processes_at_once(tmp_path):
    optuna_url, mlflow_url = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    assert open_at_once([("optuna", optuna_url), ("mlflow", mlflow_url)]) == [["ok"] * 4] * 2
    check_usable(optuna_url, mlflow_url)


def test_new_postgres_databases_opened_by_several_processes_at_once():
    base = os.environ.get("PTV2_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("PTV2_TEST_POSTGRES_URL is not set (.ci/run sets it to the local PostgreSQL)")
    import sqlalchemy
    from sqlalchemy.engine import make_url

    from optuna_studies.study import with_driver

    names = [f"ptv2_race_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    admin = sqlalchemy.create_engine(with_driver(base), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            for name in names:
                c.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    except sqlalchemy.exc.SQLAlchemyError as e:
        # the URL is set (this test skips only where it is not): a server that is down, or a role that
        # may not create databases, is a failure to see, not a skip line among many
        pytest.fail(f"cannot create a scratch database on {make_url(base).host} (PTV2_TEST_POSTGRES_URL; the role "
                    f"needs CREATEDB): {str(e).splitlines()[0]}")
    try:
        optuna_url = make_url(base).set(database=names[0]).render_as_string(hide_password=False)
        mlflow_url = with_driver(make_url(base).set(database=names[1]).render_as_string(hide_password=False))
        assert open_at_once([("optuna", optuna_url), ("mlflow", mlflow_url)]) == [["ok"] * 4] * 2
        check_usable(optuna_url, mlflow_url)
    finally:
        import gc

        gc.collect()  # close the check's pooled connections before the databases go
        with admin.connect() as c:
            for name in names:
                c.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_a_new_mlflow_store_opens_without_console_noise(tmp_path):
    """MLflow announced a new database at INFO on the console of the first ptv2 command to open
    it ("Creating initial MLflow database tables...", "Updating database tables")."""
    code = ("import sys; from optuna_studies.tracking_setup import open_local_store; open_local_store(sys.argv[1]); "
            "import logging; print(logging.getLogger('mlflow.store.db.utils').level)")
    res = subprocess.run([sys.executable, "-c", code, f"sqlite:///{tmp_path}/mlflow.db"], capture_output=True,
                         text=True, cwd=Path(__file__).parents[1], timeout=120)
    assert res.returncode == 0 and (tmp_path / "mlflow.db").is_file(), res.stderr
    assert "database tables" not in res.stderr, res.stderr
    assert res.stdout.strip() == "0"  # the logger's own level is back as it was (unset)
