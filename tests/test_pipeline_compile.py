"""The compiled pipeline: parameters, DAG edges, the ParallelFor, the condition; determinism;
profiles and the run command's bad input."""
from __future__ import annotations

import json
import re
import os
import subprocess
import sys

import pytest
import yaml

from conftest import run_cli
from pipelines.compile import compile_pipeline
from pipelines.profiles import PROFILES, pipeline_defaults, resolve_params
from ptv2_core.errors import Ptv2Error


@pytest.fixture(scope="module")
def documents(tmp_path_factory) -> list[dict]:
    """The compiled file: the pipeline spec, then the Kubernetes platform config."""
    path = compile_pipeline(tmp_path_factory.mktemp("c") / "p.yaml")
    return list(yaml.safe_load_all(path.read_text()))


@pytest.fixture(scope="module")
def spec(documents) -> dict:
    return documents[0]


def test_compile_is_deterministic(tmp_path):
    # the second compile stays a process of its own: one with another hash seed (set and dict
    # orders of str keys) and another import order; two compiles in this process would share both
    a = compile_pipeline(tmp_path / "a.yaml").read_bytes()
    b = subprocess.run([sys.executable, "-m", "pipelines.cli", "compile", "--out", str(tmp_path / "b.yaml")],
                       capture_output=True, text=True, check=True)
    assert "wrote" in b.stdout
    assert (tmp_path / "b.yaml").read_bytes() == a


# `ptv2 compile` in a process whose YAML writer writes part of the file, then waits to be killed.
KILLED_WHILE_WRITING = """
import sys, yaml
def part_then_wait(documents, stream, **kwargs):
    stream.write("# part of a pipeline\\n"); stream.flush()
    print("writing", flush=True); sys.stdin.readline()
yaml.dump_all = part_then_wait
from pipelines.cli import main
main(["compile", "--out", sys.argv[1]])
"""


def test_compile_killed_while_writing_keeps_the_previous_file(tmp_path):
    """The YAML was written straight into --out: a compile killed (or failing) midway left a
    truncated pipeline where the previous one was."""
    out = tmp_path / "p.yaml"
    out.write_text("previous: pipeline\n")
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WHILE_WRITING, str(out)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing", proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
    assert out.read_text() == "previous: pipeline\n"


@pytest.mark.parametrize("name", ["p.json", "p.txt", "pipeline"])
def test_compile_to_a_file_that_is_not_yaml_is_one_error_line_and_writes_nothing(tmp_path, name):
    """kfp writes YAML only to a .yaml/.yml path: other names ended in a ValueError traceback, and
    a .json one left an empty file behind."""
    res = run_cli("compile", "--out", str(tmp_path / name))
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        f"error: --out '{tmp_path / name}' must end in .yaml or .yml: the pipeline is written as YAML"], res.stderr
    assert list(tmp_path.iterdir()) == []


def test_pipeline_parameters_are_typed(spec):
    params = spec["root"]["inputDefinitions"]["parameters"]
    expected = {
        "tasks": "LIST", "model": "STRING", "prompt_lengths": "LIST", "lr_min": "NUMBER_DOUBLE",
        "lr_max": "NUMBER_DOUBLE", "trials_per_task": "NUMBER_INTEGER", "epochs": "NUMBER_INTEGER",
        "final_epochs": "NUMBER_INTEGER",
        "search_concurrency": "NUMBER_INTEGER", "promotion_margin": "NUMBER_DOUBLE", "auto_promote": "BOOLEAN",
        "cpus_per_trial": "NUMBER_DOUBLE", "gpus_per_trial": "NUMBER_DOUBLE",
        "mlflow_uri": "STRING", "ray_address": "STRING", "optuna_storage": "STRING",
    }
    for name, kind in expected.items():
        assert params[name]["parameterType"] == kind, name
    assert params["tasks"]["defaultValue"] == ["trec", "rt", "wnut16"]
    # no secret in the compiled pipeline: endpoints default to empty (the cluster's environment)
    assert params["mlflow_uri"]["defaultValue"] == "" and params["optuna_storage"]["defaultValue"] == ""


