"""Serving: ``mlflow models serve`` answers REST predictions for models:/ptv2-trec@champion
(``--env-manager local``), and ``ptv2 ui`` serves the default store's UI on 127.0.0.1."""
from __future__ import annotations

import json
import socket
import subprocess
import urllib.error
import urllib.request

import pandas as pd
import pytest

from test_registry_support import BIN, adapters_fixture, base_env, error_line, free_port, ptv2, stop, wait_http

TEXTS = ["Who wrote Hamlet ?", "How far is the moon from the earth ?", "What does NASA stand for ?"]


@pytest.fixture(scope="session")
def adapters(tmp_path_factory):
    return adapters_fixture(tmp_path_factory)


@pytest.fixture(scope="module")
def registered(adapters, tmp_path_factory):
    """A default store (sqlite under PTV2_HOME) holding ptv2-trec version 1 as champion."""
    from mlflow import MlflowClient

    from components.registry.register import register_adapter

    home = tmp_path_factory.mktemp("serve-home")
    uri = f"sqlite:///{home / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as m:
        m.delenv("MLFLOW_TRACKING_URI", raising=False)
        m.setenv("PTV2_HOME", str(home))
        v = register_adapter(adapters["good"], "trec")
        MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(v.name, "champion", str(v.version))
        yield home, uri


def _reject(constant: str):
    raise AssertionError(f"{constant} in a response: not JSON (JSON.parse and most clients refuse it)")


def _send(url: str, body: dict) -> tuple[int, dict]:
    """HTTP status and body, parsed as strict JSON (NaN, Infinity refused), for errors too."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read(), parse_constant=_reject)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read(), parse_constant=_reject)


def _post(url: str, body: dict) -> dict:
    status, answer = _send(url, body)
    assert status == 200, answer
    return answer


def test_rest_predictions_from_mlflow_models_serve(registered, tmp_path):
    import mlflow

    home, uri = registered
    port = free_port()
    log = tmp_path / "serve.log"
    cmd = [str(BIN / "mlflow"), "models", "serve", "-m", "models:/ptv2-trec@champion", "--env-manager", "local",
           "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env=base_env(MLFLOW_TRACKING_URI=uri, PTV2_HOME=str(home)))
    try:
        try:
            wait_http(f"http://127.0.0.1:{port}/ping", 180, proc)
        except Exception as e:
            raise AssertionError(f"{e}\n{log.read_text()[-3000:]}") from None
        url = f"http://127.0.0.1:{port}/invocations"
        body = _post(url, {"dataframe_records": [{"text": t} for t in TEXTS]})
        split = _post(url, {"dataframe_split": {"columns": ["text"], "data": [[t] for t in TEXTS]}})
        singles = [_post(url, {"inputs": {"text": [TEXTS[0]]}}) for _ in range(3)]  # the tensor-style input too
        bare = _post(url, {"inputs": TEXTS})  # a bare list: MLflow gives it to the one column, text
        # blank texts among others: null label and score; they came back as NaN, which is not JSON
        blanks = _post(url, {"dataframe_records": [{"text": ""}, {"text": TEXTS[0]}, {"text": "  "}, {"text": None}]})
        # a list where a text belongs: 400 with the model's own message, no traceback (a generic
        # "unexpected error" with the message deep in a stack_trace before)
        refused = _send(url, {"dataframe_records": [{"text": TEXTS[:2]}, {"text": TEXTS[2]}]})
        mapping = _send(url, {"dataframe_records": [{"text": {"q": TEXTS[0]}}]})  # was labelled as its repr
    finally:
        stop(proc)
    preds = body["predictions"]
    assert len(preds) == 3 and split["predictions"] == preds and bare["predictions"] == preds
    blank = {"label": None, "score": None}
    assert blanks["predictions"][0] == blank and blanks["predictions"][2:] == [blank, blank], blanks
    assert blanks["predictions"][1]["label"] == preds[0]["label"]
    status, error = refused
    assert status == 400 and "stack_trace" not in error, error
    assert "a text must be a string, not a list (2 items)" in error["message"], error
    assert mapping[0] == 400 and "a text must be a string, not a dict (1 key)" in mapping[1]["message"], mapping
    # the same label, and the same score up to float noise (a batch of one is padded otherwise)
    assert all(len(one["predictions"]) == 1 and one["predictions"][0]["label"] == preds[0]["label"]
               and one["predictions"][0]["score"] == pytest.approx(preds[0]["score"], abs=1e-5) for one in singles), singles
    mlflow.set_tracking_uri(uri)
    try:
        local = mlflow.pyfunc.load_model("models:/ptv2-trec@champion").predict(pd.DataFrame({"text": TEXTS}))
    finally:
        mlflow.set_tracking_uri(None)
    assert [p["label"] for p in preds] == local["label"].tolist()
    assert [p["score"] for p in preds] == pytest.approx(local["score"].tolist(), abs=1e-5)


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the TCP sockets listening on ``port`` (IPv4 from /proc/net/tcp, as
    dotted quads; IPv6 from /proc/net/tcp6 as '::' for any, else its hex)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.readlines()[1:]:
                cols = row.split()
                addr, hex_port = cols[1].rsplit(":", 1)
                if cols[3] == "0A" and int(hex_port, 16) == port:
                    if len(addr) == 8:
                        found.add(socket.inet_ntoa(bytes.fromhex(addr)[::-1]))
                    else:
                        found.add("::" if set(addr) == {"0"} else addr)
    return found


def test_ptv2_ui_serves_the_default_store_on_localhost(registered, tmp_path):
    home, _ = registered
    port = free_port()
    with open(tmp_path / "ui.log", "w") as out:
        proc = subprocess.Popen([str(BIN / "ptv2"), "ui", "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, env=base_env(PTV2_HOME=str(home)))
    try:
        wait_http(f"http://127.0.0.1:{port}/health", 120, proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/2.0/mlflow/registered-models/get?name=ptv2-trec",
                                    timeout=30) as r:
            model = json.loads(r.read())["registered_model"]
        # bound to the loopback interface only (read from the kernel's socket table: no traffic off loopback)
        assert listening_addresses(port) == {"127.0.0.1"}
    finally:
        stop(proc)
    assert {a["alias"]: a["version"] for a in model["aliases"]} == {"challenger": "1", "champion": "1"}

    r = ptv2("ui", "--port", str(free_port()), env=base_env(PTV2_HOME=str(home), MLFLOW_TRACKING_URI="http://127.0.0.1:9"))
    assert r.returncode == 2 and "points to a server" in error_line(r.stderr)
    r = ptv2("ui", "--workers", "0", env=base_env(PTV2_HOME=str(home)))  # the server started with 0 workers
    assert r.returncode == 2 and "--workers must be at least 1, got 0" in error_line(r.stderr)


def test_ptv2_ui_on_a_port_in_use_says_so_and_creates_no_store(tmp_path):
    """mlflow's server logged the failed bind among its INFO lines and exited 0, after creating a
    new store; ptv2 had already printed the address, where another program answered."""
    home = tmp_path / "home"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = ptv2("ui", "--port", str(port), env=base_env(PTV2_HOME=str(home)), timeout=60)
    assert r.returncode == 2 and r.stderr.strip() == (
        f"error: port {port} on 127.0.0.1 cannot be used (Address already in use): pick another with --port"), r.stderr
    assert not home.exists()
