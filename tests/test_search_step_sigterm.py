"""SIGTERM to the pipeline's search step (a Kubeflow run stopped, its pod deleted). The step runs
under ``kfp.dsl.executor_main``, which sets no signal handler, so here it is called by a plain
Python process joined to a real cluster of `ray start` processes through ``RAY_ADDRESS``. Ray's
own handler, left by ``ray.init``, aborted it with a stack dump (killed by SIGABRT, exit 134), no
``error:`` line, the trial's MLflow run left RUNNING."""
from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from components.step_sigterm import sigterm_as_ctrl_c
from search_ray_support import ray_cluster, trial_runs, mlflow_uri  # noqa: F401  (fixture used by name)
from test_search import tiny_model  # noqa: F401  (module fixture: a tiny BERT model folder)


def test_sigterm_in_the_block_ends_it_with_one_error_line_and_143(capsys):
    before = signal.getsignal(signal.SIGTERM)  # not always SIG_DFL: an earlier ray.init in this worker leaves Ray's
    with pytest.raises(SystemExit) as exit_, sigterm_as_ctrl_c():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises here
    assert exit_.value.code == 143
    assert capsys.readouterr().err == "error: terminated (SIGTERM); interrupted\n"
    assert signal.getsignal(signal.SIGTERM) is before  # put back


def test_a_ctrl_c_in_the_block_is_left_as_it_was():
    with pytest.raises(KeyboardInterrupt), sigterm_as_ctrl_c():
        raise KeyboardInterrupt


def test_sigterm_stops_the_search_step_on_a_cluster_with_one_error_line(tiny_model, tmp_path, mlflow_uri):
    from components.data import prepare_data

    prepare_data(["trec"], tmp_path / "data", max_train=48, max_eval=24)
    step = textwrap.dedent(f"""
        from components.search_step import search_task
        search_task({str(tmp_path / 'data')!r}, "trec", {str(tmp_path / 'adapter')!r}, {str(tmp_path / 'plot.html')!r},
                    model={tiny_model!r}, lengths=[2, 4], lr_range=(3e-3, 3e-2), trials=2, epochs=2, concurrency=1,
                    mlflow_uri={mlflow_uri!r}, storage="sqlite:///{tmp_path}/optuna.db")
    """)
    with contextlib.contextmanager(ray_cluster)() as (address, env):
        env = dict(env, RAY_ADDRESS=address, HF_HUB_OFFLINE="1", PTV2_HOME=str(tmp_path / "home"))
        step_process = subprocess.Popen([sys.executable, "-c", step], env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        lines = []
        try:
            for line in step_process.stdout:  # SIGTERM once a trial has started: Tune runs
                lines.append(line.rstrip("\n"))
                if re.search(r"trial \d+ started", line):
                    step_process.send_signal(signal.SIGTERM)
                    break
            rest, _ = step_process.communicate(timeout=180)
        finally:
            if step_process.poll() is None:
                step_process.kill()
    lines += rest.splitlines()
    text = "\n".join(lines)
    assert step_process.returncode == 143, text[-3000:]
    assert lines[-1].startswith("error: terminated (SIGTERM); search stopped "), text[-3000:]
    assert "--resume" not in lines[-1]  # a pipeline run never resumes its search
    assert "SIGTERM received at time" not in text and "Traceback" not in text, text[-3000:]
    (study,) = re.findall(r"study '([^']+)'", text)
    assert not trial_runs(mlflow_uri, study, "RUNNING")
    assert not (tmp_path / "adapter").exists()
