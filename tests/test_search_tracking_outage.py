"""A search whose MLflow tracking server (a real ``mlflow server`` process) is killed after its
first trial: the trials go on without waiting out MLflow's retries on each call, the search ends
with one error line naming --resume, and a --resume once the server is back logs the runs it
missed from the trial records."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from test_registry_support import BIN, MlflowServer, base_env

pytestmark = pytest.mark.slow

ARGS = ["search", "--task", "trec", "--model", "minilm", "--trials", "3", "--epochs", "1", "--max-train", "16",
        "--max-eval", "16", "--concurrency", "1"]


def test_a_tracking_server_killed_mid_search_costs_seconds_and_resume_backfills_the_runs(tmp_path):
    srv = MlflowServer(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts", tmp_path / "server.log")
    srv.start()
    env = base_env(PTV2_HOME=str(tmp_path / "home"), MLFLOW_TRACKING_URI=srv.url,
                   PTV2_OPTUNA_STORAGE=f"sqlite:///{tmp_path / 'optuna.db'}")
    out = tmp_path / "out"
    try:
        proc = subprocess.Popen([str(BIN / "ptv2"), *ARGS, "--out", str(out)], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        lines = []
        for line in proc.stderr:  # the progress lines; the server dies once the first trial ended
            lines.append(line)
            if line.startswith("[1/3]"):
                srv.kill()
                killed = time.monotonic()
                break
        # MLflow's own retries took 246 s per call here (each trial's start, the result, the clean-up)
        try:
            stdout, rest = proc.communicate(timeout=150)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # with the local Ray it started
            pytest.fail(f"the search still ran 150 s after its tracking server died: {''.join(lines)}")
        took = time.monotonic() - killed
        err = "".join(lines) + rest
        assert proc.returncode == 2, err
        assert "Traceback" not in err and "View run" not in stdout, (err, stdout)
        assert "warning: MLflow failed to open trial 1's run (server unreachable (connection refused; " in err, err
        last = err.strip().splitlines()[-1]
        assert last.startswith("error: the MLflow store failed to log the search's result (server unreachable") \
            and "--resume" in last, err
        assert "[3/3]" in err, err
        assert took < 120, f"{took:.0f} s from the server's death to the error"

        srv.start()
        done = subprocess.run([str(BIN / "ptv2"), *ARGS, "--out", str(out), "--resume"], env=env, text=True,
                              capture_output=True, timeout=400)
        assert done.returncode == 0, done.stderr
        assert "0 interrupted trials to run again" in done.stderr, done.stderr
        assert "from the trial records: 2 trial runs" in done.stderr, done.stderr
        assert "View run" not in done.stdout, done.stdout  # stdout: the result alone
        assert (out / "best.json").is_file()

        from mlflow import MlflowClient

        client = MlflowClient(srv.url)
        exp = client.get_experiment_by_name("ptv2-search")
        runs = client.search_runs([exp.experiment_id])
        trials = {r.data.params["optuna_number"]: r for r in runs if r.data.tags.get("ptv2.kind") == "trial"}
        assert sorted(trials) == ["0", "1", "2"], [r.info.run_name for r in runs]
        assert all(r.info.status in ("FINISHED", "FAILED") for r in runs), [(r.info.run_name, r.info.status) for r in runs]
        assert [trials[n].data.tags.get("ptv2.backfilled") for n in "012"] == [None, "true", "true"]
        assert all("dev_accuracy" in r.data.metrics for r in trials.values())
    finally:
        srv.kill()