def test_every_parameter_is_described_in_the_run_form_and_the_readme(spec):
    """Runs start from the Kubeflow UI: each parameter's field carries its description (the
    pipeline docstring's Args, compiled into the spec), and the README's table has a row for it."""
    from pathlib import Path

    params = spec["root"]["inputDefinitions"]["parameters"]
    undescribed = sorted(name for name, p in params.items() if len((p.get("description") or "").strip()) < 15)
    assert not undescribed, f"parameters without a description: {undescribed}"
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    missing = sorted(name for name in params if not any(f"`{name}`" in row.split("|")[1] for row in rows))
    assert not missing, f"README's parameter table lacks {missing}"


def _loop(spec) -> tuple[str, dict]:
    tasks = spec["root"]["dag"]["tasks"]
    loops = [(name, t) for name, t in tasks.items() if "parameterIterator" in t]
    assert len(loops) == 1
    return loops[0]


def test_dag_edges_and_parallel_for(spec):
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) >= {"prepare-data-op", "pretrain-prompt-op"}
    name, loop = _loop(spec)
    # the loop iterates over the `tasks` pipeline parameter
    it = loop["parameterIterator"]
    assert it["items"]["inputParameter"].endswith("pipelinechannel--tasks")
    assert set(loop["dependentTasks"]) == {"prepare-data-op", "pretrain-prompt-op"}
    inner = spec["components"][loop["componentRef"]["name"]]["dag"]["tasks"]
    assert set(inner) >= {"search-op", "final-train-op", "register-op"}
    assert inner["final-train-op"]["dependentTasks"] == ["search-op"]
    assert inner["register-op"]["dependentTasks"] == ["final-train-op", "search-op"]
    # the final training takes the search's best configuration, not a constant
    best = inner["final-train-op"]["inputs"]["parameters"]["best_config"]["taskOutputParameter"]
    assert best == {"outputParameterKey": "best_config", "producerTask": "search-op"}
    # and the search's best adapter, which it registers as it is unless told to train again
    adapter = inner["final-train-op"]["inputs"]["artifacts"]["search_adapter"]["taskOutputArtifact"]
    assert adapter == {"outputArtifactKey": "adapter", "producerTask": "search-op"}
    final_epochs = inner["final-train-op"]["inputs"]["parameters"]["final_epochs"]["componentInputParameter"]
    assert final_epochs.endswith("final_epochs")
    assert spec["root"]["inputDefinitions"]["parameters"]["final_epochs"]["defaultValue"] == 0
    # use_pretrained_prompt reaches the pre-training step too (false: it skips its work), as an input,
    # so a cached skipped run is never reused for a run that wants the prompt
    assert tasks["pretrain-prompt-op"]["inputs"]["parameters"]["use_pretrained"] == {
        "componentInputParameter": "use_pretrained_prompt"}
    # pre-training loads the model the first step returns (a hub name pinned to the commit main
    # names as the run starts), not the run form's name, which each step resolved on its own: a main
    # moved mid-run gave pre-training, the trials and the final adapter other weights. The search and
    # final steps read it from the prompt artifact they take (its metadata "model")
    pinned = {"taskOutputParameter": {"outputParameterKey": "Output", "producerTask": "check-params-op"}}
    assert tasks["pretrain-prompt-op"]["inputs"]["parameters"]["model"] == pinned
    assert tasks["pretrain-prompt-op"]["dependentTasks"] == ["check-params-op", "prepare-data-op"]
    for step in ("search-op", "final-train-op"):
        assert inner[step]["inputs"]["artifacts"]["prompt"]["componentInputArtifact"].endswith(
            "pretrain-prompt-op-prompt"), step
    for step in ("search-op", "final-train-op"):
        assert inner[step]["inputs"]["parameters"]["use_pretrained"]["componentInputParameter"].endswith(
            "use_pretrained_prompt"), step


def test_the_first_step_checks_every_parameter_of_the_run_form(spec):
    """A run started in the Kubeflow UI takes the run form's values unchecked by `ptv2`: before this
    step, a wrong registered model prefix failed the register step after the whole search."""
    tasks = spec["root"]["dag"]["tasks"]
    assert "dependentTasks" not in tasks["check-params-op"]
    assert tasks["prepare-data-op"]["dependentTasks"] == ["check-params-op"]
    given = tasks["check-params-op"]["inputs"]["parameters"]
    assert given == {k: {"componentInputParameter": k} for k in spec["root"]["inputDefinitions"]["parameters"]}


def _all_tasks(spec) -> dict:
    tasks = dict(spec["root"]["dag"]["tasks"])
    for comp in spec["components"].values():
        tasks |= (comp.get("dag") or {}).get("tasks", {})
    return {name: t for name, t in tasks.items() if "componentRef" in t and name.endswith("-op")}


