"""What the search tests on real Ray share (tests/test_search_ray.py, test_search_signals.py,
test_search_cluster.py, test_search_autoscale.py): a CI-sized space, the trace of real trial
executions, a local Ray for the in-process tests, Ray clusters of `ray start` processes, and
clean-up by process id.

Ray processes started here are stopped by process id: the local Ray by ``ray.shutdown()``,
the others by the processes that use their own temporary folder (never ``ray stop``, which
would stop every Ray on the machine).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState



PTV2 = str(Path(sys.executable).parent / "ptv2")
RAY = str(Path(sys.executable).parent / "ray")
SMALL = dict(max_train=48, max_eval=48)


def write_space(folder: Path, **over) -> Path:
    """A CI-sized space: two short lengths, 2 epochs, ASHA after epoch 1."""
    doc = {"prompt_len": [2, 4], "lr": {"low": 3e-3, "high": 3e-2, "log": True}, "epochs": 2, "trials": 2,
           "pruning": {"grace_period": 1, "reduction_factor": 2}, "sampler": {"n_startup_trials": 2, "seed": 0},
           "fixed": {"batch_size": 16}} | over
    path = folder / "space.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def search_process(tiny_model: str, tmp_path: Path, mlflow_uri: str, raytmp: str, **space) -> tuple[list[str], dict]:
    """``ptv2 search`` as a process on packaged trec with ``write_space(tmp_path, **space)``, one
    trial at a time on a local Ray of its own in ``raytmp`` (never one ``RAY_ADDRESS`` names), its
    study in ``tmp_path/optuna.db``, output to ``tmp_path/out``: its arguments and environment."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", RAY_TMPDIR=raytmp, PTV2_HOME=str(tmp_path / "home"))
    env.pop("RAY_ADDRESS", None)
    args = [PTV2, "search", "--task", "trec", "--model", tiny_model, "--space", str(write_space(tmp_path, **space)),
            "--max-train", "48", "--max-eval", "48", "--concurrency", "1", "--ray-cpus", "1",
            "--storage", f"sqlite:///{tmp_path}/optuna.db", "--mlflow-uri", mlflow_uri, "--out", str(tmp_path / "out")]
    return args, env


# how each trial-record status is kept in the Optuna study
OPTUNA_STATE = {"completed": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "diverged": TrialState.FAIL,
                "failed": TrialState.FAIL}


def study_states(study: optuna.Study) -> dict[str, TrialState]:
    return {t.user_attrs["ray_trial_id"]: t.state for t in study.trials}


def record_states(trials: list[dict]) -> dict[str, TrialState]:
    return {r["ray_trial_id"]: OPTUNA_STATE[r["status"]] for r in trials}


def markers(trace: Path) -> list[dict]:
    """One entry per real execution of the objective (written by the trainable)."""
    return [json.loads(p.read_text()) for p in trace.glob("*.json")]


def short_tmpdir(prefix: str) -> str:
    """Ray's unix sockets need a short path."""
    return tempfile.mkdtemp(prefix=prefix, dir="/tmp")


