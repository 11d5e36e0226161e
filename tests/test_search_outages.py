"""A search that loses a store mid-search, each a real one a test kills and brings back: its MLflow
tracking server (a real ``mlflow server`` process) after its first trial, where the trials go on
without waiting out MLflow's retries on each call, the search ends with one error line naming
--resume, and a --resume once the server is back logs the runs it missed from the trial records;
its Optuna study storage (the real PostgreSQL, reached through a TCP proxy the test starts and
kills: the server itself is shared), where the search ends with one error line naming --resume, no
traceback, and a --resume through the proxy started again finishes the search.

Each search is a process with its own local Ray (its stderr and exit status are what is checked);
two trials, one before the outage and one during it. Each --resume runs the real entry point in
this process, on the module's local Ray (``search_ray_support.local_ray``, one for both tests):
what it resumes is the study and work folder the process left, and a second interpreter and Ray
start cost seconds and show nothing more. The model is a tiny random BERT (MiniLM's tokenizer):
what is checked is the stores, not the training."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from search_ray_support import local_ray, ptv2_home, trace_dir  # noqa: F401  (fixtures are used by name)
from test_registry_support import BIN, MlflowServer, base_env, free_port, postgres_url_or_skip

pytestmark = pytest.mark.slow


def test_a_tracking_server_killed_mid_search_costs_seconds_and_resume_backfills_the_runs(tmp_path, local_ray,
                                                                                         tiny_model_dir, monkeypatch):
    import mlflow

    from conftest import run_cli

    srv = MlflowServer(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts", tmp_path / "server.log")
    srv.start()
    stores = dict(PTV2_HOME=str(tmp_path / "home"), MLFLOW_TRACKING_URI=srv.url,
                  PTV2_OPTUNA_STORAGE=f"sqlite:///{tmp_path / 'optuna.db'}")
    out = tmp_path / "out"
    args = ["search", "--task", "trec", "--model", tiny_model_dir, "--trials", "2", "--epochs", "1", "--max-train",
            "16", "--max-eval", "16", "--concurrency", "1", "--out", str(out)]
    try:
        proc = subprocess.Popen([str(BIN / "ptv2"), *args], env=base_env(**stores), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        lines = []
        for line in proc.stderr:  # the progress lines; the server dies once the first trial ended
            lines.append(line)
            if line.startswith("[1/2]"):
                srv.kill()
                killed = time.monotonic()
                break
        # MLflow's own retries took 246 s per call here (each trial's start, the result, the clean-up)
        stop = threading.Timer(150, os.killpg, (proc.pid, signal.SIGKILL))  # with the local Ray it started
        stop.start()
        last_trial = None
        for line in proc.stderr:  # the rest, timed: the last trial's end line, then the search's end
            lines.append(line)
            if line.startswith("[2/2]"):
                last_trial = time.monotonic()
        stdout = proc.stdout.read()
        proc.wait()
        stop.cancel()
        ended = time.monotonic()
        if proc.returncode == -signal.SIGKILL:
            pytest.fail(f"the search still ran 150 s after its tracking server died: {''.join(lines)}")
        took, tail = ended - killed, ended - (last_trial or ended)
        err = "".join(lines)
        assert proc.returncode == 2, err
        assert "Traceback" not in err and "View run" not in stdout, (err, stdout)
        assert "warning: MLflow failed to open trial 1's run (server unreachable (connection refused; " in err, err
        last = err.strip().splitlines()[-1]
        assert last.startswith("error: the MLflow store failed to log the search's result (server unreachable") \
            and "--resume" in last, err
        assert "[2/2]" in err, err  # the trial after the outage ran
        assert took < 120, f"{took:.0f} s from the server's death to the error"
        # the search knew the server was down: its end calls it no more (each call waited out the retries, 6.5 s)
        print(f"{took:.1f} s from the server's death to the exit, {tail:.1f} s from the last trial's end line")
        assert tail < 8, f"{tail:.1f} s from the last trial's end line to the error: {err}"

        srv.start()
        for k, v in stores.items():
            monkeypatch.setenv(k, v)
        try:
            done = run_cli(*args, "--resume")
        finally:  # the search set MLflow's process-wide tracking URI (and MLFLOW_TRACKING_URI) to the server's
            mlflow.set_tracking_uri(None)
        assert done.returncode == 0, done.stderr
        assert "0 interrupted trials to run again" in done.stderr, done.stderr
        assert any(line.endswith("from the trial records: 1 trial run") for line in done.stderr.splitlines()), \
            done.stderr
        assert "View run" not in done.stdout, done.stdout  # stdout: the result alone
        assert (out / "best.json").is_file()

        client = mlflow.MlflowClient(srv.url)
        exp = client.get_experiment_by_name("ptv2-search")
        runs = client.search_runs([exp.experiment_id])
        trials = {r.data.params["optuna_number"]: r for r in runs if r.data.tags.get("ptv2.kind") == "trial"}
        assert sorted(trials) == ["0", "1"], [r.info.run_name for r in runs]
        assert all(r.info.status in ("FINISHED", "FAILED") for r in runs), [(r.info.run_name, r.info.status) for r in runs]
        assert [trials[n].data.tags.get("ptv2.backfilled") for n in "01"] == [None, "true"]
        assert all("dev_accuracy" in r.data.metrics for r in trials.values())
    finally:
        srv.kill()


PROXY = """
import asyncio, sys
async def pipe(r, w):
    try:
        while (d := await r.read(65536)):
            w.write(d); await w.drain()
    except Exception:
        pass
    finally:
        w.close()
