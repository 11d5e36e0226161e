"""A run started from the Kubeflow UI takes whatever was typed into the run form: the pipeline's
first step checks every parameter before any step works. Before it, a wrong registered model
prefix failed the register step after the whole search, an upside-down learning-rate range the
search after pre-training, a mistyped model the pre-training after the data were prepared."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from components.params import check_params
from pipelines.profiles import pipeline_defaults
from pipelines.progress import ANSI
from ptv2_core.errors import Ptv2Error

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize("change, needle", [
    ({"tasks": []}, "tasks must be a non-empty list of task names"),
    ({"tasks": ["trec", 7]}, "tasks must be a non-empty list of task names"),
    ({"tasks": ["trec "]}, "unknown task 'trec '"),
    ({"tasks": ["trec", "trec"]}, "tasks listed twice: trec"),
    ({"tasks": ["/no/such/task.yaml"]}, "task file not found: /no/such/task.yaml"),
    ({"prompt_lengths": [4, 0]}, "prompt_lengths must be positive integers"),
    ({"prompt_lengths": [4, 4]}, "prompt_lengths lists a length twice"),
    ({"prompt_lengths": "8"}, "prompt_lengths must be positive integers"),
    ({"prompt_lengths": [4, 8.5]}, "prompt_lengths must be positive integers, got [4, 8.5]"),
    ({"lr_min": 0.1, "lr_max": 0.01}, "need 0 < lr_min <= lr_max, got 0.1 and 0.01"),
    ({"trials_per_task": 0}, "trials_per_task must be a positive integer, got 0"),
    ({"trials_per_task": 2.5}, "trials_per_task must be an integer, got 2.5"),
    ({"search_concurrency": -1}, "search_concurrency must be a positive integer, got -1"),
    ({"max_eval": -5}, "max_eval must be 0 (all rows) or a positive integer, got -5"),
    ({"final_epochs": -1}, "final_epochs must be 0 (the search's best adapter) or a positive integer"),
    ({"seed": -1}, "seed must be an integer in 0..4294967295, got -1"),
    ({"cpus_per_trial": 0.0}, "cpus_per_trial must be > 0"),
    ({"gpus_per_trial": float("nan")}, "gpus_per_trial must be a finite number"),
    ({"promotion_margin": -1.0}, "promotion_margin must be >= 0"),
    ({"registered_model_prefix": "team's-"}, "registered_model_prefix \"team's-\" with task 'trec'"),
    ({"model": " "}, "model must name a base model"),
    ({"model": "org/name@"}, "model 'org/name@' has an empty revision after '@'"),
    ({"model": "minilm@main"}, "'minilm' is a bundled alias"),
    ({"optuna_storage": "foo://x"}, "unsupported study storage 'foo'"),
    ({"mlflow_uri": "ftp://mlflow:5000"}, "unknown scheme 'ftp'"),
])
def test_each_wrong_parameter_is_named(change, needle):
    with pytest.raises(Ptv2Error) as e:
        check_params(pipeline_defaults() | change, files_here=True)
    assert needle in str(e.value)


def test_whole_numbers_kubeflow_hands_over_as_floats_are_taken():
    p = check_params(pipeline_defaults() | {"epochs": 3.0, "lr_max": 1, "prompt_lengths": [4.0, 8.0]},
                     files_here=True)
    assert p["epochs"] == 3 and type(p["epochs"]) is int and p["lr_max"] == 1.0
    assert p["prompt_lengths"] == [4, 8] and all(type(x) is int for x in p["prompt_lengths"])


# the pipeline's first step, run as kfp.local runs it (a subprocess of its own, like a pod)
STEP = """
import json, sys
from kfp import local
from components.kfp_components import check_params_op
from pipelines.profiles import pipeline_defaults
from pipelines.progress import ANSI
local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=sys.argv[1], raise_on_error=False)
task = check_params_op(**(pipeline_defaults() | json.loads(sys.argv[2])))
"""


def run_step(tmp_path, change: str) -> str:
    """What the step's run printed, colours taken out."""
    res = subprocess.run([sys.executable, "-c", STEP, str(tmp_path), change], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    return ANSI.sub("", res.stdout + res.stderr)


def test_the_first_step_fails_a_run_form_with_a_wrong_parameter_in_one_line(tmp_path):
    out = run_step(tmp_path, '{"registered_model_prefix": "team\\"s-", "model": "minilm"}')
    assert "finished with status FAILURE" in out, out[-3000:]
    assert "registered_model_prefix 'team\"s-' with task 'trec': invalid registered model name" in out, out[-3000:]


def test_the_first_step_checks_the_base_model_loads(tmp_path):
    out = run_step(tmp_path, '{"model": "/no/such/model"}')
    assert "finished with status FAILURE" in out and "model folder not found: /no/such/model" in out, out[-3000:]
    out = run_step(tmp_path, "{}")
    assert "finished with status SUCCESS" in out and "ptv2 ▸ parameters checked: tasks trec, rt, wnut16" in out, \
        out[-3000:]


def test_the_first_step_fails_when_mlflow_or_ray_does_not_answer(tmp_path):
    """The steps' MLflow server and Ray cluster (the parameter, else the pod's ConfigMap) are tried
    before any step works: a down MLflow failed the pre-training step as it logged its finished run,
    a down Ray head the search, after the data were prepared and the prompt pre-trained."""
    from test_registry_support import free_port

    port = free_port()  # bound and closed again: nothing listens there
    out = run_step(tmp_path, f'{{"mlflow_uri": "http://127.0.0.1:{port}"}}')
    assert "finished with status FAILURE" in out, out[-3000:]
    assert f"MLflow tracking server http://127.0.0.1:{port} does not answer" in out, out[-3000:]
    out = run_step(tmp_path, f'{{"mlflow_uri": "sqlite:///{tmp_path}/m.db", "ray_address": "127.0.0.1:{port}"}}')
    assert "finished with status FAILURE" in out, out[-3000:]
    assert f"nothing answers at the Ray cluster address '127.0.0.1:{port}'" in out, out[-3000:]


def test_the_first_step_takes_a_sqlite_study_in_the_volume_only_the_search_step_mounts(tmp_path):
    """The search step alone mounts the shared volume (/mnt/ptv2-shared), where a sqlite study
    belongs; the first step, in a pod without it, refused the URL: "its folder '/mnt/ptv2-shared'
    does not exist". It checks the URL's form only; the search step opens the file."""
    assert not Path("/mnt/ptv2-shared").exists()
    out = run_step(tmp_path, '{"optuna_storage": "sqlite:////mnt/ptv2-shared/optuna.db"}')
    assert "finished with status SUCCESS" in out, out[-3000:]


def test_the_first_step_still_refuses_a_sqlite_study_in_memory():
    """Checked by its form alone (as the first step checks it: files here, steps elsewhere), a
    sqlite URL that names no file is still refused."""
    with pytest.raises(Ptv2Error, match=r"names no file \(sqlite in memory\)"):
        check_params(pipeline_defaults() | {"optuna_storage": "sqlite:///:memory:"}, files_here=True, steps_here=False)


def test_a_sqlite_study_folder_is_looked_for_only_where_the_steps_run(tmp_path):
    """``ptv2 run`` runs the steps here: a missing folder is refused before anything starts. The
    pipeline's first step and ``ptv2 submit`` check the URL's form alone."""
    url = f"sqlite:///{tmp_path}/none/optuna.db"
    with pytest.raises(Ptv2Error, match="its folder .* does not exist"):
        check_params(pipeline_defaults() | {"optuna_storage": url}, files_here=True, steps_here=True)
    for files_here in (True, False):
        p = check_params(pipeline_defaults() | {"optuna_storage": url}, files_here=files_here, steps_here=False)
        assert p["optuna_storage"] == url
        with pytest.raises(Ptv2Error, match="unsupported study storage 'foo'"):
            check_params(pipeline_defaults() | {"optuna_storage": "foo://x"}, files_here=files_here, steps_here=False)


def test_every_pipeline_parameter_has_its_type_checked_in_the_pod():
    """components/params.py lists the parameters by type again (the pod has no other way to know
    what the run form's fields should hold): a new int parameter missing from INTEGERS would reach
    the steps unchecked, a float one missing from NUMBERS as an int. The lists must be the
    pipeline signature's parameters by their defaults' types, each parameter in one."""
    from components import params

    by_type: dict[type, set[str]] = {}
    for key, default in pipeline_defaults().items():
        by_type.setdefault(type(default), set()).add(key)
    assert set(params.INTEGERS) | set(params.NUMBERS) == by_type[int] | by_type[float]
    assert set(params.INTEGERS) == by_type[int] and set(params.NUMBERS) == by_type[float]
    assert set(params.BOOLEANS) == by_type[bool] and set(params.STRINGS) == by_type[str]
    assert set(params.LISTS) == by_type[list] and set(by_type) == {int, float, bool, str, list}