def pids_using(path: str) -> list[int]:
    """Processes whose command line or open files mention ``path`` (this test's Ray only)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            hit = path in Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
            if not hit:
                for fd in os.listdir(f"/proc/{entry}/fd"):
                    try:
                        if os.readlink(f"/proc/{entry}/fd/{fd}").startswith(path):
                            hit = True
                            break
                    except OSError:
                        continue
        except OSError:
            continue
        if hit:
            found.append(int(entry))
    return found


def kill_ray_using(path: str) -> None:
    """`ray stop --force`, restricted to the Ray that lives in ``path``; then remove ``path``."""
    for _ in range(10):
        pids = pids_using(path)
        if not pids:
            shutil.rmtree(path, ignore_errors=True)
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.5)


@pytest.fixture(autouse=True)
def ptv2_home(tmp_path, monkeypatch) -> Path:
    """Keep MLflow's artifact folder (PTV2_HOME/mlartifacts) out of the working tree."""
    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def trace_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("trace")


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory) -> str:
    """One MLflow store for the module: creating its tables takes seconds."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"
    MlflowClient(uri).search_experiments()
    return uri


@pytest.fixture(scope="module")
def local_ray(trace_dir):
    """One small local Ray for the in-process tests (run_search uses a Ray already running)."""
    import ray

    from optuna_studies.ray_session import worker_env

    os.environ["PTV2_SEARCH_TRACE_DIR"] = str(trace_dir)
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024**2,
             log_to_driver=False, runtime_env={"env_vars": worker_env()})
    yield ray
    ray.shutdown()
    os.environ.pop("PTV2_SEARCH_TRACE_DIR", None)


def mlflow_runs(uri: str, parent: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    run = client.get_run(parent)
    children = client.search_runs([run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'")
    return client, run, children


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_cluster(worker_args: tuple[str, ...] = (), client_port: int | None = None, worker_prefix: tuple[str, ...] = (),
                worker_env: dict[str, str] | None = None):
    """A head and a worker node, each with 1 CPU, started by `ray start`, token auth on; yields the
    head's address and the environment that joins it. With ``client_port`` the head serves Ray
    Client there too (``ray://127.0.0.1:<client_port>``). ``worker_prefix`` goes before the worker's
    `ray start` (a command it runs under), ``worker_env`` is added to its environment."""
    tmp = short_tmpdir("ptv2rc")
    port = free_port()
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    common = ["--num-cpus=1", "--object-store-memory=100000000", "--disable-usage-stats"]
    head = [f"--ray-client-server-port={client_port}"] if client_port else []
    try:
        subprocess.run([RAY, "start", "--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={tmp}",
                        *common, *head], env=env, check=True, capture_output=True, timeout=120)
        subprocess.run([*worker_prefix, RAY, "start", f"--address=127.0.0.1:{port}", *common, *worker_args],
                       env=env | (worker_env or {}), check=True, capture_output=True, timeout=120)
        yield f"127.0.0.1:{port}", env
    finally:
        kill_ray_using(tmp)
        if client_port:  # the client server's processes do not name the temp folder
            for pid in pids_listening(client_port):
                os.kill(pid, signal.SIGKILL)


def pids_listening(port: int) -> list[int]:
    """Processes with a TCP socket listening on ``port`` (from /proc: no lsof needed)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.readlines()[1:]:
                cols = row.split()
                if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(cols[9])
    pids = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd).removeprefix("socket:[").rstrip("]") in inodes for fd in fd_dir.iterdir()):
                pids.append(int(fd_dir.parent.name))
        except OSError:
            continue
    return pids


TUNE_STOP_NOISE = ("Stop signal received", "Press CTRL+C", "Failed to fetch metrics")


def trial_runs(uri: str, study: str, status: str) -> list:
    """The trial runs of ``study``'s parent run (named after it) with that MLflow status."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("ptv2-search")
    parents = client.search_runs([exp.experiment_id], f"attributes.run_name = '{study}'") if exp else []
    if not parents:
        return []
    return client.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parents[0].info.run_id}' "
                                                   f"and attributes.status = '{status}'")


def _group_members(pgid: int) -> list[str]:
    """The live processes (not zombies) of process group ``pgid``, as ``pid name``, from /proc."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:  # gone meanwhile
            continue
        name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if int(rest[2]) == pgid and rest[0] != "Z":  # state, ppid, pgrp
            found.append(f"{pid} {name}")
    return found


def sigterm_at(args: list[str], env: dict, raytmp: str, when, group: bool = False) -> tuple[str, list[str]]:
    """Run the `ptv2 search` of ``args``, send it SIGTERM at the first stderr line ``when`` is true
    of, and return its stderr and lines once it ended: with exit 143 and one error line, the last.
    ``group``: the command runs in a process group of its own and the signal goes to the whole group,
    as ``timeout`` sends it; no process of the group is left once the command ended."""
    from conftest import interruptible

    try:
        driver = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                  preexec_fn=interruptible, start_new_session=group)
        seen = []
        for line in driver.stderr:
            seen.append(line)
            if when(line):
                break
        assert driver.poll() is None, "".join(seen)[-3000:]
        if group:
            os.killpg(driver.pid, signal.SIGTERM)
        else:
            driver.send_signal(signal.SIGTERM)
        _, rest = driver.communicate(timeout=120)
        if group:  # Ray's processes went with the driver (a few seconds to be reaped)
            for _ in range(20):
                left = _group_members(driver.pid)
                if not left:
                    break
                time.sleep(0.5)
            assert not left, left
    finally:
        if driver.poll() is None:
            driver.kill()
        kill_ray_using(raytmp)
    err = "".join(seen) + rest
    lines = err.strip().splitlines()
    assert driver.returncode == 143, (driver.returncode, err[-3000:])
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], err[-3000:]
    return err, lines
