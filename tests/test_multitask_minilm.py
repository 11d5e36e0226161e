"""Multi-task pre-training through the real command line, on the packaged MiniLM and packaged data."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import run_cli as ptv2  # the real command line, in this process

TASKS = "trec,wnut16"  # a sequence task and a token task (CI-sized: 2 cores shared)
LENGTHS = [2, 4, 8]
BUDGET = ["--max-train", "64", "--max-eval", "32", "--epochs", "2", "--batch-size", "16"]


def ok(res: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def user_error(res: subprocess.CompletedProcess, needle: str) -> None:
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], res.stderr[-3000:]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pretrain_run(tmp_path_factory, one_torch_thread) -> tuple[Path, subprocess.CompletedProcess, Path]:
    """``ptv2 pretrain`` with its defaults' MLflow tracking, on a fresh PTV2_HOME: the prompt
    folder, the finished command, and the PTV2_HOME of the store it logged to.

    The real entry point in this process: a process of its own paid about 10 s of imports that the
    pytest process has made (test_multitask's Ctrl-C test runs `ptv2 pretrain` as a process)."""
    root = tmp_path_factory.mktemp("pre")
    out, home = root / "prompt", root / "home"
    with pytest.MonkeyPatch.context() as env:
        env.delenv("MLFLOW_TRACKING_URI", raising=False)  # the default store, in PTV2_HOME
        env.setenv("PTV2_HOME", str(home))
        res = ptv2("pretrain", "--tasks", TASKS, "--model", "minilm", "--max-prompt-len", "8", "--lengths", "2,4,8",
                   *BUDGET, "--out", str(out), "--quiet")
    assert res.returncode == 0, res.stderr[-3000:]
    return out, res, home


@pytest.fixture(scope="module")
def pretrained(pretrain_run) -> Path:
    out, res, _ = pretrain_run
    assert json.loads(res.stdout[: res.stdout.rindex("}") + 1])["dev_score_by_length"]["wnut16"].keys() == {"2", "4", "8"}
    assert f"as a picture: {out / 'dev_curves.png'}" in res.stdout and (out / "dev_curves.png").is_file()
    return out


@pytest.mark.slow
def test_pretrain_cli_logs_the_finished_run_to_the_default_mlflow_store(pretrain_run):
    """The command logs the run the pipeline's pre-training step logs (experiment ptv2-pretrain),
    to the store the other commands use, and says which run and how to open it."""
    from mlflow import MlflowClient

    out, res, home = pretrain_run
    *_, run_line, review = res.stdout.strip().splitlines()
    assert run_line.startswith("MLflow run ") and run_line.endswith(" in experiment 'ptv2-pretrain'"), res.stdout
    assert review.startswith(f"Review the run in MLflow:  PTV2_HOME={home} ") and review.endswith(" ui"), review
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("ptv2-pretrain").experiment_id])
    assert run.info.run_id == run_line.split()[2] and run.info.status == "FINISHED"
    assert run.data.tags["ptv2.kind"] == "pretrain" and run.data.tags["ptv2.tasks"] == "trec,wnut16"
    assert run.data.params["lengths"] == "2,4,8" and run.data.params["epochs_trained"] == "2"
    assert run.data.params["model"] == "minilm" and run.data.params["max_train"] == "64"
    recorded = json.loads((out / "prompt_config.json").read_text())["history"]
    scores = client.get_metric_history(run.info.run_id, "dev_wnut16_L4")  # epoch 0 (before training) to 2
    assert sorted((m.step, m.value) for m in scores) == [(h["epoch"], h["dev"]["wnut16"]["4"]["score"]) for h in recorded]
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"dev_curves.png", "prompt_config.json"}


@pytest.mark.slow
def test_pretrain_cli_trains_every_slice_of_a_mixed_task_prompt(pretrained):
    config = json.loads((pretrained / "prompt_config.json").read_text())
    assert [t["spec"]["type"] for t in config["tasks"]] == ["sequence", "token"]
    assert config["base_model"]["name"] == "minilm" and config["base_model"]["fingerprint"].startswith("sha256:")
    first, last = config["history"][0], config["history"][-1]
    assert last["epoch"] == 2
    for task in ("trec", "wnut16"):
        for n in map(str, LENGTHS):  # each leading slice's dev loss fell during pre-training
            assert last["dev"][task][n]["loss"] < first["dev"][task][n]["loss"], (task, n)
    assert all(sum(h["steps_by_length"][str(n)] for h in config["history"][1:]) > 0 for n in LENGTHS)


@pytest.mark.slow
def test_eval_pretrained_reports_every_task_at_every_length(pretrained):
    res = ok(ptv2("eval", "--pretrained", str(pretrained), "--lengths", "2,8", "--max-eval", "32", "--device", "cpu"))
    doc = json.loads(res.stdout)
    assert doc["lengths"] == [2, 8] and set(doc["tasks"]) == {"trec", "wnut16"}
    recorded = json.loads((pretrained / "prompt_config.json").read_text())["dev"]
    for task, entry in doc["tasks"].items():
        assert set(entry["dev"]) == {"2", "8"}
        assert entry["dev"]["8"]["score"] == pytest.approx(recorded[task]["8"]["score"])
    user_error(ptv2("eval", "--pretrained", str(pretrained), "--lengths", "16"), "outside 1..8")
    user_error(ptv2("eval", "--pretrained", str(pretrained), "--adapter", str(pretrained)), "exactly one of")