def test_steps_acting_on_the_world_are_never_cached(spec):
    """Kubeflow caches every step by default: a rerun with the same parameters skipped the prepare
    step (data files changed behind the same path were not read again) and, inputs unchanged, the
    search and final steps, then registered the old adapter again as a new version."""
    cache = {name: t["cachingOptions"].get("enableCache", False) for name, t in _all_tasks(spec).items()}
    assert cache == {"check-params-op": False, "prepare-data-op": False, "pretrain-prompt-op": True, "search-op": False,
                     "final-train-op": True, "register-op": False, "promote-op": False}


def test_promotion_runs_under_a_condition(spec):
    _, loop = _loop(spec)
    inner = spec["components"][loop["componentRef"]["name"]]["dag"]["tasks"]
    conds = [t for t in inner.values() if "triggerPolicy" in t]
    assert len(conds) == 1
    assert "auto_promote" in conds[0]["triggerPolicy"]["condition"]
    body = spec["components"][conds[0]["componentRef"]["name"]]["dag"]["tasks"]
    assert list(body) == ["promote-op"]
    # promote gets the registered name through the condition's channel, fed by register-op
    channel = body["promote-op"]["inputs"]["parameters"]["registered_name"]["componentInputParameter"]
    feed = conds[0]["inputs"]["parameters"][channel]["taskOutputParameter"]
    assert feed == {"outputParameterKey": "name", "producerTask": "register-op"}


def test_components_use_the_one_image(spec):
    from components.image import component_image

    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert images == {component_image()}


def test_every_step_execs_python(spec):
    """Each step's shell hands its process to Python (components/step_exec.py): kfp's `sh -ec`
    ran Python as a child, so a SIGTERM to the step (a deleted pod) ended the shell and left Python
    running, orphaned, its own SIGTERM handling never run. (That the exec'd command passes the
    signal on: tests/test_step_exec.py.)"""
    executors = spec["deploymentSpec"]["executors"]
    assert len(executors) == 7, sorted(executors)
    for name, executor in executors.items():
        command = executor["container"]["command"]
        assert command[:2] == ["sh", "-ec"], (name, command[:2])
        lines = command[2].strip().splitlines()
        assert lines[-1].startswith("exec python3 -m kfp.dsl.executor_main "), (name, lines[-1])
        assert "export _KFP_RUNTIME=true" in lines[:-1], (name, lines)  # kfp's import reads it
        function = name.removeprefix("exec-").replace("-", "_")
        assert executor["container"]["args"][-2:] == ["--function_to_execute", function], name


def test_profiles_are_valid_pipeline_arguments():
    known = set(pipeline_defaults())
    for name, prof in PROFILES.items():
        assert set(prof) <= known, name
        assert resolve_params(name)["tasks"] == prof["tasks"]


def test_ptv2_search_and_the_pipeline_search_one_lr_range_by_default():
    """`ptv2 search` (a packaged or the default space) and `ptv2 run` (pipeline parameters) must
    not disagree on where the learning rate is searched."""
    from optuna_studies.space import load_space

    d = pipeline_defaults()
    for task in ("trec", "rt", "wnut16", "bbc", "my_task.yaml"):
        s = load_space(task)
        assert (s.lr_low, s.lr_high) == (d["lr_min"], d["lr_max"]), task


