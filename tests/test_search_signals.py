"""`ptv2 search` stopped: killed with SIGKILL then resumed, Ctrl-C (SIGINT) and SIGTERM at each
stage, each the real command as a process with its own local Ray, or in this process where the
signal is a KeyboardInterrupt raised at a chosen line. The `--resume` that follows a stopped
process runs the real entry point in this process, on the module's local Ray.
"""
from __future__ import annotations

import csv
import json
import re
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest

from optuna_studies.study import default_study_name, finished_count
from optuna_studies.work import work_dir
from search_ray_support import (  # noqa: F401  (fixtures are used by name)
    search_process, write_space, markers, short_tmpdir, kill_ray_using, ptv2_home, trace_dir, mlflow_uri, local_ray,
    mlflow_runs, TUNE_STOP_NOISE, trial_runs, sigterm_at,
)
from test_search import tiny_model  # noqa: F401  (module fixture: a tiny BERT model folder)


def test_driver_killed_mid_search_then_resume_reruns_nothing_finished(local_ray, tiny_model, tmp_path, trace_dir,
                                                                     mlflow_uri):
    """SIGKILL `ptv2 search` once a trial has finished; `--resume` completes the study, keeping
    every finished trial and running none of them again (counted by real executions). The killed
    search is a process with its own Ray; the resume runs the real entry point in this process, on
    the module's local Ray (a second interpreter and Ray start cost seconds and show nothing more:
    what is resumed is the study and work folder the killed process left). Both trace into the
    module's trace folder: this test's executions are the ones not there before."""
    from conftest import run_cli

    raytmp = short_tmpdir("ptv2rk")
    before = {m["trial_id"] for m in markers(trace_dir)}

    def ran() -> list[dict]:
        return [m for m in markers(trace_dir) if m["trial_id"] not in before]

    storage = f"sqlite:///{tmp_path}/optuna.db"
    args, env = search_process(tiny_model, tmp_path, mlflow_uri, raytmp, trials=3)
    env["PTV2_SEARCH_TRACE_DIR"] = str(trace_dir)
    records = work_dir(tmp_path / "out", default_study_name("trec", tiny_model, tmp_path / "out")) / "trials"
    try:
        driver = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        # kill once a trial has finished and the next one is running (it becomes an orphan)
        deadline = time.time() + 300
        while time.time() < deadline and driver.poll() is None:
            done_now = len(list(records.glob("*.json")))
            if done_now >= 1 and len(ran()) > done_now:
                break
            time.sleep(0.2)
        assert driver.poll() is None, "the search ended before it could be killed"
        assert list(records.glob("*.json")), "no trial finished in time"
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        kill_ray_using(raytmp)
    assert not (tmp_path / "out").exists()  # nothing half-written

    name = optuna.get_all_study_names(storage)[0]
    first = {t.number: t for t in optuna.load_study(study_name=name, storage=storage).trials}
    finished = {n: t for n, t in first.items() if t.state.is_finished()}
    assert finished, "the killed run left no finished trial"
    executed_before = len(ran())

    out = run_cli(*args[1:], "--resume")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "resuming study" in out.stderr

    final = {t.number: t for t in optuna.load_study(study_name=name, storage=storage).trials}
    for n, t in finished.items():  # kept as they were
        assert (final[n].state, final[n].params, final[n].value) == (t.state, t.params, t.value)
    orphans = [t for t in final.values() if t.user_attrs.get("ptv2_orphaned")]
    done = [t for t in final.values() if t.state.is_finished() and not t.user_attrs.get("ptv2_orphaned")]
    assert len(done) == 3 and len(orphans) >= 1
    runs = ran()
    per_trial = {}
    for m in runs:
        per_trial[m["trial_id"]] = per_trial.get(m["trial_id"], 0) + 1
    for t in finished.values():
        assert per_trial[t.user_attrs["ray_trial_id"]] == 1  # never run again
    # every execution is a finished trial or an interrupted one; the resumed run added only new trials
    assert len(runs) == len(done) + len(orphans)
    assert len(runs) - executed_before == len(done) - len(finished)
    retried = {t.user_attrs.get("ptv2_retry_of") for t in final.values()} - {None}
    assert retried == {t.number for t in orphans}
    best = json.loads((tmp_path / "out" / "best.json").read_text())
    assert best["trials"]["total"] == 3 and (tmp_path / "out" / "adapter").is_dir()
    # one parent run across both drivers; the interrupted trial's run is marked KILLED
    _, parent, children = mlflow_runs(mlflow_uri, best["mlflow"]["parent_run_id"])
    assert parent.info.status == "FINISHED"
    statuses = sorted(c.info.status for c in children)
    assert statuses.count("KILLED") == len(orphans) and len(children) == 3 + len(orphans)


