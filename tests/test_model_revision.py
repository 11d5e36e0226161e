"""`--model org/name@<revision>`: a hub model pinned to a commit, and the commit an adapter records.

Offline, through a real Hugging Face cache (``HF_HOME``, ``hub_home`` from tests/hub_support.py):
``hub/models--org--tiny`` holds two snapshots of a tiny BERT with different weights, ``refs/main``
pointing at one and the tag ``v2`` at the other, as huggingface_hub lays them out when it downloads.
huggingface_hub reads ``HF_HOME`` when it is imported, into its ``constants``, and it and transformers
take the cache folder from those at each call: the commands run in this process with the constants
pointed at that cache (``hub``, as a fresh ``HF_HOME=… ptv2`` would read them; a process start with its
imports cost seconds a command). The pipeline's first step runs as a process, with ``HF_HOME`` in its
environment. The whole run (``ptv2 run`` as a process, its steps under kfp.local and its trials on Ray
reading ``HF_HOME``, main moved as the run starts) is tests/test_pipeline_run.py's: one whole run checks
both what it registers and that every step kept the commit pinned at its start.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from hub_support import SHA_A, SHA_B, hub_home, point_at, set_main  # noqa: F401  (hub_home: a module fixture, used by name)


@pytest.fixture
def hub(hub_home, monkeypatch, one_torch_thread) -> Path:
    """``hub_home`` as this process's Hugging Face cache for one test (``point_at``)."""
    point_at(monkeypatch, hub_home)
    return hub_home


def test_the_commands_here_read_the_temporary_cache(hub_home, monkeypatch):
    """What the tests below rest on: without ``point_at`` this process resolves ``org/tiny`` in the
    default cache, where it is not; with it, in ``hub_home``'s."""
    import huggingface_hub.constants  # noqa: F401 (imported, as in any process that has loaded a model)

    from ptv2_core.backbone import hub_commit
    from ptv2_core.errors import Ptv2Error

    monkeypatch.setenv("HF_HOME", str(hub_home))  # the variable alone, read at import, changes nothing now
    with pytest.raises(Ptv2Error, match="cannot resolve model 'org/tiny'"):
        hub_commit("org/tiny")
    set_main(hub_home, SHA_A)
    point_at(monkeypatch, hub_home)
    assert hub_commit("org/tiny") == SHA_A and hub_commit("org/tiny@v2") == SHA_B


def ptv2(*args: str, **env: str):
    """``ptv2 ARGS`` in this process, with ``env`` set for it (``hub`` points it at the cache)."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        return run_cli(*args)


def train(model: str, out: Path) -> dict:
    res = ptv2("train", "--model", model, "--task", "trec", "--prompt-len", "2", "--epochs", "1",
               "--max-train", "8", "--max-eval", "8", "--out", str(out), "--quiet")
    assert res.returncode == 0, res.stderr
    return json.loads((out / "adapter_config.json").read_text())["base_model"]


def test_a_pinned_adapter_loads_its_commit_after_main_moves(hub, tmp_path):
    set_main(hub, SHA_A)
    base = train(f"org/tiny@{SHA_A}", tmp_path / "pinned")
    assert base["revision"] == SHA_A and base["name"] == f"org/tiny@{SHA_A}"
    set_main(hub, SHA_B)  # the hub's main moves on: another commit, other weights
    try:
        res = ptv2("eval", "--adapter", str(tmp_path / "pinned"), "--max-eval", "8")
        assert res.returncode == 0, res.stderr
        # without the pin the same adapter loads main's newest, whose fingerprint is another
        unpinned = tmp_path / "unpinned"
        unpinned.mkdir()
        for f in (tmp_path / "pinned").iterdir():
            (unpinned / f.name).write_bytes(f.read_bytes())
        doc = json.loads((unpinned / "adapter_config.json").read_text())
        doc["base_model"]["name"] = "org/tiny"
        del doc["base_model"]["revision"]
        (unpinned / "adapter_config.json").write_text(json.dumps(doc))
        res = ptv2("eval", "--adapter", str(unpinned), "--max-eval", "8")
        assert res.returncode == 2 and "refusing a different base model" in res.stderr, res.stderr
    finally:
        set_main(hub, SHA_A)


def test_an_unpinned_or_tagged_hub_model_records_the_commit_it_resolved_to(hub, tmp_path):
    set_main(hub, SHA_A)
    base = train("org/tiny", tmp_path / "main")
    assert base["revision"] == SHA_A and base["name"] == "org/tiny"
    tagged = train("org/tiny@v2", tmp_path / "tagged")
    assert tagged["revision"] == SHA_B and tagged["name"] == "org/tiny@v2"
    assert tagged["fingerprint"] != base["fingerprint"]  # the tag's commit, not main's
    # the tagged adapter loads at its commit, though its name says v2 and main says another
    res = ptv2("predict", "--adapter", str(tmp_path / "tagged"), "What is a fjord ?")
    assert res.returncode == 0 and res.stdout.strip(), res.stderr
    # registering builds the served model (its load_context loads the base) and tags the commit
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    res = ptv2("register", "--adapter", str(tmp_path / "tagged"), MLFLOW_TRACKING_URI=uri,
               PTV2_HOME=str(tmp_path / "home"))
    assert res.returncode == 0, res.stderr
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    [model] = client.search_registered_models()
    [version] = client.search_model_versions(f"name = '{model.name}'")
    assert version.tags["base_revision"] == SHA_B and version.tags["base_model"] == "org/tiny@v2"


@pytest.mark.parametrize("model, needle", [
    ("org/tiny@", "empty revision after '@'"),
    ("org/tiny@ ", "empty revision after '@'"),
    ("minilm@main", "'minilm' is a bundled alias"),
])
def test_a_bad_revision_is_one_error_line(tmp_path, model, needle):
    res = run_cli("train", "--model", model, "--task", "trec", "--out", str(tmp_path / "out"), "--quiet")
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert needle in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


def test_a_local_folder_named_with_an_at_sign_is_a_folder(tiny_model_dir, tmp_path, monkeypatch):
    """As for a ``hub:`` data set's reference: an existing path wins over a revision after '@'."""
    import shutil

    from ptv2_core.backbone import base_revision, load_backbone, split_model_ref
    from ptv2_core.errors import Ptv2Error

    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "tiny@v1"))
    backbone, _ = load_backbone(str(folder))
    assert base_revision(backbone) is None  # nothing to pin: the folder is the model
    monkeypatch.chdir(tmp_path)
    assert split_model_ref("tiny@v1") == ("tiny@v1", None)
    with pytest.raises(Ptv2Error, match="'tiny@v1' is a local folder"):  # a revision pins hub models only
        split_model_ref("tiny@v1@main")