async def handle(cr, cw):
    try:
        sr, sw = await asyncio.open_connection(sys.argv[2], int(sys.argv[3]))
    except Exception:
        cw.close(); return
    await asyncio.gather(pipe(cr, sw), pipe(sr, cw))
async def main():
    async with await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1])) as srv:
        await srv.serve_forever()
asyncio.run(main())
"""


def _proxy(port: int, host: str, pg_port: int) -> subprocess.Popen:
    """The proxy, once it accepts connections."""
    proc = subprocess.Popen([sys.executable, "-c", PROXY, str(port), host, str(pg_port)], start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the proxy did not listen on {port} (exit status {proc.poll()})") from None
            time.sleep(0.1)


def test_the_study_storage_lost_mid_search_is_one_error_line_and_resume_finishes(tmp_path, local_ray, tiny_model_dir,
                                                                                  monkeypatch):
    from sqlalchemy.engine import make_url

    from conftest import run_cli

    pg = make_url(postgres_url_or_skip())
    port = free_port()
    storage = pg.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    stores = dict(PTV2_HOME=str(tmp_path / "home"), PTV2_OPTUNA_STORAGE=storage)
    out = tmp_path / "out"
    args = ["search", "--task", "trec", "--model", tiny_model_dir, "--trials", "2", "--epochs", "1", "--max-train",
            "16", "--max-eval", "16", "--concurrency", "1", "--out", str(out)]
    proxy = _proxy(port, pg.host or "127.0.0.1", pg.port or 5432)
    try:
        proc = subprocess.Popen([str(BIN / "ptv2"), *args], env=base_env(**stores), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if line.startswith("[1/2]"):
                os.killpg(proxy.pid, signal.SIGKILL)  # the database goes away, its connections with it
                proxy.wait()
                break
        try:
            _, rest = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"the search still ran 240 s after its study storage went away: {''.join(lines)}")
        err = "".join(lines) + rest
        assert proc.returncode == 2 and "Traceback" not in err, err
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"error: the study storage postgresql://{pg.username}@127.0.0.1:{port}/") \
            and "Connection refused" in last and "the trials that ended are kept (1 trial, in the study and " in last and "--resume" in last, err

        proxy = _proxy(port, pg.host or "127.0.0.1", pg.port or 5432)
        for k, v in stores.items():
            monkeypatch.setenv(k, v)
        try:
            done = run_cli(*args, "--resume")
        finally:  # the search set MLflow's process-wide tracking URI (and MLFLOW_TRACKING_URI) to its store
            import mlflow

            mlflow.set_tracking_uri(None)
        assert done.returncode == 0, done.stderr
        assert done.stderr.startswith("resuming study") and "1 of 2 trials done" in done.stderr, done.stderr
        assert (out / "best.json").is_file()
    finally:
        os.killpg(proxy.pid, signal.SIGKILL)
        proxy.wait()