def test_ctrl_c_stops_a_search_with_its_resume_line_and_the_resume_finishes_it(local_ray, tiny_model, tmp_path,
                                                                               mlflow_uri):
    """SIGINT, as Ctrl-C sends it, once a trial has finished: exit 130, the last line names the
    finished trials and `--resume`, Ray Tune's own "Tuner.restore(...)" hint is not shown (it
    contradicted ours), nothing is written to --out; the same command with --resume finishes (the
    real entry point in this process, on the module's local Ray)."""
    from conftest import interruptible, run_cli

    raytmp = short_tmpdir("ptv2ri")
    args, env = search_process(tiny_model, tmp_path, mlflow_uri, raytmp, trials=3)
    study = default_study_name("trec", tiny_model, tmp_path / "out")
    records = work_dir(tmp_path / "out", study) / "trials"
    try:
        driver = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                  preexec_fn=interruptible)
        seen_running: dict[str, str] = {}  # run id -> Ray trial id of the unfinished trials' open runs

        def next_trial_running() -> bool:  # a trial has finished, and another one's MLflow run is open
            done = {p.stem for p in records.glob("*.json")}
            for r in trial_runs(mlflow_uri, study, "RUNNING"):
                if r.data.tags.get("ptv2.ray_trial_id") not in done:
                    seen_running[r.info.run_id] = r.data.tags.get("ptv2.ray_trial_id")
            return bool(done) and bool(seen_running)

        deadline = time.time() + 300
        while time.time() < deadline and driver.poll() is None and not next_trial_running():
            time.sleep(0.5)
        assert driver.poll() is None, "the search ended before it could be interrupted"
        driver.send_signal(signal.SIGINT)
        _, err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
        kill_ray_using(raytmp)
    lines = err.strip().splitlines()
    assert driver.returncode == 130, err[-3000:]
    # an end line counted against the budget for each trial that finished, a start line for each that ran
    # (the one stopped too: it has no end line)
    ended = [line.split("]")[0] for line in lines if line.startswith("[")]
    assert ended == [f"[{k}/3" for k in range(1, len(list(records.glob("*.json"))) + 1)], err[-3000:]
    started = [line for line in lines if re.fullmatch(r"trial \d+ started \(prompt_len \d+, lr \S+\)", line)]
    # (the stopped one's start line is there unless Tune took the signal between one trial's end and the next start)
    assert len(ended) <= len(started) <= len(ended) + 1, err[-3000:]
    assert lines[-1].startswith("error: search stopped after ") and "of 3 trials" in lines[-1] and "--resume" in lines[-1]
    assert "Tuner.restore" not in err, err[-3000:]
    assert not (tmp_path / "out").exists()
    # what the user reads: the search's own line on its study, not Optuna's and Ray Tune's chatter
    # ("Using an existing study ...", a configuration box, a path to the deleted work folder)
    assert any(line.startswith("study '") and "3 trials of up to" in line for line in lines), err[-3000:]
    # nor Ray Tune's on being stopped (its "Stop signal received ... Press CTRL+C ... to skip", and metrics it
    # could not read from the trial folders it had not written yet)
    for noise in ("Using an existing study", "A new study created", "View detailed results", "tensorboard",
                  *TUNE_STOP_NOISE):
        assert noise not in err, noise
    # the trial Tune stopped has no RUNNING MLflow run left behind: KILLED, tagged interrupted. The run seen
    # open when the signal was sent ended one of two ways: stopped (KILLED, interrupted, no record), or, where
    # its trial finished between that look and Tune taking the signal, FINISHED with its
    # record and its end line (counted above); CI met the second once
    assert not trial_runs(mlflow_uri, study, "RUNNING")
    assert seen_running, "no trial was running when the signal was sent"
    done = {p.stem for p in records.glob("*.json")}
    ended_as = {r.info.run_id: (r.info.status, r.data.tags.get("ptv2.status"), r.data.tags.get("ptv2.ray_trial_id"))
                for status in ("FINISHED", "KILLED", "FAILED") for r in trial_runs(mlflow_uri, study, status)}
    assert set(seen_running) <= set(ended_as), (seen_running, ended_as)
    for run_id, (status, tag, trial_id) in ended_as.items():
        assert (status == "FINISHED") if trial_id in done else (status, tag) == ("KILLED", "interrupted"), ended_as
    # the parent run ended KILLED with the table and pictures of the trials that had finished (no best.json:
    # nothing was chosen), the map starring the best of them
    from mlflow.tracking import MlflowClient

    from optuna_studies.plots import FILES
    from optuna_studies.records import best_record, read_records

    client = MlflowClient(mlflow_uri)
    (parent,) = client.search_runs([client.get_experiment_by_name("ptv2-search").experiment_id],
                                   f"attributes.run_name = '{study}'")
    assert parent.info.status == "KILLED"
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} == set(FILES)
    logged = Path(client.download_artifacts(parent.info.run_id, "", str(tmp_path / "logged")))
    with open(logged / "trials.csv") as f:
        assert sorted(r["ray_trial_id"] for r in csv.DictReader(f)) == sorted(p.stem for p in records.glob("*.json"))
    best = best_record(read_records(records.parent), "max")
    assert f'"name":"best: trial {best["number"]}"' in (logged / "length_lr.html").read_text()

    storage = f"sqlite:///{tmp_path}/optuna.db"
    done_before = finished_count(optuna.load_study(study_name=study, storage=storage))
    out = run_cli(*args[1:], "--resume")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "resuming study" in out.stderr and "scoring the best trial's adapter" in out.stderr
    # the resumed run's count goes on from the trials the first run finished
    ended = [line.split("]")[0] for line in out.stderr.splitlines() if line.startswith("[")]
    assert done_before >= 1 and ended == [f"[{k}/3" for k in range(done_before + 1, 4)], out.stderr[-3000:]
    best = json.loads((tmp_path / "out" / "best.json").read_text())
    assert best["trials"]["total"] >= 3 and (tmp_path / "out" / "adapter" / "metrics.json").is_file()