def test_config_file_and_overrides(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("tasks: [rt]\ntrials_per_task: 3\n")
    p = resolve_params("default", cfg, {"epochs": 5})
    assert (p["tasks"], p["trials_per_task"], p["epochs"]) == (["rt"], 3, 5)
    cfg.write_text("trails_per_task: 3\n")
    with pytest.raises(Ptv2Error, match="unknown pipeline parameter.*trails_per_task"):
        resolve_params("default", cfg)
    with pytest.raises(Ptv2Error, match="unknown profile"):
        resolve_params("huge")
    with pytest.raises(Ptv2Error, match="lr_min"):
        resolve_params("default", None, {"lr_min": 1.0, "lr_max": 0.1})


def test_pretrained_prompt_flags_set_the_parameter(tmp_path):
    """`ptv2 run` and `ptv2 submit --no-pretrained-prompt` (the pre-training step then skips its work);
    no flag keeps what the profile or --config says."""
    from pipelines.cli.pipeline_cmds import _overrides

    cfg = tmp_path / "c.yaml"
    cfg.write_text("use_pretrained_prompt: false\n")
    assert resolve_params("default", None, _overrides(None, None, None, False))["use_pretrained_prompt"] is False
    assert resolve_params("default", cfg, _overrides(None, None, None, True))["use_pretrained_prompt"] is True
    assert resolve_params("default", cfg, _overrides(None, None, None))["use_pretrained_prompt"] is False
    assert resolve_params("default", None, _overrides(None, None, None))["use_pretrained_prompt"] is True


@pytest.mark.parametrize("line, needle", [
    ("seed: -1", "seed must be an integer in 0..4294967295, got -1"),
    ("lr_min: abc", "lr_min must be a finite number, got 'abc'"),
    ("lr_max: .nan", "lr_max must be a finite number"),
    ("max_train: -5", "max_train must be 0 (all rows) or a positive integer, got -5"),
    ("max_eval: many", "max_eval must be an integer, got 'many'"),
    ("pretrain_epochs: 0", "pretrain_epochs must be a positive integer, got 0"),
    # pre-training skipped: 0 is taken (test_submit.py), a negative or a non-integer is not
    ("use_pretrained_prompt: false\npretrain_epochs: -1", "pretrain_epochs must be 0 or a positive integer "
                                                         "(pre-training is skipped: use_pretrained_prompt is false), got -1"),
    ("use_pretrained_prompt: false\npretrain_epochs: 0.5", "pretrain_epochs must be an integer, got 0.5"),
    ("final_epochs: -1", "final_epochs must be 0 (the search's best adapter) or a positive integer"),
    ("epochs: true", "epochs must be an integer, got True"),
    ("trials_per_task: 2.5", "trials_per_task must be an integer, got 2.5"),
    ("auto_promote: maybe", "auto_promote must be true or false, got 'maybe'"),
    ("use_pretrained_prompt: 3", "use_pretrained_prompt must be true or false"),
    ("promotion_margin: -1", "promotion_margin must be >= 0"),
    ("cpus_per_trial: 0", "cpus_per_trial must be > 0, got 0.0"),
    ("gpus_per_trial: -1", "gpus_per_trial must be >= 0, got -1.0"),
    ("gpus_per_trial: one", "gpus_per_trial must be a finite number, got 'one'"),
    ("prompt_lengths: 8", "prompt_lengths must be positive integers, got 8"),
    ("prompt_lengths: [4, 8, 4]", "prompt_lengths lists a length twice"),
    ("tasks: trec", "tasks must be a non-empty list of task names, got 'trec'"),
    # the register step failed on it after the search, leaving a version without its alias
    ("registered_model_prefix: \"team's-\"",
     "registered_model_prefix \"team's-\" with task 'trec': invalid registered model name \"team's-trec\": "
     "it holds \"'\""),
    ("model: ''", "model must name a base model"),
    ("model: ./no-such-model", "model folder not found: ./no-such-model"),
    ("optuna_storage: 'foo://x'", "unsupported study storage 'foo'"),
])
def test_every_pipeline_parameter_is_checked_before_the_run_starts(tmp_path, monkeypatch, line, needle):
    """A wrong value in a parameter file used to surface as a kfp traceback, or as a failed step
    minutes into the run (seed -1 failed the prepare step, pretrain_epochs 0 the pre-training)."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(line + "\n")
    home = tmp_path / "home"
    monkeypatch.setenv("PTV2_HOME", str(home))
    res = run_cli("run", "--config", str(cfg))
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], res.stderr
    assert not home.exists(), "a refused run wrote under PTV2_HOME"


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks a machine without a GPU")
def test_gpu_trials_on_a_machine_without_one_are_refused_unless_a_cluster_runs_them(tmp_path, monkeypatch):
    """The local Ray offers this machine's GPUs: with none, the search step failed minutes into the run.
    Refused as ``ptv2 search`` refuses it (one check, optuna_studies.capacity.check_local_gpus), with the
    pipeline's parameter names."""
    from ptv2_core.device import why_no_cuda

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(Ptv2Error) as e:
        resolve_params("default", None, {"gpus_per_trial": 0.5})
    assert str(e.value) == (
        "a trial needs 1 CPU and 0.5 GPU on one node, but torch sees no CUDA GPU on this machine for the local "
        f"Ray{why_no_cuda()}: set gpus_per_trial to 0, or ray_address (RAY_ADDRESS) to run the trials on a cluster "
        "with GPUs")
    assert resolve_params("default", None, {"gpus_per_trial": 0.5, "ray_address": "ray://head:10001"})[
        "gpus_per_trial"] == 0.5
    assert resolve_params("default", None, {"gpus_per_trial": 1.0}, local=False)["gpus_per_trial"] == 1.0


def test_a_whole_number_for_a_float_parameter_is_taken_as_a_float(tmp_path):
    """YAML reads `promotion_margin: 1` as an integer, which kfp refused for a float input."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("promotion_margin: 1\nlr_max: 1\n")
    p = resolve_params("default", cfg)
    assert (p["promotion_margin"], p["lr_max"]) == (1.0, 1.0)
    assert isinstance(p["promotion_margin"], float) and isinstance(p["lr_max"], float)
    from kfp.dsl.types.type_utils import verify_type_compatibility

    from pipelines.pipeline import ptv2_pipeline

    inputs = ptv2_pipeline.component_spec.inputs
    for key, value in p.items():  # kfp's own check of a pipeline call's arguments (raises on a mismatch)
        assert verify_type_compatibility(value, inputs[key], f"{key}: "), key
    with pytest.raises(Exception, match="Incompatible argument.*promotion_margin"):
        verify_type_compatibility(1, inputs["promotion_margin"], "Incompatible argument promotion_margin: ")


@pytest.mark.parametrize("args, needle", [
    (["run", "--profile", "huge"], "unknown profile 'huge'"),
    (["run", "--config", "/nonexistent.yaml"], "does not exist"),
    (["run", "--trials", "0"], "trials_per_task"),
    (["submit", "--host", "kubeflow.local"], "http(s) URL"),
    (["run", "--tasks", "trec,nosuch"], "unknown task 'nosuch'"),
    (["run", "--tasks", "trec,rt,trec"], "tasks listed twice: trec"),
    (["run", "--tasks", "/nonexistent/mine.yaml"], "task file not found: /nonexistent/mine.yaml"),
    (["run", "--tasks", "hub:"], "needs a data set name"),
    # refused before any connection is tried (nothing listens on port 1)
    (["submit", "--host", "http://127.0.0.1:1", "--tasks", "nosuch"], "unknown task 'nosuch'"),
])
def test_pipeline_commands_reject_bad_input(args, needle, tmp_path):
    _pipeline_error(args, needle, tmp_path / "home")


def _pipeline_error(args, needle, home, process=False):
    """``ptv2 *args`` refused with one line naming ``needle``, nothing written under ``home``
    (its PTV2_HOME). In this process (a fresh interpreter cost about 3.5 s of imports per call)
    unless ``process``: the environment is put back after, and the commands keep nothing from it."""
    if process:
        res = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True,
                             env={**os.environ, "PTV2_HOME": str(home)})
    else:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PTV2_HOME", str(home))
            res = run_cli(*args)
    assert res.returncode == 2 and res.stdout == "", (res.returncode, res.stdout)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], res.stderr
    assert not home.exists(), "a refused run wrote under PTV2_HOME"


def test_a_config_that_is_no_text_or_a_folder_is_one_line(tmp_path):
    """A --config in Latin-1 ended in a UnicodeDecodeError traceback (run and submit); a folder was
    said not to exist."""
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("experiment: caf\u00e9\n".encode("latin-1"))
    for command in (["run"], ["submit", "--host", "http://127.0.0.1:1"]):
        _pipeline_error([*command, "--config", str(latin)], f"config file '{latin}' is not UTF-8 text", tmp_path / "h")
        _pipeline_error([*command, "--config", str(tmp_path)], f"config file '{tmp_path}' is a folder", tmp_path / "h")
    broken = tmp_path / "broken.yaml"
    broken.write_text("experiment: a: b\n")
    # a process of its own, the one bad-input case here that is: what reaches the real stderr and the
    # exit status of the whole interpreter (a library's warning or log line, printed at exit or by
    # Python's logging fallback, is caught by pytest's handlers in this process, not by run_cli)
    _pipeline_error(["run", "--config", str(broken)],
                    "is not valid YAML: mapping values are not allowed here (line 1, column 14)", tmp_path / "h",
                    process=True)


def test_run_refuses_a_dead_tracking_server_before_it_starts(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("PTV2_HOME", str(home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    res = run_cli("run", "--tasks", "trec")
    assert res.returncode == 2 and res.stderr.startswith("error: MLflow tracking server http://127.0.0.1:1 does not answer")
    assert len(res.stderr.strip().splitlines()) == 1 and not home.exists()
    # what to change is named as `run` takes it: a config key, not a --mlflow-uri option it does not have
    assert "point the run's mlflow_uri (in --config) / MLFLOW_TRACKING_URI at one that runs" in res.stderr, res.stderr


def test_a_local_run_reads_its_task_files_before_it_starts(tmp_path):
    """A task YAML whose name cannot name a folder (`name: ../../x`) is refused by `ptv2 run` as
    it starts, not in the pipeline's prepare step."""
    (tmp_path / "rows.csv").write_text("text,label\n" + "".join(f"w{i},{'ab'[i % 2]}\n" for i in range(20)))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: ../../x\ntype: sequence\ndata: {train: rows.csv}\n")
    with pytest.raises(Ptv2Error, match="task name '../../x' cannot name a folder"):
        resolve_params("default", None, {"tasks": ["trec", str(bad)]})
    assert resolve_params("default", None, {"tasks": [str(bad)]}, local=False)["tasks"] == [str(bad)]  # read there


@pytest.mark.parametrize("config, needle", [
    ("mlflow_uri: https://admin:hunter2@127.0.0.1:1\n",
     "mlflow_uri carries a password, and kfp.local passes each step its parameters on its command line, which `ps` "
     "shows: leave mlflow_uri empty and set MLFLOW_TRACKING_URI in the environment instead"),
    # the MLflow server that does not answer: without the check the run stops there, not minutes later
    ("optuna_storage: postgresql://ptv2:hunter2@127.0.0.1:1/optuna\nmlflow_uri: http://127.0.0.1:1\n",
     "optuna_storage carries a password, and kfp.local passes each step its parameters on its command line, "
     "which `ps` shows: leave optuna_storage empty and set PTV2_OPTUNA_STORAGE in the environment instead"),
    ("optuna_storage: postgresql://ptv2@db/optuna?password=hunter2\nmlflow_uri: http://127.0.0.1:1\n",
     "optuna_storage carries a credential in its query (password=)"),
])
def test_a_local_run_refuses_a_password_in_its_parameters(tmp_path, monkeypatch, config, needle):
    """`ptv2 submit` refused these; `ptv2 run` passed them on, and kfp.local starts every step with its
    parameters on the command line, password included, for any user of the machine to read."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(config)
    home = tmp_path / "home"
    monkeypatch.setenv("PTV2_HOME", str(home))
    res = run_cli("run", "--config", str(cfg))
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert needle in lines[0] and "hunter2" not in lines[0], lines[0]
    assert not home.exists(), "a refused run wrote under PTV2_HOME"


def test_task_files_are_checked_here_only_for_a_local_run(tmp_path):
    """`ptv2 submit` may name a task file that exists in the cluster's image or volume only."""
    remote = {"tasks": ["trec", "/cluster/tasks/mine.yaml"]}
    assert resolve_params("default", None, remote, local=False)["tasks"] == remote["tasks"]
    with pytest.raises(Ptv2Error, match="task file not found: /cluster/tasks/mine.yaml"):
        resolve_params("default", None, remote)
    with pytest.raises(Ptv2Error, match="unknown task 'imdb'"):
        resolve_params("default", None, {"tasks": ["imdb"]}, local=False)


def test_a_task_whose_name_makes_a_registered_model_name_mlflow_cannot_filter_is_refused(tmp_path):
    """A task YAML's `name:` gives the registered model's name: one with a quote failed only at
    the register step, after the search. A task file read in the cluster is checked there."""
    (tmp_path / "train.csv").write_text("text,label\n" + "".join(f"q {i},{'ab'[i % 2]}\n" for i in range(20)))
    task = tmp_path / "mine.yaml"
    task.write_text(json.dumps({"name": "team's", "type": "sequence", "text_column": "text", "label_column": "label",
                                "metric": "accuracy", "data": {"train": "train.csv"}}))
    with pytest.raises(Ptv2Error, match=re.escape(f"registered_model_prefix 'ptv2-' with task '{task}': invalid "
                                                  "registered model name \"ptv2-team's\": it holds \"'\"")):
        resolve_params("default", None, {"tasks": [str(task)]})
    assert resolve_params("default", None, {"tasks": ["/cluster/mine.yaml"]}, local=False)["tasks"] == [
        "/cluster/mine.yaml"]
    with pytest.raises(Ptv2Error, match="with task 'trec': invalid registered model name"):
        resolve_params("default", None, {"tasks": ["trec"], "registered_model_prefix": 'a\\'}, local=False)


def test_a_local_run_keeps_the_hub_reachable_only_when_it_needs_it(tmp_path):
    """`ptv2 run` turns the hub off for its steps (HF_HUB_OFFLINE=1) only when every task and the
    model are on this machine: a hub:<dataset> task or a hub model name must be fetchable."""
    from pipelines.local_run import needs_hub

    folder = tmp_path / "model"
    folder.mkdir()
    task_file = str(tmp_path / "mine.yaml")
    assert not needs_hub({"tasks": ["trec", "wnut16", task_file], "model": "minilm"})
    assert not needs_hub({"tasks": ["rt"], "model": str(folder)})
    assert needs_hub({"tasks": ["trec", "hub:someone/intents"], "model": "minilm"})
    assert needs_hub({"tasks": ["trec"], "model": "prajjwal1/bert-tiny"})
    assert needs_hub({"tasks": ["trec"], "model": str(tmp_path / "no-such-folder")})  # a name, then



def test_every_step_gets_the_cluster_endpoints_and_only_the_search_the_secrets(documents):
    """Each step's pod reads MLflow/Ray from the ConfigMap; only the search step, which opens the
    Optuna study and connects to Ray, gets the Optuna URL (with its password) and the Ray token
    from Secrets (every step had them)."""
    from pipelines.pipeline import ENDPOINT_KEYS

    spec, platform = documents
    wired = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(wired) == set(spec["deploymentSpec"]["executors"])
    for name, cfg in wired.items():
        (cm,) = cfg["configMapAsEnv"]
        assert cm["configMapName"] == "ptv2-endpoints" and cm["optional"] is False, name
        assert {e["envVar"] for e in cm["keyToEnv"]} == set(ENDPOINT_KEYS)
        secrets = {s["secretName"]: s for s in cfg.get("secretAsEnv", [])}
        if name != "exec-search-op":
            assert secrets == {}, name
            continue
        assert secrets["ptv2-optuna-db"]["keyToEnv"] == [{"envVar": "PTV2_OPTUNA_STORAGE", "secretKey": "url"}]
        assert secrets["ptv2-ray-auth"]["keyToEnv"] == [{"envVar": "RAY_AUTH_TOKEN", "secretKey": "auth_token"}]


def test_every_step_requests_and_limits_cpu_and_memory(spec):
    """A pod without requests is evicted first under pressure, and refused in a namespace with a
    ResourceQuota; every step's container has both, requests within limits, and the steps that
    train (pre-training, the final adapter) get more than the one that prepares data."""
    def gib(x: str) -> float:
        return float(x.removesuffix("Gi"))

    sizes = {}
    for name, executor in spec["deploymentSpec"]["executors"].items():
        r = executor["container"].get("resources", {})
        for key in ("resourceCpuRequest", "resourceCpuLimit", "resourceMemoryRequest", "resourceMemoryLimit"):
            assert key in r, (name, key, r)
        assert float(r["resourceCpuRequest"]) <= float(r["resourceCpuLimit"]), name
        assert gib(r["resourceMemoryRequest"]) <= gib(r["resourceMemoryLimit"]), name
        sizes[name] = gib(r["resourceMemoryRequest"])
    assert sizes["exec-pretrain-prompt-op"] > sizes["exec-prepare-data-op"]
    assert sizes["exec-final-train-op"] > sizes["exec-prepare-data-op"]


def test_the_wired_names_exist_in_the_manifests():
    """The ConfigMap keys the pipeline asks for are the ones k8s/ defines."""
    from pathlib import Path

    from pipelines.pipeline import ENDPOINT_KEYS

    root = Path(__file__).resolve().parents[1] / "k8s"
    for doc in (d for f in root.rglob("*.yaml") for d in yaml.safe_load_all(f.read_text()) if d):
        if doc.get("kind") == "ConfigMap" and doc["metadata"]["name"] == "ptv2-endpoints":
            assert set(ENDPOINT_KEYS) <= set(doc["data"]), sorted(doc["data"])
            return
    raise AssertionError("no ConfigMap ptv2-endpoints in k8s/")


def test_the_search_step_and_every_ray_node_mount_the_shared_folder(documents):
    """A search on a multi-machine Ray cluster needs one folder at one path everywhere
    (optuna_studies/cluster.py): the search step's pod and every Ray pod mount PVC ptv2-shared
    at PTV2_SHARED_DIR, and the claim exists."""
    from pathlib import Path

    from pipelines.pipeline import SHARED_MOUNT, SHARED_PVC

    _, platform = documents
    mounts = {name: cfg.get("pvcMount", []) for name, cfg in
              platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].items()}
    searching = [n for n, m in mounts.items() if m]
    assert len(searching) == 1 and "search" in searching[0], mounts
    (mount,) = mounts[searching[0]]
    assert mount["mountPath"] == SHARED_MOUNT
    assert SHARED_PVC in json.dumps(mount)
    root = Path(__file__).resolve().parents[1] / "k8s" / "base"
    docs = [d for f in root.glob("*.yaml") for d in yaml.safe_load_all(f.read_text()) if d]
    endpoints = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "ptv2-endpoints")
    assert endpoints["data"]["PTV2_SHARED_DIR"] == SHARED_MOUNT
    claim = next(d for d in docs if d["kind"] == "PersistentVolumeClaim" and d["metadata"]["name"] == SHARED_PVC)
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    ray = next(d for d in docs if d["kind"] == "RayCluster")
    pods = [ray["spec"]["headGroupSpec"]["template"]["spec"]] + [g["template"]["spec"] for g in
                                                                  ray["spec"]["workerGroupSpecs"]]
    for pod in pods:
        volumes = {v["name"]: v for v in pod["volumes"]}
        (container,) = pod["containers"]
        (name,) = [m["name"] for m in container["volumeMounts"] if m["mountPath"] == SHARED_MOUNT]
        assert volumes[name]["persistentVolumeClaim"]["claimName"] == SHARED_PVC