@pytest.mark.slow
def test_eval_pretrained_notes_another_seed_and_a_missing_max_eval_as_eval_adapter_does(pretrained):
    """`eval --pretrained --seed 1` on a prompt pre-trained with seed 0 scored dev rows the prompt
    was trained on and said nothing (`eval --adapter` notes it); left without --max-eval, it scored
    every dev row where prompt_config.json had 32, with nothing to say why the numbers differ."""
    res = ok(ptv2("eval", "--pretrained", str(pretrained), "--lengths", "2", "--seed", "1", "--device", "cpu"))
    notes = [line for line in res.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 2, res.stderr
    assert "pre-trained on the splits of seed 0; with --seed 1" in notes[0] and "too high" in notes[0]
    assert "at most 32 dev rows per task" in notes[1] and "Pass --max-eval 32" in notes[1]
    assert json.loads(res.stdout)["seed"] == 1
    quiet = ok(ptv2("eval", "--pretrained", str(pretrained), "--lengths", "2", "--max-eval", "8", "--seed", "0"))
    assert "note:" not in quiet.stderr, quiet.stderr


@pytest.mark.slow
def test_init_loads_the_first_L_positions_of_the_minilm_prompt(pretrained, tmp_path):
    from ptv2_core.backbone import load_backbone
    from ptv2_core.build import build_model
    from ptv2_core.multitask import init_from_pretrained
    from ptv2_core.tasks import load_task

    backbone, _ = load_backbone("minilm")
    spec, _ = load_task("wnut16", max_train=1, max_eval=1)
    model = build_model(backbone, spec, 4, max_length=spec.max_length)
    init_from_pretrained(model, pretrained_dir=pretrained, task="wnut16")
    state = load_file(str(pretrained / "prompt.safetensors"))
    assert torch.equal(model.prefix.embedding.weight, state["prefix.embedding.weight"][:4])
    assert torch.equal(model.head.classifier.weight, state["heads.1.classifier.weight"])
    # and through `ptv2 train --init`
    out = tmp_path / "adapter"
    ok(ptv2("train", "--task", "trec", "--model", "minilm", "--prompt-len", "4", "--epochs", "1", "--max-train", "32",
            "--max-eval", "32", "--init", str(pretrained), "--out", str(out), "--quiet"))
    assert json.loads((out / "metrics.json").read_text())["init"] == str(pretrained)
    assert json.loads((out / "adapter_config.json").read_text())["prompt"]["prompt_len"] == 4


@pytest.mark.slow
def test_bad_pretrain_and_init_input_is_one_error_line_and_writes_nothing(pretrained, tmp_path):
    out = tmp_path / "out"
    user_error(ptv2("pretrain", "--tasks", "trec,nope", "--out", str(out), "--quiet"), "unknown task 'nope'")
    user_error(ptv2("pretrain", "--tasks", "trec", "--max-prompt-len", "8", "--lengths", "4,16", "--out", str(out)),
               "outside 1..8")
    user_error(ptv2("pretrain", "--tasks", "trec", "--lengths", "4,x", "--out", str(out)), "comma-separated integers")
    user_error(ptv2("pretrain", "--tasks", "trec", "--out", str(pretrained)), "already holds a pre-trained prompt")
    # the MLflow store the finished run goes to: checked before pre-training, writing nothing
    user_error(ptv2("pretrain", "--tasks", "trec", "--mlflow-uri", "http://127.0.0.1:1", "--out", str(out)),
               "MLflow tracking server http://127.0.0.1:1 does not answer")
    user_error(ptv2("pretrain", "--tasks", "trec", "--mlflow-uri", f"sqlite:///{tmp_path}/no/mlflow.db", "--out",
                    str(out)), f"its folder '{tmp_path / 'no'}' does not exist")
    user_error(ptv2("pretrain", "--tasks", "trec", "--mlflow-uri", f"sqlite:///{tmp_path}/m.db", "--no-track",
                    "--out", str(out)), "--no-track logs nothing: give one of them")
    (tmp_path / "a-file").write_text("")
    with pytest.MonkeyPatch.context() as env:  # the default store's state folder cannot be made
        env.delenv("MLFLOW_TRACKING_URI", raising=False)
        env.setenv("PTV2_HOME", str(tmp_path / "a-file" / "home"))
        user_error(ptv2("pretrain", "--tasks", "trec", "--out", str(out)),
                   f"cannot create the state folder {tmp_path / 'a-file' / 'home'} (PTV2_HOME): Not a directory")
    user_error(ptv2("train", "--task", "trec", "--prompt-len", "16", "--epochs", "1", "--max-train", "8",
                    "--init", str(pretrained), "--out", str(out), "--quiet"), "longer than the pre-trained prompt")
    user_error(ptv2("train", "--task", "trec", "--prompt-len", "4", "--epochs", "1", "--max-train", "8",
                    "--init", str(tmp_path), "--out", str(out), "--quiet"), "no pre-trained prompt")
    user_error(ptv2("train", "--task", "trec", "--prompt-len", "4", "--epochs", "1", "--max-train", "8", "--seed", "3",
                    "--init", str(pretrained), "--out", str(out), "--quiet"), "use seed 0")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