def test_sigterm_stops_a_search_as_ctrl_c_does(tiny_model, tmp_path, mlflow_uri):
    """SIGTERM (`kill`, `timeout`, a stopped pod) to `ptv2 search` once a trial has started: Ray's
    own handler aborted the driver with a stack dump ("*** SIGTERM received at time=..."), exit 134,
    no error line, MLflow runs left RUNNING. It now stops the search as Ctrl-C does: one error line
    with the way on, exit 143, no run left RUNNING, nothing written to --out."""
    raytmp = short_tmpdir("ptv2rt")
    args, env = search_process(tiny_model, tmp_path, mlflow_uri, raytmp, trials=2)
    study = default_study_name("trec", tiny_model, tmp_path / "out")
    # a trial has started: Tune runs
    err, lines = sigterm_at(args, env, raytmp, lambda line: re.fullmatch(r"trial \d+ started .*", line.strip()))
    assert lines[-1].startswith("error: terminated (SIGTERM); search stopped ") and "--resume" in lines[-1], lines[-1]
    assert "SIGTERM received at time" not in err and "Traceback" not in err, err[-3000:]
    for noise in TUNE_STOP_NOISE:
        assert noise not in err, err[-3000:]
    assert any(line.startswith("study '") for line in lines), err[-3000:]
    assert not (tmp_path / "out").exists()
    assert not trial_runs(mlflow_uri, study, "RUNNING")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_uri)
    (parent,) = client.search_runs([client.get_experiment_by_name("ptv2-search").experiment_id],
                                   f"attributes.run_name = '{study}'")
    assert parent.info.status == "KILLED"


def test_sigterm_to_the_process_group_stops_a_search_as_ctrl_c_does(tiny_model, tmp_path, mlflow_uri):
    """SIGTERM to the command's whole process group, as `timeout` (and `kill -- -PGID`) sends it:
    the local Ray's GCS, raylet and workers died at once beside the driver, which then waited 60 s
    for the GCS ("Failed to connect to GCS within 60 seconds ... The program will terminate") and
    ended with exit 1 and no error line, the raylet and workers left running meanwhile."""
    raytmp = short_tmpdir("ptv2rt")
    args, env = search_process(tiny_model, tmp_path, mlflow_uri, raytmp, trials=2)
    started = time.monotonic()
    err, lines = sigterm_at(args, env, raytmp, lambda line: re.fullmatch(r"trial \d+ started .*", line.strip()),
                            group=True)
    assert lines[-1].startswith("error: terminated (SIGTERM); search stopped ") and "--resume" in lines[-1], lines[-1]
    assert "Failed to connect to GCS" not in err and "Traceback" not in err, err[-3000:]
    assert not (tmp_path / "out").exists() and time.monotonic() - started < 200