def test_a_pre_trained_prompt_records_its_commit_and_is_evaluated_on_it(hub, tmp_path):
    set_main(hub, SHA_A)
    out = tmp_path / "prompt"
    res = ptv2("pretrain", "--tasks", "trec,rt", "--model", "org/tiny@v2", "--max-prompt-len", "4",
               "--lengths", "2,4", "--epochs", "1", "--max-train", "8", "--max-eval", "8", "--out", str(out),
               "--quiet", "--no-track")
    assert res.returncode == 0, res.stderr
    base = json.loads((out / "prompt_config.json").read_text())["base_model"]
    assert base["revision"] == SHA_B and base["name"] == "org/tiny@v2"
    (hub / "hub" / "models--org--tiny" / "refs" / "v2").write_text(SHA_A)  # the tag moved: the commit did not
    try:
        res = ptv2("eval", "--pretrained", str(out), "--max-eval", "8")
        assert res.returncode == 0, res.stderr
    finally:
        (hub / "hub" / "models--org--tiny" / "refs" / "v2").write_text(SHA_B)


# the pipeline's first step, as kfp.local runs it: it returns the model every later step loads. One process
# for several runs of it (a process start and kfp.local's each): "main=<sha>" moves the hub's main between them
CHECK_STEP = """
import json, sys
from pathlib import Path
from kfp import local
from components.kfp_components import check_params_op
from pipelines.profiles import pipeline_defaults
local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=sys.argv[1], raise_on_error=True)
for arg in sys.argv[3:]:
    if arg.startswith("main="):
        (Path(sys.argv[2]) / "hub" / "models--org--tiny" / "refs" / "main").write_text(arg[5:])
        continue
    task = check_params_op(**(pipeline_defaults() | {"model": arg, "tasks": ["trec"],
                                                     "mlflow_uri": "sqlite:///" + sys.argv[1] + "/m.db"}))
    print("OUTPUT=" + task.output)
"""


