"""The whole pipeline through kfp.local on a tiny budget: every component runs as a real KFP
task (prepare, pre-train, search on Ray, final adapter, register, promote), ending with
registered versions in the real (sqlite) MLflow registry. One of the two tasks is a user task
(a task YAML and its CSV files), the way users bring their own data.

The run's model is a hub model, ``org/tiny`` (a tiny BERT) from a temporary Hugging Face cache
(``HF_HOME``, tests/hub_support.py), offline, unpinned: ``ptv2 run`` pins it to the commit main
names as it starts, and main moves to another commit right after its header. Every step (the
pre-trained prompt, each trial on Ray, the final adapter, the registered versions) must still load
the commit pinned at the start, read from the cache ``HF_HOME`` names in kfp.local's and Ray's
processes. One whole run checks both (a second whole run cost 1.5 to 3 minutes of CI). The default
model (no ``model:`` in a config) is checked as the config resolves it, in this process.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from hub_support import SHA_A, SHA_B, hub_home, point_at, set_main  # noqa: F401  (hub_home: a module fixture, used by name)

TINY = """\
model: org/tiny
tasks: [trec, {user_task}]
prompt_lengths: [2, 4]
trials_per_task: 2
epochs: 1
search_concurrency: 1
pretrain_epochs: 1
max_train: 64
max_eval: 32
"""

USER_TASK = """\
name: my-intents
type: sequence
text_column: utterance
label_column: intent
data:
  train: intents.csv
