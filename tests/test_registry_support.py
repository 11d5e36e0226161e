"""Shared helpers for the registry, promotion and serving tests (no tests here).

Real parts only: adapters trained with ptv2_core on the packaged MiniLM, MLflow on sqlite, a
real ``mlflow server`` process on PostgreSQL, real ``mlflow models serve``. Adapters are trained
once per test process and shared by every module (cached by folder).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
_TRAINED: dict[str, dict[str, Path]] = {}

# name → (task, TrainConfig overrides). "good" learns; "bad" takes one step at a vanishing
# learning rate, so it keeps its random head: clearly worse, and no better than majority class.
RECIPES = {
    "good": ("trec", dict(epochs=1, lr=3e-2, max_train=200)),
    "bad": ("trec", dict(epochs=1, lr=1e-12, max_train=32)),
    "ner": ("wnut16", dict(epochs=1, lr=2e-2, max_train=64)),
}


def train_adapter(out: Path, task: str, **overrides) -> Path:
    """``ptv2 train --out`` in-process: adapter files plus metrics.json."""
    from ptv2_core.adapter import save_adapter
    from ptv2_core.report import metrics_document
    from ptv2_core.train import TrainConfig, train

    cfg = TrainConfig(task=task, model="minilm", prompt_len=4, max_eval=100, batch_size=32, device="cpu",
                      progress=False, **overrides)
    result = train(cfg)
    doc = metrics_document(result, cfg)
    save_adapter(result.model, out, result.spec, cfg.model, result.base_fingerprint,
                 extra={"metrics_file": "metrics.json", "train_config": cfg.to_dict()},
                 files={"metrics.json": json.dumps(doc, indent=2) + "\n"})
    return out


def trained_adapters(root: Path) -> dict[str, Path]:
    """The three adapters of ``RECIPES`` under ``root`` (trained on first call in this process)."""
    key = str(root)
    if key not in _TRAINED:
        out = {}
        for name, (task, overrides) in RECIPES.items():
            out[name] = root / name
            if not (out[name] / "metrics.json").is_file():
                train_adapter(out[name], task, **overrides)
        _TRAINED[key] = out
    return _TRAINED[key]


def adapters_fixture(tmp_path_factory) -> dict[str, Path]:
    # PTV2_TEST_ADAPTER_CACHE keeps them across runs while developing (never set in CI)
    cache = os.environ.get("PTV2_TEST_ADAPTER_CACHE")
    return trained_adapters(Path(cache) if cache else tmp_path_factory.getbasetemp() / "ptv2-registry-adapters")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    """Stop a process started with start_new_session=True, and its whole group (workers)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    # the venv's bin first, as in an activated venv: `mlflow models serve` runs `uvicorn` from PATH
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1",
               PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra)
    return env


def ptv2(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "ptv2"), *args], env=env, capture_output=True, text=True, timeout=timeout)


class MlflowServer:
    """A real ``mlflow server`` on 127.0.0.1 with the given backend store and a local,
    server-proxied artifact folder. ``kill()`` and ``start()`` simulate an outage. ``jobs=False``: without
    MLflow's job execution (MLflow 3's huey consumers and job runner, five more Python processes that
    import MLflow: about 10 of the 20 CPU seconds of a start here), for a test that needs tracking alone."""

    def __init__(self, backend: str, artifacts: Path, log: Path, jobs: bool = True):
        self.backend, self.artifacts, self.log, self.jobs = backend, artifacts, log, jobs
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> None:
        cmd = [str(BIN / "mlflow"), "server", "--backend-store-uri", self.backend,
               "--artifacts-destination", str(self.artifacts), "--host", "127.0.0.1", "--port", str(self.port),
               "--workers", "1"]
        with open(self.log, "a") as log:
            extra = {} if self.jobs else {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=base_env(**extra),
                                         start_new_session=True)
        try:
            wait_http(self.url + "/health", timeout, self.proc)
        except Exception:
            self.kill()
            raise RuntimeError(f"mlflow server did not start: {self.log.read_text()[-3000:]}") from None

    def kill(self) -> None:
        if self.proc is not None:
            stop(self.proc)


def postgres_database(base_url: str):
    """Create a fresh database next to ``base_url``'s; yields its URL, drops it afterwards."""
    import psycopg2
    from psycopg2 import sql

    name = f"ptv2_test_{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(base_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()
    prefix, _, _ = base_url.rpartition("/")
    try:
        yield f"{prefix}/{name}"
    finally:
        conn = psycopg2.connect(base_url)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        finally:
            conn.close()


def postgres_url_or_skip() -> str:
    url = os.environ.get("PTV2_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("PTV2_TEST_POSTGRES_URL is not set (e.g. postgresql://postgres@127.0.0.1:5432/test; "
                    ".ci/run sets it): the PostgreSQL-backed MLflow server tests need it")
    return url


def registry_state(uri: str, name: str) -> tuple[dict, list]:
    """``(aliases, sorted version numbers)`` of a registered model ({} and [] when absent)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    c = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        aliases = {k: int(v) for k, v in c.get_registered_model(name).aliases.items()}
    except MlflowException:
        return {}, []
    return aliases, sorted(int(v.version) for v in c.search_model_versions(f"name = '{name}'"))


def copy_adapter(src: Path, dst: Path, **config_changes) -> Path:
    """A copy of an adapter folder with top-level config keys replaced (nested dicts merged)."""
    shutil.copytree(src, dst)
    cfg_path = dst / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    for k, v in config_changes.items():
        cfg[k] = cfg[k] | v if isinstance(v, dict) else v
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    return dst


def register_after_barrier(adapter: str, task: str, name: str, uri: str, barrier, out) -> None:
    """Child process body for the concurrency test: validate, wait for the other process,
    then publish at the same moment."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from components.registry.register import register_adapter

    def step(s: str) -> None:
        if s == "validated":
            barrier.wait(timeout=300)

    try:
        v = register_adapter(adapter, task, name=name, tracking_uri=uri, on_step=step)
        out.put(("ok", v.version, v.aliases))
    except BaseException as e:  # report to the parent instead of dying silently
        out.put(("error", repr(e), ()))


def error_line(stderr: str) -> str:
    """The CLI's ``error: ...`` line (progress bars may precede it on stderr)."""
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, stderr[-2000:]
    return lines[0]