def check_steps(home: Path, tmp_path: Path, *steps: str) -> tuple[list[str], str]:
    env = dict(os.environ, HF_HOME=str(home), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    env.pop("HF_HUB_CACHE", None)
    res = subprocess.run([sys.executable, "-c", CHECK_STEP, str(tmp_path), str(home), *steps], capture_output=True,
                         text=True, env=env, timeout=300, cwd=Path(__file__).parents[1])
    assert res.returncode == 0, res.stderr[-3000:]
    outputs = [line.split("OUTPUT=", 1)[1].strip() for line in res.stdout.splitlines() if "OUTPUT=" in line]
    return outputs, res.stdout + res.stderr


def test_a_pipeline_runs_every_step_on_the_commit_its_first_step_pinned(hub_home, tmp_path):
    """A run (started by `ptv2 run`, `ptv2 submit` or from the Kubeflow UI) hands its later steps
    the model its first step returns: an unpinned hub name there is pinned to the commit main names
    as the run starts. Before, each step (pre-training, every trial, the final adapter) resolved
    main on its own: a main moved mid-run gave them other weights, and the final `train --init`
    refused the pre-trained prompt by its fingerprint, hours in."""
    set_main(hub_home, SHA_A)
    try:
        models, out = check_steps(hub_home, tmp_path, "org/tiny", "org/tiny@v2", f"main={SHA_B}", "org/tiny")
        assert f"model org/tiny: pinned to commit {SHA_A[:7]}" in out, out[-3000:]
        # main's commit, a tag's (a tag moves too), main's after it moved. A name pinned to a commit and an alias
        # the step returns as pin_hub_model does, as they are: test_ptv2_run_pins_an_unpinned_hub_model_before_it_starts
        assert models == [f"org/tiny@{SHA_A}", f"org/tiny@{SHA_B}", f"org/tiny@{SHA_B}"], out[-3000:]
    finally:
        set_main(hub_home, SHA_A)


def test_ptv2_run_pins_an_unpinned_hub_model_before_it_starts(hub, minilm_path):
    """`ptv2 run` pins the model as it resolves its parameters, and says so in one line; an alias,
    a folder and a commit-pinned name are left as they are."""
    from pipelines.profiles import pin_run_model, resolve_params

    set_main(hub, SHA_A)
    pinned = []
    for model in ["org/tiny", f"org/tiny@{SHA_B}", "minilm", str(minilm_path)]:
        params = resolve_params("default", None, {"model": model, "tasks": ["trec"]})
        note = pin_run_model(params)
        pinned.append([params["model"], note])
    assert pinned == [
        [f"org/tiny@{SHA_A}", f"model org/tiny: pinned to commit {SHA_A[:7]} (org/tiny@{SHA_A}) for this run"],
        [f"org/tiny@{SHA_B}", None], ["minilm", None], [str(Path(minilm_path).resolve()), None]]


def test_ptv2_run_with_an_uncached_hub_model_offline_is_one_error_line(hub, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("model: org/not-cached\ntasks: [trec]\n")
    res = ptv2("run", "--config", str(config), PTV2_HOME=str(tmp_path / "home"))
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "org/not-cached" in lines[0], lines[0]
    assert not (tmp_path / "home" / "pipeline-root").exists()  # nothing ran


def search_plan(tmp_path: Path, out: str, *, resume: bool = False, record: str = "") -> list:
    """A search's plan, as `ptv2 search` makes it before Ray: ``[the trials' model, the model it shows, whether
    the study has the default name of the model as given, what it said]``. With ``record`` the study too, as
    the search records it, with one trial that ran ("unpinned": its settings as a study recorded them before
    searches were pinned)."""
    from optuna_studies.plan import plan_search
    from optuna_studies.search import check_study_before_ray, trial_settings
    from optuna_studies.study import default_study_name, open_storage, prepare_study
    from optuna_studies.work import claim

    lines: list[str] = []
    plan = plan_search("trec", "org/tiny", str(tmp_path / out), trials=2, space=None,
                       storage=f"sqlite:///{tmp_path}/optuna.db", init=None, max_train=8, max_eval=8, epochs=1,
                       concurrency=1, cpus_per_trial=1, gpus_per_trial=0, overwrite=False, study_name=None, seed=0,
                       resume=resume, say=lines.append)
    check_study_before_ray(plan, resume)  # the study's refusals (other settings) as the search makes them
    if record:
        settings = trial_settings(plan) | ({"model": "org/tiny"} if record == "unpinned" else {})
        study = prepare_study(open_storage(plan.storage), plan.study_name, plan.space, resume, settings).study
        study.tell(study.ask(), 0.5)
        claim(plan.work, plan.study_name, plan.storage)  # its work folder, as an interrupted search leaves it
    return [plan.constants["model"], plan.model, plan.study_name == default_study_name("trec", "org/tiny",
                                                                                        str(tmp_path / out)), lines]


def test_a_search_pins_its_model_once_and_a_resume_keeps_the_commit_its_trials_ran_on(hub, tmp_path):
    """Every trial of a search gets the model pinned to the commit main names as the search is
    planned (before, each trial resolved `org/tiny` itself: a main moved mid-search gave trials
    ranked against each other other weights). A --resume after main moved continues on the commit
    the study's trials ran on; a study recorded before searches were pinned still resumes, unpinned."""
    set_main(hub, SHA_A)
    try:
        model, shown, default_name, lines = search_plan(tmp_path, "out", record="pinned")
        assert model == shown == f"org/tiny@{SHA_A}" and default_name  # the study's name: the model as given
        assert lines == [f"model org/tiny: pinned to commit {SHA_A[:7]} for this search"]
        set_main(hub, SHA_B)  # the hub's main moves on
        model, _, default_name, lines = search_plan(tmp_path, "out", resume=True)
        assert model == f"org/tiny@{SHA_A}" and default_name
        assert lines == [f"model org/tiny: resuming on commit {SHA_A[:7]}, the one the study's trials ran on"]
        assert search_plan(tmp_path, "other")[0] == f"org/tiny@{SHA_B}"  # a new search: main's commit now
        # a study from before searches were pinned: its trials resolved `org/tiny` themselves, and so do its new ones
        search_plan(tmp_path, "old", record="unpinned")
        assert search_plan(tmp_path, "old", resume=True)[0] == "org/tiny"
    finally:
        set_main(hub, SHA_A)
