"""Registry against a real ``mlflow server`` process: PostgreSQL backend store (a fresh database
per test session, dropped afterwards) and a local, server-proxied artifact folder. Also what
happens when that server dies in the middle of a registration."""
from __future__ import annotations

import time

import pandas as pd
import pytest

from ptv2_core.errors import Ptv2Error
from test_registry_support import (MlflowServer, adapters_fixture, postgres_database, postgres_url_or_skip,
                                   refused_url, registry_state)


@pytest.fixture(scope="session")
def adapters(tmp_path_factory):
    return adapters_fixture(tmp_path_factory)


@pytest.fixture(scope="module")
def pg_url():
    yield from postgres_database(postgres_url_or_skip())


@pytest.fixture(scope="module")
def server(pg_url, tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-server")
    # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; the project ships psycopg2
    backend = pg_url.replace("postgresql://", "postgresql+psycopg2://", 1)
    srv = MlflowServer(backend, root / "artifacts", root / "server.log")
    srv.start()
    with pytest.MonkeyPatch.context() as m:
        m.setenv("PTV2_HOME", str(root / "home"))  # nothing may land in the default store
        m.setenv("MLFLOW_TRACKING_URI", srv.url)
        yield srv
    srv.kill()
    import mlflow

    mlflow.set_tracking_uri(None)


def _pg_rows(pg_url: str, query: str) -> list[tuple]:
    import psycopg2

    conn = psycopg2.connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            return cur.fetchall()
    finally:
        conn.close()


def test_the_search_probe_passes_a_running_server_and_refuses_a_stopped_one(server):
    """`check_reachable` (run before a search opens its study) against a real server process (this
    module's), and against a stopped one's port: connection refused (a server of its own, started and
    killed here, took 30-40 s)."""
    from optuna_studies.tracking_setup import check_reachable

    check_reachable(server.url)
    check_reachable(server.url + "/")
    with refused_url() as url, pytest.raises(Ptv2Error, match=f"MLflow tracking server {url} does not answer"):
        check_reachable(url)


def test_register_load_by_alias_predict_on_a_postgres_backed_server(adapters, server, pg_url):
    import mlflow
    from components.registry.load import load_registered
    from components.registry.register import register_adapter

    cls = register_adapter(adapters["good"], "trec")  # MLFLOW_TRACKING_URI → the server
    ner = register_adapter(adapters["ner"], "wnut16", tracking_uri=server.url)
    assert (cls.version, cls.aliases, ner.version, ner.aliases) == (1, ("challenger",), 1, ("challenger",))
    # the rows live in PostgreSQL, the files behind the server's artifact proxy
    assert set(_pg_rows(pg_url, "SELECT name, version FROM model_versions")) == {("ptv2-trec", 1), ("ptv2-wnut16", 1)}
    assert set(_pg_rows(pg_url, "SELECT name, alias, version FROM registered_model_aliases")) == {
        ("ptv2-trec", "challenger", 1), ("ptv2-wnut16", "challenger", 1)}
    mv = mlflow.MlflowClient(server.url, server.url).get_model_version("ptv2-trec", "1")
    assert mv.source.startswith("mlflow-artifacts:/")
    assert list(server.artifacts.rglob("adapter.safetensors"))

    mlflow.set_tracking_uri(server.url)
    out = mlflow.pyfunc.load_model("models:/ptv2-trec@challenger").predict(pd.DataFrame({"text": ["Who wrote Hamlet ?"]}))
    labels = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
    assert out["label"].iloc[0] in labels and 0 < out["score"].iloc[0] <= 1
    tagged = load_registered("models:/ptv2-wnut16@challenger").model.predict(
        None, pd.DataFrame({"text": ["Off to Paris with Anna", "hello"]}))
    assert tagged["tokens"].tolist() == [["Off", "to", "Paris", "with", "Anna"], ["hello"]]
    assert [len(t) for t in tagged["tags"]] == [5, 1] and [len(s) for s in tagged["scores"]] == [5, 1]


def test_server_stopped_during_registration_fails_fast_and_leaves_nothing(adapters, server):
    from components.registry.register import register_adapter

    first = register_adapter(adapters["bad"], "trec", name="ptv2-outage")
    before = registry_state(server.url, "ptv2-outage")
    assert before == ({"challenger": first.version}, [first.version])
    steps, killed = [], []

    def kill_after_upload(step):
        steps.append(step)
        if step == "logged":  # model files uploaded; the version is next
            server.kill()
            killed.append(time.monotonic())

    t0 = time.monotonic()
    with pytest.raises(Ptv2Error) as err:
        register_adapter(adapters["good"], "trec", name="ptv2-outage", on_step=kill_after_upload)
    t1 = time.monotonic()
    elapsed, after_kill = t1 - t0, t1 - killed[0]
    assert steps == ["validated", "logged"]
    msg = str(err.value)
    assert msg.startswith("registering 'ptv2-outage' failed, no version was created") and server.url in msg, msg
    print(f"\nserver down: error after {elapsed:.1f} s, {after_kill:.1f} s after the kill: {msg}")
    assert elapsed < 60, f"gave up after {elapsed:.0f} s"
    # one call's HTTP retries (3: 0, 2, 4 s, + jitter: 6-7 s), then the cleanup asks nothing of a server whose
    # /health does not answer; it marked the run FAILED through the same retries again (13 s, >= 12 s of backoff)
    assert after_kill < 11, f"error {after_kill:.1f} s after the kill"
    assert msg.endswith(" is not marked FAILED"), msg

    server.start()  # same PostgreSQL database, same port
    assert registry_state(server.url, "ptv2-outage") == before  # no half-registered version, no moved alias
    again = register_adapter(adapters["good"], "trec", name="ptv2-outage")  # and the registry still works
    assert again.version == max(before[1]) + 1 and again.aliases == ("challenger",)


def test_promote_against_a_stopped_server_names_the_server_at_once(tmp_path):
    """`ptv2 promote` with its tracking server gone: one line naming the server that does not answer
    (it said "reading registered model 'trec' failed", the task taken for a model name, after MLflow's retries)."""
    import subprocess

    from test_registry_support import BIN, base_env

    with refused_url() as url:  # a stopped server's port: connection refused
        env = base_env(PTV2_HOME=str(tmp_path / "home"), MLFLOW_TRACKING_URI=url)
        t0 = time.monotonic()
        done = subprocess.run([str(BIN / "ptv2"), "promote", "--task", "trec"], env=env, capture_output=True,
                              text=True, timeout=120)
        took = time.monotonic() - t0
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: MLflow tracking server {url} does not answer (") \
        and lines[0].endswith("Connection refused): start it, or point MLFLOW_TRACKING_URI at one that runs"), lines
    assert took < 30, f"{took:.0f} s"


def test_register_against_a_server_prints_its_stages_and_result_alone(adapters, server, tmp_path):
    """`ptv2 register` against a real server: stdout is the result line alone (no MLflow "🏃 View run" lines)
    and stderr the stages alone (no MLflow INFO "Waiting up to 300 seconds for model version to finish creation")."""
    from test_registry_support import base_env, ptv2

    env = base_env(PTV2_HOME=str(tmp_path / "home"), MLFLOW_TRACKING_URI=server.url)
    done = ptv2("register", "--task", "trec", "--adapter", str(adapters["good"]), "--name", "ptv2-cli-lines", env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("registered ptv2-cli-lines version 1"), done.stdout
    assert "INFO" not in done.stderr and "Waiting up to" not in done.stderr, done.stderr