def test_a_local_run_names_a_model_folder_by_its_absolute_path(tmp_path, monkeypatch, minilm_path):
    """`model: models/tiny` with final_epochs > 0 registered versions (and a pre-trained prompt) whose
    base_model was `models/tiny`, a folder only from where the run started: `ptv2 predict --model
    models:/...` from elsewhere found no model or another one. A run in the cluster reads its paths there."""
    from pathlib import Path

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny").symlink_to(minilm_path)  # a model folder (linked: no 90 MB copy)
    monkeypatch.chdir(tmp_path)
    assert resolve_params("default", None, {"model": "models/tiny"})["model"] == str(Path(minilm_path).resolve())
    assert resolve_params("default", None, {"model": "minilm"})["model"] == "minilm"  # an alias stays one
    assert resolve_params("default", None, {"model": "models/tiny"}, local=False)["model"] == "models/tiny"
    assert Path(resolve_params("default", None, {"model": "./models/tiny/"})["model"]).is_absolute()


def test_two_task_references_of_one_name_are_refused_before_the_run_starts(tmp_path, monkeypatch):
    """`tasks: [trec, ./my.yaml]` with `name: trec` in the YAML was refused only inside the prepare
    step ("Inner task failed"); both would also register versions of one model, ptv2-trec."""
    (tmp_path / "rows.csv").write_text("text,label\n" + "".join(f"w{i},{'ab'[i % 2]}\n" for i in range(20)))
    (tmp_path / "my.yaml").write_text("name: trec\ntype: sequence\ndata: {train: rows.csv}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Ptv2Error, match=re.escape("tasks 'trec' and './my.yaml' are both named 'trec'")):
        resolve_params("default", None, {"tasks": ["trec", "./my.yaml"]})
    with pytest.raises(Ptv2Error, match=re.escape("tasks 'hub:someone/intents' and 'b.yaml' are both named "
                                                  "'someone-intents'")):  # a hub name's '/' becomes '-'
        (tmp_path / "b.yaml").write_text("name: someone-intents\ntype: sequence\ndata: {train: rows.csv}\n")
        resolve_params("default", None, {"tasks": ["hub:someone/intents", "b.yaml"]})
    # two names that give one registered model name (a name that starts with the prefix keeps it)
    (tmp_path / "c.yaml").write_text("name: ptv2-trec\ntype: sequence\ndata: {train: rows.csv}\n")
    with pytest.raises(Ptv2Error, match=re.escape("tasks 'trec' and 'c.yaml' would both register versions of "
                                                  "'ptv2-trec'")):
        resolve_params("default", None, {"tasks": ["trec", "c.yaml"]})
    assert resolve_params("default", None, {"tasks": ["trec", "./my.yaml"]}, local=False)["tasks"] == [
        "trec", "./my.yaml"]  # the file is read in the cluster