def test_sigterm_after_the_last_trial_stops_the_search_as_it_scores_the_best(tiny_model, tmp_path, mlflow_uri):
    """Ray Tune puts its own SIGINT handler on as its trials start and takes it off only when it
    fires: after trials that ended normally it stayed for the rest of the command, and SIGTERM (or
    Ctrl-C) as the best adapter was scored only set a flag nobody read: the search ran on to exit 0.
    The handler the command had is put back as Tune ends: one error line with the way on, 143."""
    raytmp = short_tmpdir("ptv2rs")
    args, env = search_process(tiny_model, tmp_path, mlflow_uri, raytmp, trials=1, epochs=1)
    # the last trial ended; the best adapter is being scored
    err, lines = sigterm_at(args, env, raytmp, lambda line: line.startswith("scoring the best trial's adapter"))
    # every trial ran: --resume scores the best and writes the output without running one again
    assert lines[-1] == ("error: terminated (SIGTERM); search stopped after 1 of 1 trials; run the same command "
                         "with --resume to finish it"), lines[-1]
    assert "Traceback" not in err, err[-3000:]
    assert not (tmp_path / "out").exists()


def test_a_ctrl_c_before_any_trial_finished_says_so_on_its_one_line(local_ray, tiny_model, tmp_path, mlflow_uri):
    """A Ctrl-C Tune does not take (here as the study's line is printed, before Tune starts) ended
    with "interrupted; the trials that finished are kept in the study" when none had finished (nor
    started): the line says so, and --resume, which starts the study as it is, is the way on."""
    import contextlib
    import io

    from mlflow.tracking import MlflowClient

    from pipelines.cli import main

    class CtrlCAt(io.StringIO):  # standard error, with a Ctrl-C as the study's line is printed
        def write(self, text: str) -> int:
            if text.startswith("study '"):
                raise KeyboardInterrupt
            return super().write(text)

    err = CtrlCAt()
    args = ["search", "--task", "trec", "--model", tiny_model, "--space", str(write_space(tmp_path, trials=3)),
            "--max-train", "48", "--max-eval", "48", "--storage", f"sqlite:///{tmp_path}/optuna.db",
            "--mlflow-uri", mlflow_uri, "--out", str(tmp_path / "out")]
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_:
        main(args)
    lines = err.getvalue().strip().splitlines()
    assert exit_.value.code == 130 and lines[-1] == (
        "error: search stopped before any of its 3 trials finished: run the same command with --resume to start "
        "it again"), lines
    assert not [line for line in lines if line.startswith("error:")][:-1] and "Traceback" not in err.getvalue()
    # the study's parent run, opened already, is ended KILLED (it stayed RUNNING)
    study = default_study_name("trec", tiny_model, tmp_path / "out")
    client = MlflowClient(mlflow_uri)
    (parent,) = client.search_runs([client.get_experiment_by_name("ptv2-search").experiment_id],
                                   f"attributes.run_name = '{study}'")
    assert parent.info.status == "KILLED"
    assert not (tmp_path / "out").exists()


def test_a_ctrl_c_after_the_output_is_written_says_the_search_finished(local_ray, tiny_model, tmp_path, mlflow_uri,
                                                                       monkeypatch):
    """A Ctrl-C after the output was written (and the work folder deleted), here as the trial runs
    left open are ended, marked the search's run KILLED and said "search stopped after 1 of 1
    trials; run the same command with --resume", which --resume then refused (no work folder). The
    search finished: its run stays FINISHED and the line says where its output is; still exit 130,
    as a Ctrl-C stops a script that runs the command."""
    import contextlib
    import io

    from mlflow.tracking import MlflowClient

    from optuna_studies import search
    from pipelines.cli import main

    def ctrl_c_after(parent, trials, say):  # the real clean-up, then the Ctrl-C
        end_trial_runs_left_open(parent, trials, say)
        raise KeyboardInterrupt

    end_trial_runs_left_open = search.end_trial_runs_left_open
    monkeypatch.setattr(search, "end_trial_runs_left_open", ctrl_c_after)
    out = tmp_path / "out"
    args = ["search", "--task", "trec", "--model", tiny_model, "--space", str(write_space(tmp_path, trials=1, epochs=1)),
            "--max-train", "48", "--max-eval", "48", "--storage", f"sqlite:///{tmp_path}/optuna.db",
            "--mlflow-uri", mlflow_uri, "--out", str(out)]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_:
        main(args)
    lines = err.getvalue().strip().splitlines()
    assert exit_.value.code == 130, lines
    assert lines[-1] == f"error: interrupted after the search finished; its result is written to {out}", lines
    assert not [line for line in lines if line.startswith("error:")][:-1] and "Traceback" not in err.getvalue()
    assert (out / "best.json").is_file() and (out / "adapter" / "metrics.json").is_file()
    study = default_study_name("trec", tiny_model, out)
    client = MlflowClient(mlflow_uri)
    (parent,) = client.search_runs([client.get_experiment_by_name("ptv2-search").experiment_id],
                                   f"attributes.run_name = '{study}'")
    assert parent.info.status == "FINISHED"