"""
GREET = ["hello there", "hi", "good morning", "hey you", "greetings", "howdy", "good evening", "hi all"]
BYE = ["bye now", "see you", "good night", "farewell", "take care", "so long", "later", "bye all"]


def user_task(folder) -> str:
    """A sequence task from one CSV file (dev and test carved from it by the seed)."""
    import pandas as pd

    folder.mkdir()
    rows = [(f"{t} {i}", label) for i in range(4) for words, label in ((GREET, "greet"), (BYE, "bye")) for t in words]
    pd.DataFrame(rows, columns=["utterance", "intent"]).to_csv(folder / "intents.csv", index=False)
    (folder / "intents.yaml").write_text(USER_TASK)
    return str(folder / "intents.yaml")


@pytest.mark.slow
def test_local_pipeline_run_registers_versions(tmp_path, hub_home):
    cfg = tmp_path / "tiny.yaml"
    mine_yaml = user_task(tmp_path / "mine")
    cfg.write_text(TINY.format(user_task=mine_yaml))
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k not in {"MLFLOW_TRACKING_URI", "PTV2_OPTUNA_STORAGE", "RAY_ADDRESS",
                                                            "HF_HUB_CACHE"}}
    env |= {"PTV2_HOME": str(home), "HF_HOME": str(hub_home), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    set_main(hub_home, SHA_A)
    proc = None
    try:
        # unbuffered bytes, read a line at a time: a text pipe reads ahead, and communicate() reads the pipe
        # itself, not that buffer: the line after the header (the pinned model's) was lost, seen under load
        proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run", "--config", str(cfg)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, env=env, cwd=tmp_path)
        seen = []
        while line := proc.stderr.readline():  # the header: the parameters are resolved, no step has started
            seen.append(line)
            if line.startswith(b"ptv2 run"):
                break
        set_main(hub_home, SHA_B)  # the hub's main moves on: another commit, other weights
        out, err = proc.communicate(timeout=1500)
        out, err = out.decode(), (b"".join(seen) + err).decode()
        assert proc.returncode == 0, err[-4000:]
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        set_main(hub_home, SHA_A)
    # the run pinned the unpinned hub name to main's commit as it started, and said so
    assert f"model org/tiny: pinned to commit {SHA_A[:7]} (org/tiny@{SHA_A}) for this run" in err, err[-4000:]
    assert "ptv2 run finished" in out and "ptv2-trec v1" in out and "ptv2-my-intents v1" in out
    # the cluster-only settings (display names, the pods' CPU and memory) are not warned about, task by task
    assert "UserWarning" not in err + out and "have no effect" not in err + out
    # the command that opens the UI names this environment's ptv2, as a path that works from where the run was
    ui_line = next(line for line in out.splitlines() if line.startswith("Review trials"))
    command = ui_line.split(f"PTV2_HOME={home} ", 1)[1].split()
    assert command[1:] == ["ui"] and (tmp_path / command[0]).is_file(), ui_line

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    versions = client.search_model_versions("name = 'ptv2-trec'")
    assert [int(v.version) for v in versions] == [1]
    mv = client.get_model_version("ptv2-trec", "1")
    # a first version is the challenger, and the champion too when promotion says so
    assert "challenger" in mv.aliases and ("champion" in mv.aliases) == (mv.tags["promotion.decision"] == "promoted")
    assert mv.tags["task"] == "trec" and mv.tags["prompt_len"] in {"2", "4"}
    # on the commit pinned as the run started, not the one main moved to: the final adapter's base model
    assert mv.tags["base_model"] == f"org/tiny@{SHA_A}" and mv.tags["base_revision"] == SHA_A, mv.tags
    assert mv.tags["data_hash"].startswith("sha256:")
    # its test metrics came from today's stratified 32-row subset (the prepared splits), not a random one
    from ptv2_core.tasks import load_task
    from ptv2_core.tasks.splits import split_hash

    spec, data = load_task("trec", seed=0, max_eval=32, max_train=1)
    assert mv.tags["data_hash"] == split_hash(spec, data["test"]) and mv.tags["test_examples"] == "32"
    assert mv.tags["subset"] == "stratified" and "metrics_subset" not in mv.tags, mv.tags
    # lineage: the version names the pipeline run that made it (kfp.local's run name, the folder of this
    # run's outputs under its own pipeline root; on a cluster, the Kubeflow run), and the log is the run's own
    (run_root,) = (home / "pipeline-root").iterdir()
    (pipeline_run,) = [p.name for p in run_root.iterdir()]
    assert mv.tags["pipeline_run"] == pipeline_run and pipeline_run.startswith("ptv2-prompt-search-")
    # and the search that made its adapter: the task's parent run in ptv2-search and its best trial's run
    search_run = client.get_run(mv.tags["ptv2.search_run_id"])
    assert (search_run.data.tags["ptv2.kind"], search_run.data.tags["ptv2.task"]) == ("search", "trec")
    assert search_run.data.tags["ptv2.best_run_id"] == mv.tags["ptv2.trial_run_id"]
    assert client.get_run(mv.tags["ptv2.trial_run_id"]).data.tags["mlflow.parentRunId"] == search_run.info.run_id
    # final_epochs 0 (the default): the registered adapter is the search's best trial's, not a second training
    branches = sorted((run_root / pipeline_run).glob("for-loop-*"))
    assert len(branches) == 2, branches
    for branch in branches:
        final, searched = branch / "final-train-op" / "adapter", branch / "search-op" / "adapter"
        assert (final / "adapter.safetensors").read_bytes() == (searched / "adapter.safetensors").read_bytes()
        # the trial that made it (on Ray, main moved by then) loaded the pinned commit
        assert json.loads((searched / "adapter_config.json").read_text())["base_model"]["revision"] == SHA_A
        doc = json.loads((final / "metrics.json").read_text())
        assert doc["source"] == "search" and doc["test"] == json.loads((searched / "metrics.json").read_text())["test"]
    (log,) = (home / "logs").glob("run-*.log")
    assert log.stem == run_root.name and f"Full log: {log}" in out
    # the pre-training step says each epoch on the console (a step shows no bars)
    assert "ptv2 ▸ pretrain, epoch 1/" in out and "mean dev score" in out, out[-3000:]
    # the promote step ran (auto_promote defaults to true) and left its decision on the version
    assert any(k.startswith("promotion") for k in mv.tags), sorted(mv.tags)
    # and the run's summary says what it decided, and why, under the table
    assert f"ptv2-trec v1: {mv.tags['promotion.decision']}: {mv.tags['promotion.reason']}" in out
    # the search tracked its trials: one parent run plus a nested run per trial
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=100)
    nested = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert len(nested) == 4  # two trials per task, each once
    # the pre-training step has its run too: every slice's dev score per epoch, and the picture
    (pre,) = [r for r in runs if r.data.tags.get("ptv2.kind") == "pretrain"]
    assert pre.info.status == "FINISHED" and pre.data.params["tasks"] == "trec,my-intents"
    assert {f"dev_{t}_L{n}" for t in ("trec", "my-intents") for n in (2, 4)} <= set(pre.data.metrics)
    assert [m.step for m in client.get_metric_history(pre.info.run_id, "dev_trec_L4")] == [0, 1]
    assert {a.path for a in client.list_artifacts(pre.info.run_id)} >= {"dev_curves.png", "prompt_config.json"}
    # the pre-trained prompt was trained on the pinned commit too
    prompts = list((home / "pipeline-root").rglob("prompt_config.json"))
    assert prompts and all(json.loads(p.read_text())["base_model"]["revision"] == SHA_A for p in prompts), prompts
    # the user task is registered under its own name (the YAML's `name`), not its file path,
    # and the registry can find its data again for later promotions
    (found,) = client.search_model_versions("name = 'ptv2-my-intents'")
    mine = client.get_model_version("ptv2-my-intents", found.version)  # search results omit aliases
    assert mine.tags["task"] == "my-intents" and mine.tags["task_ref"].endswith("intents.yaml")
    assert mine.tags["base_revision"] == SHA_A, mine.tags
    assert "challenger" in mine.aliases and ("champion" in mine.aliases) == (mine.tags["promotion.decision"] == "promoted")
    # `ptv2 promote --task <the YAML path>` finds the same registered model (and loads it, on its base
    # model's commit: here, as for its user, from the Hugging Face cache the run read)
    from components.registry.promote import promote

    with pytest.MonkeyPatch.context() as mp:
        point_at(mp, hub_home)
        assert promote(mine_yaml, tracking_uri=f"sqlite:///{home / 'mlflow.db'}").name == "ptv2-my-intents"


def test_a_config_without_a_model_key_runs_the_bundled_minilm(tmp_path):
    """The whole run above names its model: a config without ``model:`` resolves, as ``ptv2 run``
    resolves it, to the bundled MiniLM, by its alias (what every step and the registered versions
    record as their base model), and nothing is pinned."""
    import yaml

    from pipelines.profiles import pin_run_model, resolve_params

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY.replace("model: org/tiny\n", "").format(user_task=user_task(tmp_path / "mine")))
    params = resolve_params("default", cfg)
    assert "model" not in yaml.safe_load(cfg.read_text()) and params["model"] == "minilm"
    assert pin_run_model(params) is None and params["model"] == "minilm"


def test_a_failed_step_says_why_on_the_console(tmp_path):
    """A step that failed ended the run with kfp.local's "Inner task failed: 'prepare-data-op'" and the
    log's path: why it failed was only in the log file. The error line names the step's own error."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text('tasks: ["hub:nobody/nothing-here"]\nprompt_lengths: [2]\ntrials_per_task: 1\nepochs: 1\n'
                   "max_train: 8\nmax_eval: 8\n")  # fails in the first step: the hub is off
    env = {k: v for k, v in os.environ.items() if k not in {"MLFLOW_TRACKING_URI", "PTV2_OPTUNA_STORAGE", "RAY_ADDRESS"}}
    env |= {"PTV2_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    res = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "--config", str(cfg)], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=600)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and lines[-1].startswith("error: "), res.stderr[-3000:]
    assert "Inner task failed: 'prepare-data-op'" in lines[-1], lines[-1]
    assert "could not load hub dataset 'nobody/nothing-here'" in lines[-1], lines[-1]
    assert "Ptv2Error" not in lines[-1] and "Traceback" not in res.stderr and lines[-1].endswith(".log"), lines[-1]


def test_the_failed_steps_own_error_is_the_one_reported():
    """An error line of a step that went on and finished is not the failed step's reason; a traceback
    of another kind keeps its class name, a Ptv2Error's message says it all."""
    import io

    from pipelines.progress import ProgressFilter

    log, console = io.StringIO(), io.StringIO()
    f = ProgressFilter(log, console)
    f.write("INFO - Executing task \x1b[96m'search-op'\x1b[0m\n  mlflow.exceptions.MlflowException: retried\n"
            "INFO - Task 'search-op' finished with status SUCCESS\nINFO - Executing task 'final-train-op'\n"
            "ERROR - Task 'final-train-op' finished with status FAILURE\n")  # killed: it said nothing
    assert f.step_error is None
    f.write("INFO - Executing task 'final-train-op'\n    Traceback (most recent call last):\n    ValueError: bad shape (2, 3)\n"
            "ERROR - Task 'final-train-op' finished with status \x1b[91mFAILURE\x1b[0m\n")
    assert f.step_error == "ValueError: bad shape (2, 3)"
    f.write("INFO - Executing task 'x'\n    ptv2_core.errors.Ptv2Error: task 'a' and 'b' clash\n"
            "ERROR - Task 'x' finished with status FAILURE\n")
    assert f.step_error == "task 'a' and 'b' clash" and "Traceback" not in console.getvalue()


def test_the_last_line_points_at_the_ui_that_serves_the_store(tmp_path, monkeypatch):
    """With a tracking server, the run ended by suggesting `ptv2 ui`, which refuses a server."""
    from pipelines.cli.pipeline_cmds import review_line

    monkeypatch.setenv("PTV2_HOME", str(tmp_path))
    local = review_line(f"sqlite:///{tmp_path}/mlflow.db")
    assert local.startswith(f"Review trials and versions in MLflow:  PTV2_HOME={tmp_path} ") and local.endswith(" ui")
    other = review_line(f"sqlite:///{tmp_path}/other.db", "the run")  # --mlflow-uri: not PTV2_HOME's store
    assert other.startswith(f"Review the run in MLflow:  MLFLOW_TRACKING_URI=sqlite:///{tmp_path}/other.db ")
    assert review_line("https://ci:s3cret@mlflow.example.com") == \
        "Review trials and versions in MLflow:  https://ci:***@mlflow.example.com"


def sigint_ignored() -> None:
    """In the child, before exec: SIGINT ignored, as a shell without job control starts `cmd &`."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_sigterm_stops_a_local_run_and_the_step_it_runs(tmp_path, sigint):
    """SIGTERM to `ptv2 run` (`kill`, `timeout`): Ray's handler aborted it with a stack dump (exit 134)
    and the running step's process (kfp.dsl.executor_main) ran on, orphaned, for minutes. It ends
    as Ctrl-C does, with the step stopped too: one error line, exit 143. Also when started from a
    script with `&` (SIGINT ignored, which the steps inherited: they ignored the SIGINT passed on and
    ran on after the command gave up waiting on them)."""
    import contextlib
    import signal
    import time
    from pathlib import Path

    from conftest import interruptible
    from pipelines.cli.sigterm import CHILDREN_WAIT_S, descendants

    cfg = tmp_path / "slow.yaml"
    cfg.write_text("tasks: [trec]\nprompt_lengths: [2]\ntrials_per_task: 1\nepochs: 1\npretrain_epochs: 500\n"
                   "max_train: 64\nmax_eval: 32\n")
    env = {k: v for k, v in os.environ.items() if k not in {"MLFLOW_TRACKING_URI", "PTV2_OPTUNA_STORAGE", "RAY_ADDRESS"}}
    env |= {"PTV2_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
                            preexec_fn=interruptible if sigint == "default" else sigint_ignored,
                            start_new_session=True)

    def command(pid: int) -> str:
        try:
            return (Path("/proc") / str(pid) / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return ""

    try:
        step, deadline = None, time.time() + 300
        while step is None and proc.poll() is None and time.time() < deadline:  # the pre-training step runs
            step = next((pid for pid in descendants(proc.pid) if "kfp.dsl.executor_main" in command(pid)
                         and "pretrain" in command(pid)), None)
            time.sleep(0.2)
        assert step is not None and proc.poll() is None, proc.poll()
        time.sleep(3)  # into its training
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        _, err = proc.communicate(timeout=120)
        took = time.monotonic() - sent
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever is left of its session (a step left running)
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    lines = err.strip().splitlines()
    assert proc.returncode == 143, (proc.returncode, err[-3000:])
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], err[-3000:]
    assert lines[-1].startswith("error: terminated (SIGTERM); the steps that had finished are kept"), lines[-1]
    assert "SIGTERM received at time" not in err and "Traceback" not in err, err[-3000:]
    # the step stopped on the SIGINT passed on, not after the wait on it ran out (it ignored it, and a
    # step printing nothing for a while, a search's, would have run on orphaned)
    assert took < CHILDREN_WAIT_S, took
    time.sleep(1)  # (reaped by init once its parent, the step's shell, ends)
    assert "executor_main" not in command(step), "the step's process runs on"
