"""Multi-task prompt pre-training on a tiny random BERT (MiniLM's tokenizer) and real packaged data."""
from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from ptv2_core.build import build_model
from ptv2_core.errors import Ptv2Error
from ptv2_core.multitask import (
    MultiTaskPromptModel, PretrainConfig, TaskMixer, evaluate_pretrained, init_from_pretrained, load_pretrained,
    mixing_weights, pretrain, read_pretrained_config,
)
from ptv2_core.multitask.checkpoint import checkpoint_epochs
from ptv2_core.heads import HeadConfig
from ptv2_core.model import PromptModel
from ptv2_core.prefix import PromptConfig
from ptv2_core.tasks import load_task

TASKS = ("trec", "wnut16")  # a sequence and a token task in one run
CFG = dict(tasks=TASKS, model="tiny-bert", max_prompt_len=8, lengths=(2, 4, 8), epochs=3, batch_size=16,
           max_train=48, max_eval=32, device="cpu", progress=False, keep_checkpoints=5)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


def tiny_bert(tokenizer, seed: int = 0):
    """A tiny random BERT over MiniLM's vocabulary, so that real text can be fed to it."""
    from transformers import AutoConfig, AutoModel

    torch.manual_seed(seed)
    config = AutoConfig.for_model("bert", hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=37, vocab_size=tokenizer.vocab_size)
    return AutoModel.from_config(config).eval()


def tiny_model_folder(tmp_path, tokenizer):
    """``tiny_bert`` saved with its tokenizer, a folder ``--model`` takes."""
    model = tmp_path / "tiny"
    tiny_bert(tokenizer).save_pretrained(model)
    tokenizer.save_pretrained(model)
    return model


def own_home(monkeypatch, tmp_path) -> None:
    """The command's default MLflow store and state folder in ``tmp_path / "home"``."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def run(tmp_path_factory, tokenizer):
    """One finished pre-training run: ``(folder, result)``."""
    out = tmp_path_factory.mktemp("pre") / "prompt"
    result = pretrain(PretrainConfig(**CFG), out, backbone=tiny_bert(tokenizer), tokenizer=tokenizer)
    return out, result


# --- mixing -------------------------------------------------------------------------------------

def test_temperature_lifts_small_tasks_and_sampler_follows_weights():
    sizes = [1000, 10]
    by_size, tempered, flat = mixing_weights(sizes, 1.0), mixing_weights(sizes, 2.0), mixing_weights(sizes, 1e6)
    assert by_size[1] == pytest.approx(10 / 1010)
    assert tempered[1] == pytest.approx(np.sqrt(10) / (np.sqrt(10) + np.sqrt(1000)))
    assert by_size[1] < tempered[1] < flat[1] and flat[1] == pytest.approx(0.5, abs=1e-4)
    mixer = TaskMixer(sizes, 8, [2, 4, 8], temperature=2.0, seed=3)
    draws = [mixer.next() for _ in range(4000)]
    share = np.mean([t == 1 for t, _, _ in draws])
    assert share == pytest.approx(tempered[1], abs=0.02)
    assert {n for _, _, n in draws} == {2, 4, 8}
    # a task's rows come in full passes: the small task's first pass holds each of its rows once
    small = [r for t, rows, _ in draws if t == 1 for r in rows][:10]
    assert sorted(small) == list(range(10))
    plain = TaskMixer(sizes, 8, [2, 4, 8], nested=False)
    assert {plain.next()[2] for _ in range(50)} == {8}
    with pytest.raises(Ptv2Error):
        mixing_weights([5, 0], 2.0)


def test_sampler_state_survives_json():
    a = TaskMixer([30, 7, 12], 4, [1, 3], temperature=3.0, seed=1)
    for _ in range(17):
        a.next()
    b = TaskMixer([30, 7, 12], 4, [1, 3], temperature=3.0, seed=1)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert [a.next() for _ in range(40)] == [b.next() for _ in range(40)]


# --- nested prompts ------------------------------------------------------------------------------

def test_a_step_at_length_L_uses_and_trains_only_the_first_L_positions(tokenizer):
    bb = tiny_bert(tokenizer)
    geo = (2, 4, 8)
    model = MultiTaskPromptModel(bb, PromptConfig(8, *geo, dropout=0.0),
                                 {"a": HeadConfig("sequence", 3, 32, "mean", 0.0), "b": HeadConfig("token", 5, 32, "mean", 0.0)})
    ids = torch.randint(1000, 2000, (3, 7))
    mask = torch.ones_like(ids)
    out = model("a", ids, mask, torch.tensor([0, 1, 2]), prompt_len=3)
    out.loss.backward()
    grad = model.prefix.embedding.weight.grad
    assert grad[:3].abs().sum() > 0 and grad[3:].abs().sum() == 0
    assert all(p.grad is None for p in model.heads["1"].parameters())  # the other task's head is untouched
    # the slice is a prompt of its own: a 3-position PromptModel holding those rows gives the same logits
    alone = PromptModel(bb, PromptConfig(3, *geo, dropout=0.0), model.heads["0"].config).eval()
    with torch.no_grad():
        alone.prefix.embedding.weight.copy_(model.prefix.embedding.weight[:3])
        alone.head.load_state_dict(model.heads["0"].state_dict())
        model.eval()
        torch.testing.assert_close(alone(ids, mask).logits, model("a", ids, mask, prompt_len=3).logits)
        assert not torch.allclose(model("a", ids, mask, prompt_len=8).logits, alone(ids, mask).logits)


def test_run_mixes_sequence_and_token_tasks_and_trains_every_slice(run):
    out, result = run
    history = result.history
    assert [h["epoch"] for h in history] == [0, 1, 2, 3]
    assert {s.type for s in result.specs} == {"sequence", "token"}
    trained = history[1:]
    for length in ("2", "4", "8"):  # every length and every task got steps
        assert sum(h["steps_by_length"][length] for h in trained) > 0
    for name in ("trec", "wnut16"):
        assert sum(h["steps_by_task"][name] for h in trained) > 0
        for length in ("2", "4", "8"):
            assert history[-1]["dev"][name][length]["loss"] < history[0]["dev"][name][length]["loss"], (name, length)


def test_no_nested_flag_trains_only_the_full_length(tmp_path, tokenizer):
    cfg = PretrainConfig(**CFG | {"epochs": 1, "nested": False, "tasks": ("trec",)})
    result = pretrain(cfg, tmp_path / "p", backbone=tiny_bert(tokenizer), tokenizer=tokenizer)
    assert result.history[1]["steps_by_length"] == {"2": 0, "4": 0, "8": 3}
    assert read_pretrained_config(tmp_path / "p")["nested"] is False


# --- artifact -------------------------------------------------------------------------------------

def test_artifact_names_tasks_lengths_base_and_scores(run):
    out, result = run
    config = read_pretrained_config(out)
    assert config["format"] == "ptv2-pretrained-prompt"
    assert [t["ref"] for t in config["tasks"]] == list(TASKS)
    assert [t["spec"]["type"] for t in config["tasks"]] == ["sequence", "token"]
    assert config["lengths"] == [2, 4, 8] and config["max_prompt_len"] == 8
    assert config["base_model"]["fingerprint"] == result.base_fingerprint and config["base_model"]["name"] == "tiny-bert"
    assert set(config["dev"]) == {"trec", "wnut16"} and set(config["dev"]["wnut16"]) == {"2", "4", "8"}
    state = load_file(str(out / "prompt.safetensors"))
    assert state["prefix.embedding.weight"].shape == (8, 2 * 2 * 4 * 8)
    assert state["heads.0.classifier.weight"].shape[0] == 6 and "heads.1.classifier.weight" in state
    assert {p.name for p in out.iterdir()} == {"prompt.safetensors", "prompt_config.json", "dev_curves.png", "checkpoints"}


def test_artifact_carries_the_dev_curves_as_a_picture(run):
    """One panel per task, one line per length, a point per epoch (0 = before training)."""
    import matplotlib.image

    out, result = run
    png = out / "dev_curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = matplotlib.image.imread(png).shape[:2]
    assert width > 1.8 * height  # two task panels side by side
    from ptv2_core.multitask.curves import curves_png

    one_task = [{"epoch": h["epoch"], "dev": {"trec": h["dev"]["trec"]}} for h in result.history]
    h1, w1 = matplotlib.image.imread(__import__("io").BytesIO(curves_png(one_task, {"trec": "accuracy"}))).shape[:2]
    assert w1 < width and h1 == height


def test_reloaded_prompt_reproduces_its_recorded_dev_scores(run, tokenizer):
    out, result = run
    loaded = load_pretrained(out, backbone=result.model.backbone, tokenizer=tokenizer)
    scores = evaluate_pretrained(loaded, [2, 8], max_eval=CFG["max_eval"])
    assert scores["seed"] == 0 and scores["lengths"] == [2, 8]
    for name in ("trec", "wnut16"):
        for length in ("2", "8"):
            got, recorded = scores["tasks"][name]["dev"][length], result.dev[name][length]
            assert got["score"] == pytest.approx(recorded["score"]) and got["loss"] == pytest.approx(recorded["loss"], rel=1e-5)
    with pytest.raises(Ptv2Error, match="outside 1..8"):
        evaluate_pretrained(loaded, [16])


# --- initialisation --------------------------------------------------------------------------------

def test_init_copies_exactly_the_first_L_positions_and_the_task_head(run):
    out, result = run
    pre = load_file(str(out / "prompt.safetensors"))
    bb = result.model.backbone
    spec, _ = load_task("trec", max_train=1, max_eval=1)
    model = build_model(bb, spec, 4, max_length=64)
    init_from_pretrained(model, spec, pretrained_dir=out, task="trec")
    assert torch.equal(model.prefix.embedding.weight, pre["prefix.embedding.weight"][:4])
    assert torch.equal(model.head.classifier.weight, pre["heads.0.classifier.weight"])
    # the same name with its labels in another order: a copied head's outputs would mean other
    # classes, so the prompt is copied and the head stays fresh
    shuffled = replace(spec, labels=tuple(reversed(spec.labels)))
    model = build_model(bb, shuffled, 4, max_length=64)
    head_before = model.head.classifier.weight.detach().clone()
    init_from_pretrained(model, shuffled, pretrained_dir=out, task="trec")
    assert torch.equal(model.prefix.embedding.weight, pre["prefix.embedding.weight"][:4])
    assert torch.equal(model.head.classifier.weight, head_before)
    # a longer model prompt with prompt_len=2: rows 0-1 copied, the rest left as they were
    model = build_model(bb, spec, 6, max_length=64)
    before = model.prefix.embedding.weight.detach().clone()
    head_before = model.head.classifier.weight.detach().clone()
    init_from_pretrained(model, pretrained_dir=out, prompt_len=2)  # no task: the head stays fresh
    assert torch.equal(model.prefix.embedding.weight[:2], pre["prefix.embedding.weight"][:2])
    assert torch.equal(model.prefix.embedding.weight[2:], before[2:])
    assert torch.equal(model.head.classifier.weight, head_before)
    # a task that did not take part (rt) keeps its fresh head
    rt, _ = load_task("rt", max_train=1, max_eval=1)
    model = build_model(bb, rt, 4, max_length=64)
    head_before = model.head.classifier.weight.detach().clone()
    init_from_pretrained(model, pretrained_dir=out, task="rt", seed=5)  # seed only matters for tasks that took part
    assert torch.equal(model.head.classifier.weight, head_before)


def test_init_refuses_too_long_other_base_reparam_and_other_seed(run, tokenizer):
    out, result = run
    spec, _ = load_task("trec", max_train=1, max_eval=1)
    with pytest.raises(Ptv2Error, match="longer than the pre-trained prompt"):
        init_from_pretrained(build_model(result.model.backbone, spec, 16, max_length=64), pretrained_dir=out)
    other = tiny_bert(tokenizer, seed=1)
    with pytest.raises(Ptv2Error, match="different base model"):
        init_from_pretrained(build_model(other, spec, 4, max_length=64), pretrained_dir=out)
    with pytest.raises(Ptv2Error, match="different base model"):
        load_pretrained(out, backbone=other, tokenizer=tokenizer)
    with pytest.raises(Ptv2Error, match="reparameterization"):
        init_from_pretrained(build_model(result.model.backbone, spec, 4, max_length=64, reparam=True), pretrained_dir=out)
    with pytest.raises(Ptv2Error, match="use seed 0"):
        init_from_pretrained(build_model(result.model.backbone, spec, 4, max_length=64), pretrained_dir=out,
                             task="trec", seed=1)
    with pytest.raises(Ptv2Error, match="pre-trained prompt folder .* does not exist"):
        init_from_pretrained(build_model(result.model.backbone, spec, 4, max_length=64), pretrained_dir=out / "nope")


def test_reparam_prompt_round_trips_through_init(tmp_path, tokenizer):
    bb = tiny_bert(tokenizer)
    cfg = PretrainConfig(**CFG | {"epochs": 1, "tasks": ("trec",), "reparam": True, "reparam_hidden": 16})
    result = pretrain(cfg, tmp_path / "p", backbone=bb, tokenizer=tokenizer)
    spec, _ = load_task("trec", max_train=1, max_eval=1)
    model = build_model(bb, spec, 4, max_length=64, reparam=True, reparam_hidden=16)
    init_from_pretrained(model, pretrained_dir=tmp_path / "p")
    torch.testing.assert_close(model.prefix.flat(), result.model.prefix.flat(4))


# --- stop, resume, refuse ---------------------------------------------------------------------------

def test_resume_after_a_stop_continues_from_the_checkpoint(run, tmp_path, tokenizer):
    full_dir, _ = run
    out = tmp_path / "p"
    stopped = pretrain(PretrainConfig(**CFG), out, lambda epoch, row: epoch == 2,
                       backbone=tiny_bert(tokenizer), tokenizer=tokenizer)
    assert stopped.stopped and len(stopped.history) == 3
    assert {p.name for p in out.iterdir()} == {"checkpoints"}  # no half-made prompt
    with pytest.raises(Ptv2Error, match="has not finished"):
        read_pretrained_config(out)
    assert checkpoint_epochs(out / "checkpoints") == [1, 2]
    resumed = pretrain(PretrainConfig(**CFG | {"progress": False}), out, backbone=tiny_bert(tokenizer), tokenizer=tokenizer)
    assert resumed.resumed_from == 2 and [h["epoch"] for h in resumed.history] == [0, 1, 2, 3]
    # exactly where the uninterrupted run got: same model, optimizer, schedule, sampler and dropout RNG
    a, b = load_file(str(full_dir / "prompt.safetensors")), load_file(str(out / "prompt.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_corrupt_newest_checkpoint_falls_back_to_the_one_before(run, tmp_path, tokenizer):
    full_dir, _ = run
    out = tmp_path / "p"
    shutil.copytree(full_dir / "checkpoints", out / "checkpoints")
    (out / "checkpoints" / "epoch-3.safetensors").write_bytes(b"truncated")
    result = pretrain(PretrainConfig(**CFG), out, backbone=tiny_bert(tokenizer), tokenizer=tokenizer)
    assert result.resumed_from == 2
    a, b = load_file(str(full_dir / "prompt.safetensors")), load_file(str(out / "prompt.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_checkpoints_of_other_settings_and_bad_input_writes_nothing(run, tmp_path, tokenizer):
    full_dir, _ = run
    out = tmp_path / "p"
    shutil.copytree(full_dir / "checkpoints", out / "checkpoints")
    with pytest.raises(Ptv2Error, match="differs in: lr"):
        pretrain(PretrainConfig(**CFG | {"lr": 0.5}), out, backbone=tiny_bert(tokenizer), tokenizer=tokenizer)
    with pytest.raises(Ptv2Error, match="base_fingerprint"):
        pretrain(PretrainConfig(**CFG), out, backbone=tiny_bert(tokenizer, seed=1), tokenizer=tokenizer)
    with pytest.raises(Ptv2Error, match="already holds a pre-trained prompt"):
        pretrain(PretrainConfig(**CFG), full_dir, backbone=tiny_bert(tokenizer), tokenizer=tokenizer)
    # checkpoints of a capped run from before the subset rule was recorded drew their rows at random
    for ckpt in (out / "checkpoints").glob("epoch-*.json"):
        doc = json.loads(ckpt.read_text())
        assert doc["run"].pop("subset") == "stratified"
        ckpt.write_text(json.dumps(doc))
    with pytest.raises(Ptv2Error, match=r"differs in: subset\) \(checkpointed before 2026-12-06.*stratified"):
        pretrain(PretrainConfig(**CFG), out, backbone=tiny_bert(tokenizer), tokenizer=tokenizer)
    for bad in ({"lengths": (2, 16)}, {"tasks": ("trec", "nope")}, {"tasks": ()}, {"temperature": 0.0},
                {"max_prompt_len": 0}, {"pooling": "max"}, {"epochs": 0}, {"lr": -1.0}, {"eval_batch_size": 0}):
        with pytest.raises(Ptv2Error):
            pretrain(PretrainConfig(**CFG | bad), tmp_path / "fresh", backbone=tiny_bert(tokenizer), tokenizer=tokenizer)
        assert not (tmp_path / "fresh").exists(), bad


def test_a_logged_run_is_recorded_by_its_store_not_by_how_its_url_was_written(run, tmp_path, monkeypatch):
    """The record of a prompt's logged run was keyed by the store URL as given: a relative
    ``sqlite:///mlflow.db`` named the same store from any folder (the run counted as logged in a
    store it was never logged to), and ``postgresql://`` and ``postgresql+psycopg2://`` for one
    database counted as two (the run logged twice)."""
    from components.pretrain_tracking import logged_run, record_logged

    out = tmp_path / "p"
    shutil.copytree(run[0], out)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    record_logged(out, "sqlite:///mlflow.db", "run-a")
    record_logged(out, "postgresql://u:***@db:5432/mlflow", "run-pg")
    assert logged_run(out, "sqlite:///mlflow.db") == "run-a"
    assert logged_run(out, f"sqlite:///{tmp_path / 'a' / 'mlflow.db'}") == "run-a"
    assert logged_run(out, "postgresql+psycopg2://u:***@db:5432/mlflow") == "run-pg"
    monkeypatch.chdir(tmp_path / "b")
    assert logged_run(out, "sqlite:///mlflow.db") is None  # another folder's store
    record_logged(out, "sqlite:///mlflow.db", "run-b")
    assert logged_run(out, f"sqlite:///{tmp_path / 'a' / 'mlflow.db'}") == "run-a"
    assert logged_run(out, "sqlite:///mlflow.db") == "run-b"


def test_an_interrupted_overwrite_keeps_the_previous_prompt_and_its_settings_resume_it(run, tmp_path, tokenizer):
    """`--overwrite` deleted the finished prompt before training: a run stopped, killed or diverging
    midway lost it. Now the previous prompt (and the record of its logged run) stays until the new
    one is written; the new settings without --overwrite resume the interrupted run, which then
    replaces it, the record with it; the old settings still find their prompt finished."""
    from components.pretrain_tracking import logged_run, record_logged
    from ptv2_core.multitask.pretrain import finished_prompt

    full_dir, _ = run
    out = tmp_path / "p"
    shutil.copytree(full_dir, out)
    record_logged(out, "sqlite:///x.db", "run-1")
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert {"prompt_config.json", "prompt.safetensors", "dev_curves.png", "logged_runs.json"} <= set(before)
    new = PretrainConfig(**CFG | {"lr": 0.02})
    stopped = pretrain(new, out, lambda epoch, row: epoch == 1, overwrite=True, backbone=tiny_bert(tokenizer),
                       tokenizer=tokenizer)
    assert stopped.stopped
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before  # the previous prompt, whole
    assert checkpoint_epochs(out / "checkpoints") == [1]  # the previous run's checkpoints went
    assert (out / "checkpoints" / "replaces.json").is_file()  # naming the prompt it replaces
    assert logged_run(out, "sqlite:///x.db") == "run-1"
    assert finished_prompt(PretrainConfig(**CFG), out) is not None  # the old settings: their prompt, finished
    assert finished_prompt(new, out) is None  # the new ones: the interrupted run, to resume
    resumed = pretrain(new, out, backbone=tiny_bert(tokenizer), tokenizer=tokenizer)
    assert resumed.resumed_from == 1 and read_pretrained_config(out)["pretrain_config"]["lr"] == 0.02
    assert not (out / "logged_runs.json").exists()  # it recorded the previous prompt's run
    assert not (out / "checkpoints" / "replaces.json").exists()
    assert finished_prompt(new, out) is not None  # finished: the same command again trains nothing
    with pytest.raises(Ptv2Error, match="other settings"):
        finished_prompt(PretrainConfig(**CFG), out)


def test_ctrl_c_during_pretrain_says_what_is_kept(tmp_path, tokenizer, monkeypatch):
    """`ptv2 pretrain` as a process, SIGINT once an epoch is checkpointed: exit 130, one error line
    naming the checkpoints and how to resume, no half-made prompt beside them."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import interruptible, run_cli

    model = tiny_model_folder(tmp_path, tokenizer)
    out = tmp_path / "pre"
    command = [sys.executable, "-m", "pipelines.cli", "pretrain", "--tasks", "trec,wnut16", "--model",
               "tiny", "--max-prompt-len", "8", "--lengths", "2,8", "--epochs", "500",  # a folder, relative
               "--max-train", "48", "--max-eval", "16", "--device", "cpu", "--out", str(out), "--quiet"]
    root = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=interruptible, cwd=tmp_path)
    try:
        deadline = time.time() + 120
        while not list(out.glob("checkpoints/epoch-*.json")) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        # the same command again while the first runs (to "resume" it): refused, nothing of the first touched.
        # The real entry point in this process, from the same folder (as a process of its own it paid
        # 10 s of imports, while the first process trained on)
        monkeypatch.chdir(tmp_path)
        second = run_cli(*command[3:])
        assert second.returncode == 2 and second.stderr.strip() == (
            f"error: another `ptv2 pretrain` is writing to '{out}': wait for it to end, or stop it first "
            "(then the same command resumes it)"), second.stderr
        assert proc.poll() is None  # the first still runs
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    lines = err.strip().splitlines()
    assert proc.returncode == 130 and len(lines) == 1, err
    newest = max(checkpoint_epochs(out / "checkpoints"))
    recorded = json.loads((out / "checkpoints" / f"epoch-{newest}.json").read_text())["run"]["model"]
    assert recorded == str(model.resolve())  # the prompt names its base model from any folder
    assert lines[0] == (f"error: interrupted; epoch {newest} of 500 is checkpointed in {out / 'checkpoints'}: "
                        "run the same command again to resume from it")
    assert {p.name for p in out.iterdir()} == {"checkpoints"}
    assert {p.name for p in tmp_path.iterdir()} == {"tiny", "pre"}  # the lock file went with the run


def test_pretrain_cli_logs_a_resumed_run_once_when_it_completes_and_keeps_the_prompt_when_logging_fails(
        tmp_path, tokenizer, monkeypatch):
    """`ptv2 pretrain --no-track` touches no store; a run resumed after epoch 1 is logged once, its
    history from epoch 0; a store that fails after pre-training is one error line (exit 2) naming
    it, and the finished prompt stays."""
    from mlflow import MlflowClient

    from conftest import run_cli as ptv2

    model = tiny_model_folder(tmp_path, tokenizer)
    own_home(monkeypatch, tmp_path)
    out = tmp_path / "pre"
    args = ["pretrain", "--tasks", "trec,wnut16", "--model", str(model), "--max-prompt-len", "4", "--lengths", "2,4",
            "--epochs", "2", "--max-train", "16", "--max-eval", "16", "--device", "cpu", "--out", str(out), "--quiet"]

    def back_to_epoch_1() -> None:  # as if stopped after epoch 1: its checkpoint, no prompt yet
        for name in ("prompt_config.json", "prompt.safetensors", "dev_curves.png", "checkpoints/epoch-2.json",
                     "checkpoints/epoch-2.safetensors"):
            (out / name).unlink()

    res = ptv2(*args, "--no-track")
    assert res.returncode == 0 and "MLflow" not in res.stdout, res.stderr
    assert not (tmp_path / "home").exists()
    back_to_epoch_1()
    broken = tmp_path / "broken.db"
    broken.write_text("not a database")
    res = ptv2(*args, "--mlflow-uri", f"sqlite:///{broken}")
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        f"error: the pre-trained prompt in {out} is complete and kept, but its run is not in MLflow: logging it to "
        f"the store sqlite:///{broken} failed: cannot open the MLflow store sqlite:///{broken}: file is not a database; "
        "run the same "
        "command again to log it (it is not trained again)"], res.stderr
    assert f"pre-trained prompt written to {out} (resumed after epoch 1)" in res.stdout
    assert read_pretrained_config(out)["epochs_trained"] == 2  # the prompt is there, finished
    back_to_epoch_1()
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    res = ptv2(*args, "--mlflow-uri", store)
    assert res.returncode == 0 and "(resumed after epoch 1)" in res.stdout, res.stderr
    assert res.stdout.strip().splitlines()[-1].startswith(f"Review the run in MLflow:  MLFLOW_TRACKING_URI={store} ")
    client = MlflowClient(store)
    (run,) = client.search_runs([client.get_experiment_by_name("ptv2-pretrain").experiment_id])
    assert run.info.status == "FINISHED" and f"MLflow run {run.info.run_id} " in res.stdout
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "dev_trec_L2")) == [0, 1, 2]
    assert run.data.params["epochs_trained"] == "2"


def test_the_same_pretrain_command_again_logs_a_finished_prompt_whose_logging_failed_once_without_retraining(
        tmp_path, tokenizer, monkeypatch):
    """A store that fails after pre-training: the same command again finds the finished prompt of
    the same settings and logs it, not trained again (its files untouched), and records the run in
    --out; a third run logs nothing more. --no-track on it has nothing to do; other settings are
    refused, naming the difference; --overwrite drops the record with the prompt it was for."""
    from mlflow import MlflowClient

    from conftest import run_cli as ptv2

    model = tiny_model_folder(tmp_path, tokenizer)
    own_home(monkeypatch, tmp_path)
    out, db = tmp_path / "pre", tmp_path / "mlflow.db"
    store = f"sqlite:///{db}"
    settings = ["pretrain", "--tasks", "trec,wnut16", "--model", str(model), "--max-prompt-len", "4", "--lengths",
                "2,4", "--epochs", "2", "--max-train", "16", "--max-eval", "16", "--device", "cpu", "--out", str(out),
                "--quiet"]
    args = [*settings, "--mlflow-uri", store]
    db.write_text("not a database")  # passes the check before pre-training, fails when the run is logged
    res = ptv2(*args)
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        f"error: the pre-trained prompt in {out} is complete and kept, but its run is not in MLflow: logging it to "
        f"the store {store} failed: cannot open the MLflow store {store}: file is not a database; run the same command "
        "again to "
        "log it (it is not trained again)"], res.stderr
    scores = json.loads(res.stdout[:res.stdout.index("\n}") + 2])
    trained = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    db.write_bytes(b"")  # the store works again (repaired in place: an empty file is an empty sqlite database)

    res = ptv2(*args)
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip().splitlines() == [
        f"the pre-trained prompt in {out} is finished already (not trained again): logging its run to MLflow"]
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("ptv2-pretrain").experiment_id
    (run,) = client.search_runs([experiment])
    assert run.info.status == "FINISHED" and f"MLflow run {run.info.run_id} " in res.stdout
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "dev_trec_L2")) == [0, 1, 2]
    assert json.loads(res.stdout[:res.stdout.index("\n}") + 2]) == scores  # what the first run printed
    assert res.stdout.strip().splitlines()[-1].startswith(f"Review the run in MLflow:  MLFLOW_TRACKING_URI={store} ")
    record = out / "logged_runs.json"
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p != record} == trained  # nothing trained again
    assert [r["run_id"] for r in json.loads(record.read_text())["runs"]] == [run.info.run_id]

    res = ptv2(*args)  # a third time: logged already, not twice
    assert res.returncode == 0 and res.stderr.strip().splitlines() == [
        f"the pre-trained prompt in {out} is finished and logged already (run {run.info.run_id} in the store "
        f"{store}): nothing to do"], res.stderr
    assert f"MLflow run {run.info.run_id} " in res.stdout
    res = ptv2(*settings, "--no-track")
    assert res.returncode == 0 and "MLflow" not in res.stdout and res.stderr.strip().splitlines() == [
        f"the pre-trained prompt in {out} is finished already (not trained again; --no-track: not logged)"]
    res = ptv2(*args, "--lr", "0.5")
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        f"error: --out '{out}' already holds a pre-trained prompt of other settings (differs in: lr; the "
        "prompt's lr 0.01; now lr 0.5): pass --overwrite to replace it, or use another --out"], res.stderr
    assert len(client.search_runs([experiment])) == 1
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p != record} == trained

    kept = record.read_text()
    record.write_text("{")
    res = ptv2(*args)
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        f"error: '{record}' is not a record of logged runs: remove it (the prompt's run is then logged again)"]
    record.write_text(kept)

    res = ptv2(*settings, "--no-track", "--overwrite")  # a new prompt: the record of the old one goes
    assert res.returncode == 0 and not record.exists(), res.stderr
    res = ptv2(*args)
    assert res.returncode == 0 and "logging its run to MLflow" in res.stderr, res.stderr
    assert len(client.search_runs([experiment])) == 2


def test_a_pre_training_task_is_found_by_its_reference_its_name_or_a_copy_of_its_yaml(tmp_path):
    """A search's trials read a copy of the task YAML in the shared folder: matched by reference or
    spec name only, the copy found no pre-trained head (trials started with a fresh one, the final
    training with the pre-trained one, and the data-seed check was skipped)."""
    from ptv2_core.multitask.pretrained import task_index

    original, copy, other = tmp_path / "a" / "task.yaml", tmp_path / "b" / "task.yaml", tmp_path / "c" / "task.yaml"
    for path, name in ((original, "mine"), (copy, "mine"), (other, "theirs")):
        path.parent.mkdir()
        (path.parent / "train.csv").write_text("text,label\nx,a\ny,b\n")
        path.write_text(json.dumps({"name": name, "type": "sequence", "data": {"train": "train.csv"}}))
    config = {"tasks": [{"ref": "trec", "spec": {"name": "trec"}}, {"ref": str(original), "spec": {"name": "mine"}}]}
    assert [task_index(config, t) for t in ("trec", str(original), "mine", str(copy), str(other), "rt")] == [
        0, 1, 1, 1, None, None]


def test_a_nested_step_moves_only_the_positions_it_uses():
    """Gradients reached only the first L positions, but AdamW moved the rest by their stale
    momentum: after a full-length step, an L=2 step changed rows 2-7 by 2/3 as much as rows 0-1."""
    from ptv2_core.optim import leading_rows_only

    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(8, 4))
    opt = torch.optim.AdamW([weight], lr=0.1, weight_decay=0.01)

    def step(rows: int) -> None:
        opt.zero_grad(set_to_none=True)
        (weight[:rows] ** 2).sum().backward()
        with leading_rows_only(weight, opt, rows):
            opt.step()

    step(8)
    before, moments = weight.detach().clone(), {k: v.clone() for k, v in opt.state[weight].items()}
    step(2)
    assert not torch.equal(weight[:2], before[:2])
    assert torch.equal(weight[2:], before[2:])
    assert torch.equal(opt.state[weight]["exp_avg"][2:], moments["exp_avg"][2:])
    assert torch.equal(opt.state[weight]["exp_avg_sq"][2:], moments["exp_avg_sq"][2:])
    # without it, the same two steps move the tail
    weight2 = torch.nn.Parameter(before.clone())
    opt2 = torch.optim.AdamW([weight2], lr=0.1, weight_decay=0.01)
    opt2.load_state_dict(opt.state_dict())
    opt2.state[weight2] = {k: v.clone() for k, v in moments.items()}
    opt2.zero_grad(set_to_none=True)
    (weight2[:2] ** 2).sum().backward()
    opt2.step()
    assert not torch.equal(weight2[2:], before[2:])


def test_pretraining_moves_only_the_positions_each_step_uses(tmp_path, tokenizer, monkeypatch):
    """The loop itself, not only the helper: the prompt's rows at the start of each step, and the
    length each step drew; after a step of length 2, rows 2-7 are as they were."""
    import importlib

    pretrain_mod = importlib.import_module("ptv2_core.multitask.pretrain")  # the package's `pretrain` is the function

    lengths, before = [], []
    real_next, real_step = TaskMixer.next, pretrain_mod.optimizer_step

    def next_batch(self):
        drawn = real_next(self)
        lengths.append(drawn[2])
        return drawn

    def step(loss, params, *args):
        before.append(params[0].detach().clone())  # the shared prompt, as the step found it
        real_step(loss, params, *args)

    monkeypatch.setattr(TaskMixer, "next", next_batch)
    monkeypatch.setattr(pretrain_mod, "optimizer_step", step)
    cfg = PretrainConfig(**CFG | {"epochs": 1, "tasks": ("trec",), "lengths": (2, 8), "max_train": 96})
    pretrain(cfg, tmp_path / "p", backbone=tiny_bert(tokenizer), tokenizer=tokenizer)
    assert before[0].shape[0] == 8 and len(before) == len(lengths) >= 6
    pairs = list(zip(lengths, before, before[1:]))
    short = [(a, b) for n, a, b in pairs if n == 2]
    assert short and any(n == 8 for n, _, _ in pairs[:-1])  # short steps after full-length ones
    assert all(torch.equal(a[2:], b[2:]) and not torch.equal(a[:2], b[:2]) for a, b in short)
    assert any(not torch.equal(a[2:], b[2:]) for n, a, b in pairs if n == 8)


def test_the_longest_length_must_be_the_max_prompt_length_and_a_small_temperature_does_not_overflow():
    # max 8 with lengths up to 4: positions 5-8 were never trained, yet shipped and accepted
    with pytest.raises(Ptv2Error, match=r"longest of the prompt lengths \(4\) must be the max prompt length \(8\)"):
        PretrainConfig(**CFG | {"lengths": (2, 4)}).check()
    from ptv2_core.multitask import default_lengths

    assert default_lengths(128) == (4, 8, 16, 32, 64, 128) and default_lengths(8) == (4, 8)
    assert default_lengths(2) == (2,)
    # 32 ** 1000 is inf in float64; inf / inf made NaN weights and numpy's traceback
    weights = mixing_weights([32, 1000], 0.001)
    assert weights == [0.0, 1.0]
    assert mixing_weights([100, 400], 1.0) == pytest.approx([0.2, 0.8])
    # numpy's integers (from a search) are plain Python numbers: the checkpoint's JSON holds them
    cfg = PretrainConfig(**CFG | {"epochs": np.int64(2), "lr": np.float32(0.01)})
    assert type(cfg.epochs) is int and type(cfg.lr) is float
    json.dumps(cfg.run_key())


def test_resume_refuses_a_base_whose_tokenizer_changed_and_resumes_a_checkpoint_from_before_it_was_keyed(
        tmp_path, tokenizer):
    """The same weights beside other tokenizer files feed other ids: the run key holds the
    tokenizer's fingerprint too. A checkpoint written before that (no such key) still resumes."""
    base = tmp_path / "tiny"
    tiny_bert(tokenizer).save_pretrained(base)
    tokenizer.save_pretrained(base)
    cfg = PretrainConfig(**CFG | {"model": str(base), "epochs": 2, "lengths": (2, 8)})
    out = tmp_path / "p"
    assert pretrain(cfg, out, lambda epoch, row: epoch == 1).stopped
    saved = json.loads((out / "checkpoints" / "epoch-1.json").read_text())["run"]
    assert saved["tokenizer_fingerprint"].startswith("sha256:")
    tok_cfg = json.loads((base / "tokenizer_config.json").read_text())
    (base / "tokenizer_config.json").write_text(json.dumps(tok_cfg | {"do_lower_case": False}))
    with pytest.raises(Ptv2Error, match=r"holds checkpoints of a different pre-training run "
                                        r"\(differs in: tokenizer_fingerprint\); use another --out"):
        pretrain(cfg, out)
    assert checkpoint_epochs(out / "checkpoints") == [1] and not (out / "prompt_config.json").exists()
    # checkpointed before the run key held the tokenizer: nothing to compare it with, so it resumes
    ckpt = out / "checkpoints" / "epoch-1.json"
    doc = json.loads(ckpt.read_text())
    del doc["run"]["tokenizer_fingerprint"]
    ckpt.write_text(json.dumps(doc))
    (base / "tokenizer_config.json").write_text(json.dumps(tok_cfg))
    resumed = pretrain(cfg, out)
    assert resumed.resumed_from == 1 and [h["epoch"] for h in resumed.history] == [0, 1, 2]
    # its new checkpoints carry the key, so a later change of tokenizer is caught
    assert json.loads((out / "checkpoints" / "epoch-2.json").read_text())["run"] == saved


def _csv_task(folder, name: str, rows: int, salt: str = "", **spec) -> str:
    """A user task YAML over a small train CSV (dev carved from it): ``rows`` rows, two labels;
    ``spec``: more task fields (max_length, labels, ...)."""
    folder.mkdir(parents=True, exist_ok=True)
    words = ["good", "bad", "fine", "poor", "great", "awful"]
    lines = [f"{words[i % 6]} movie number {i}{salt},{'pos' if i % 2 else 'neg'}" for i in range(rows)]
    (folder / "train.csv").write_text("text,label\n" + "\n".join(lines) + "\n")
    (folder / "task.yaml").write_text(json.dumps({"name": name, "type": "sequence", "data": {"train": "train.csv"}}
                                                 | spec))
    return str(folder / "task.yaml")


def test_resume_refuses_a_task_whose_rows_changed_and_resumes_a_checkpoint_from_before_they_were_keyed(
        tmp_path, tokenizer):
    """The run key named the tasks but not their rows: a user task whose train CSV was edited
    between a stop and the resume continued with a sampler fitted to the old rows (silently, or,
    with fewer rows than a task's cursor, an empty batch's ValueError). Each task's row count and
    the hashes of its train and dev rows are keyed now; a checkpoint without them still resumes."""
    a, b = _csv_task(tmp_path / "a", "alpha", 60), _csv_task(tmp_path / "b", "beta", 60)
    cfg = PretrainConfig(**CFG | {"tasks": (a, b), "epochs": 2, "lengths": (2, 8), "batch_size": 7,
                                  "max_train": None, "max_eval": None})
    out = tmp_path / "p"
    assert pretrain(cfg, out, lambda epoch, row: epoch == 1, backbone=tiny_bert(tokenizer), tokenizer=tokenizer).stopped
    original = (tmp_path / "a" / "train.csv").read_text()
    refused = r"holds checkpoints of a different pre-training run \(differs in: task_data:alpha\).*task 'alpha'"
    for rows, salt in ((12, ""), (60, " edited")):  # fewer rows; as many rows, other text
        _csv_task(tmp_path / "a", "alpha", rows, salt)
        with pytest.raises(Ptv2Error, match=refused):
            pretrain(cfg, out, backbone=tiny_bert(tokenizer), tokenizer=tokenizer)
        assert checkpoint_epochs(out / "checkpoints") == [1] and not (out / "prompt_config.json").exists()
    # checkpointed before the run key held the tasks' rows: nothing to compare them with, so it resumes
    ckpt = out / "checkpoints" / "epoch-1.json"
    doc = json.loads(ckpt.read_text())
    saved = dict(doc["run"])
    assert saved["task_data:alpha"]["train_rows"] == 48 and saved["task_data:alpha"]["train"].startswith("sha256:")
    doc["run"] = {k: v for k, v in doc["run"].items() if not k.startswith("task_data:")}
    doc["sampler"].pop("sizes")
    ckpt.write_text(json.dumps(doc))
    # ... but its sampler must fit the rows: a cursor past them is refused, not an empty batch's ValueError
    cursor = doc["sampler"]["cursor"][0]
    ckpt.write_text(json.dumps(doc | {"sampler": doc["sampler"] | {"cursor": [40] + doc["sampler"]["cursor"][1:]}}))
    _csv_task(tmp_path / "a", "alpha", 12)
    with pytest.raises(Ptv2Error, match=r"different pre-training run \(sampler state does not match the tasks: task 1 "
                                        r"stopped at row 40 of a pass, but it has \d+ training rows; tasks in the "
                                        r"order alpha, beta\); use another --out"):
        pretrain(cfg, out, backbone=tiny_bert(tokenizer), tokenizer=tokenizer)
    assert doc["sampler"]["cursor"][0] == cursor
    ckpt.write_text(json.dumps(doc))
    (tmp_path / "a" / "train.csv").write_text(original)
    resumed = pretrain(cfg, out, backbone=tiny_bert(tokenizer), tokenizer=tokenizer)
    assert resumed.resumed_from == 1 and [h["epoch"] for h in resumed.history] == [0, 1, 2]
    assert json.loads((out / "checkpoints" / "epoch-2.json").read_text())["run"] == saved


def test_the_sampler_refuses_a_state_of_other_task_sizes():
    """A sampler state fitted to other rows would index past them (an empty or short batch)."""
    mixer = TaskMixer([40, 30], 8, [2, 4], seed=0)
    for _ in range(5):
        mixer.next()
    state = json.loads(json.dumps(mixer.state_dict()))
    assert state["sizes"] == [40, 30]
    TaskMixer([40, 30], 8, [2, 4], seed=0).load_state_dict(state)
    with pytest.raises(Ptv2Error, match=r"task 2 has 20 training rows now, 30 in the checkpoint"):
        TaskMixer([40, 20], 8, [2, 4], seed=0).load_state_dict(state)
    # a state from before sizes were saved: a cursor past the rows is still refused
    old = {k: v for k, v in state.items() if k != "sizes"} | {"cursor": [16, 24]}
    with pytest.raises(Ptv2Error, match=r"task 2 .* at row 24 of a pass, but it has 20 training rows"):
        TaskMixer([40, 20], 8, [2, 4], seed=0).load_state_dict(old)


def _pretrained_by_the_cli(tmp_path, tokenizer, monkeypatch):
    """`ptv2 pretrain` run to its end on two CSV tasks (alpha, beta: 40 rows each) with a tiny
    BERT; returns the command's arguments and its --out folder."""
    from conftest import run_cli as ptv2

    model = tiny_model_folder(tmp_path, tokenizer)
    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    a, b = _csv_task(tmp_path / "a", "alpha", 40), _csv_task(tmp_path / "b", "beta", 40)
    out = tmp_path / "pre"
    args = ["pretrain", "--tasks", f"{a},{b}", "--model", str(model), "--max-prompt-len", "4", "--lengths", "2,4",
            "--epochs", "1", "--batch-size", "8", "--device", "cpu", "--out", str(out), "--quiet", "--no-track"]
    res = ptv2(*args)
    assert res.returncode == 0, res.stderr
    return args, out


def test_pretrain_cli_refuses_to_resume_after_a_task_csv_changed_in_one_error_line(tmp_path, tokenizer, monkeypatch):
    """`ptv2 pretrain` stopped after a checkpoint, a task's train CSV edited, the same command
    again: one `error:` line naming the task, exit 2 (it was a ValueError traceback, or silence)."""
    from conftest import run_cli as ptv2

    args, out = _pretrained_by_the_cli(tmp_path, tokenizer, monkeypatch)
    for name in ("prompt_config.json", "prompt.safetensors", "dev_curves.png"):  # as if stopped after its checkpoint
        (out / name).unlink()
    _csv_task(tmp_path / "a", "alpha", 8)
    res = ptv2(*args)
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        f"error: '{out}' holds checkpoints of a different pre-training run (differs in: task_data:alpha) (the train "
        "or dev rows of task 'alpha' changed since the checkpoint); use another --out, or --overwrite to start afresh"
    ], res.stderr
    assert not (out / "prompt_config.json").exists()


def test_a_run_resumed_on_another_device_says_so_in_one_note(run, tmp_path, tokenizer, capsys):
    """The device is no part of the run key (a stopped run may move to another machine), but a
    bf16 CUDA run resumed on a CPU in fp32 continues in other numbers: one note on stderr says so."""
    full_dir, _ = run
    for moved in (False, True):
        out = tmp_path / f"p{moved}"
        shutil.copytree(full_dir / "checkpoints", out / "checkpoints")
        for suffix in (".json", ".safetensors"):
            (out / "checkpoints" / f"epoch-3{suffix}").unlink()
        ckpt = out / "checkpoints" / "epoch-2.json"
        doc = json.loads(ckpt.read_text())
        assert doc["trained_on"] == {"device": "cpu", "bf16": False}
        if moved:
            ckpt.write_text(json.dumps(doc | {"trained_on": {"device": "cuda", "bf16": True}}))
        capsys.readouterr()
        assert pretrain(PretrainConfig(**CFG), out, backbone=tiny_bert(tokenizer), tokenizer=tokenizer).resumed_from == 2
        notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
        assert notes == ([f"note: resuming pre-training in {out} on cpu (fp32); it was checkpointed on cuda (bf16), "
                          "so its numbers will differ somewhat from a run that was not moved"] if moved else []), notes


def test_resume_refuses_a_task_whose_spec_changed_and_resumes_a_checkpoint_from_before_it_was_keyed(
        tmp_path, tokenizer):
    """The run key held each task's rows (texts and label names) but not its spec: a task YAML's
    max_length, or its label order (the head's class ids), edited between a stop and the resume
    continued silently with other training. Each task's spec is keyed now (``task_spec:<name>``);
    a checkpoint without it still resumes."""
    a, b = _csv_task(tmp_path / "a", "alpha", 60, max_length=32), _csv_task(tmp_path / "b", "beta", 60)
    cfg = PretrainConfig(**CFG | {"tasks": (a, b), "epochs": 2, "lengths": (2, 8), "batch_size": 7,
                                  "max_train": None, "max_eval": None})
    out = tmp_path / "p"
    assert pretrain(cfg, out, lambda epoch, row: epoch == 1, backbone=tiny_bert(tokenizer), tokenizer=tokenizer).stopped
    for edit, field in (({"max_length": 8}, "max_length"), ({"labels": ["pos", "neg"]}, "labels")):
        _csv_task(tmp_path / "a", "alpha", 60, **{"max_length": 32} | edit)
        with pytest.raises(Ptv2Error, match=r"holds checkpoints of a different pre-training run \(differs in: "
                                            rf"task_spec:alpha\) \(the spec of task 'alpha' changed since the "
                                            rf"checkpoint: {field}\); use another --out"):
            pretrain(cfg, out, backbone=tiny_bert(tokenizer), tokenizer=tokenizer)
        assert checkpoint_epochs(out / "checkpoints") == [1] and not (out / "prompt_config.json").exists()
    _csv_task(tmp_path / "a", "alpha", 60, max_length=32)
    # checkpointed before the run key held the tasks' specs (with their rows, as from b25e848): it resumes
    ckpt = out / "checkpoints" / "epoch-1.json"
    doc = json.loads(ckpt.read_text())
    saved = dict(doc["run"])
    assert saved["task_spec:alpha"]["max_length"] == 32 and saved["task_spec:alpha"]["labels"] == ["neg", "pos"]
    ckpt.write_text(json.dumps(doc | {"run": {k: v for k, v in saved.items() if not k.startswith("task_spec:")}}))
    resumed = pretrain(cfg, out, backbone=tiny_bert(tokenizer), tokenizer=tokenizer)
    assert resumed.resumed_from == 1 and [h["epoch"] for h in resumed.history] == [0, 1, 2]
    assert json.loads((out / "checkpoints" / "epoch-2.json").read_text())["run"] == saved


def test_the_same_pretrain_command_on_a_finished_prompt_refuses_tasks_changed_since(tmp_path, tokenizer, monkeypatch):
    """A finished prompt was "finished already" for the same settings though a task's CSV or
    spec had changed since it was pre-trained: the edited data was silently not trained on. It is
    refused now as an unfinished run's resume is (one `error:` line naming the task, exit 2); a
    prompt finished before its tasks' rows and specs were recorded is accepted as before."""
    from conftest import run_cli as ptv2

    args, out = _pretrained_by_the_cli(tmp_path, tokenizer, monkeypatch)
    finished = f"the pre-trained prompt in {out} is finished already (not trained again; --no-track: not logged)"
    res = ptv2(*args)
    assert res.returncode == 0 and res.stderr.strip().splitlines() == [finished], res.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    for edit, key, why in (
            (dict(rows=8), "task_data", "the train or dev rows of task 'alpha' changed since it was pre-trained"),
            (dict(rows=40, max_length=16), "task_spec",
             "the spec of task 'alpha' changed since it was pre-trained: max_length")):
        _csv_task(tmp_path / "a", "alpha", **edit)
        res = ptv2(*args)
        assert res.returncode == 2 and res.stderr.strip().splitlines() == [
            f"error: --out '{out}' already holds a pre-trained prompt of other settings (differs in: {key}:alpha) "
            f"({why}): pass --overwrite to replace it, or use another --out"], res.stderr
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    # a prompt finished before its tasks were recorded: nothing to compare them with, "finished already"
    config = json.loads((out / "prompt_config.json").read_text())
    assert config["task_keys"]["task_data:alpha"]["train_rows"] == 32
    (out / "prompt_config.json").write_text(json.dumps({k: v for k, v in config.items() if k != "task_keys"}))
    res = ptv2(*args)
    assert res.returncode == 0 and res.stderr.strip().splitlines() == [finished], res.stderr


def test_ctrl_c_as_the_pretraining_run_is_logged_marks_it_failed_and_says_the_prompt_is_kept(run, tmp_path, monkeypatch,
                                                                                               python_sigint):
    """A SIGINT the moment the store wrote the run (inside create_run) left it RUNNING: the cleanup
    that marks it FAILED was not entered yet. The command says the prompt is kept and how to log it."""
    import os
    import signal

    import mlflow.tracking
    from mlflow import MlflowClient

    from pipelines.cli.pretrain_cmds import _log_run
    from ptv2_core.errors import Ptv2Interrupted

    class SigintAfterCreateRun(MlflowClient):  # the real client; a Ctrl-C as its create_run returns
        def create_run(self, *args, **kwargs):
            created = super().create_run(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGINT)
            return created

    out = tmp_path / "p"
    shutil.copytree(run[0], out)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(mlflow.tracking, "MlflowClient", SigintAfterCreateRun)
    with pytest.raises((Ptv2Interrupted, KeyboardInterrupt)) as e:
        _log_run(out, store, store)
    assert isinstance(e.value, Ptv2Interrupted) and str(e.value) == (
        f"interrupted; the pre-trained prompt in {out} is complete and kept, but its run is not in MLflow: run the "
        "same command again to log it (it is not trained again)"), repr(e.value)
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("ptv2-pretrain").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert not (out / "logged_runs.json").exists()


def test_ctrl_c_after_the_prompt_is_written_says_it_is_kept_and_how_to_log_it(tmp_path, tokenizer, monkeypatch,
                                                                              python_sigint):
    """A SIGINT between `pre-trained prompt written` and the start of its MLflow logging was a plain
    `error: interrupted`. It says the prompt is kept and how to log it: with --overwrite, the same
    command again would train anew, so it says to run it without; that logs the prompt, not trained again."""
    import contextlib
    import io
    import os
    import signal

    from mlflow import MlflowClient

    from conftest import run_cli as ptv2
    from pipelines.cli import main

    model = tiny_model_folder(tmp_path, tokenizer)
    own_home(monkeypatch, tmp_path)
    out, db = tmp_path / "pre", tmp_path / "mlflow.db"
    args = ["pretrain", "--tasks", "trec", "--model", str(model), "--max-prompt-len", "4", "--lengths", "2,4",
            "--epochs", "1", "--max-train", "16", "--max-eval", "16", "--device", "cpu", "--out", str(out), "--quiet",
            "--mlflow-uri", f"sqlite:///{db}"]

    class SigintOnceWritten(io.StringIO):  # the command's stdout: a Ctrl-C as it says the prompt is written
        def write(self, text: str) -> int:
            n = super().write(text)
            if text.startswith("pre-trained prompt written"):
                os.kill(os.getpid(), signal.SIGINT)
            return n

    stdout, stderr = SigintOnceWritten(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as e:
        main([*args, "--overwrite"])
    assert (e.value.code, stderr.getvalue()) == (130, (
        f"error: interrupted; the pre-trained prompt in {out} is complete and kept, but its run is not in MLflow: "
        "run the same command again without --overwrite to log it (it is not trained again)\n")), stdout.getvalue()
    assert f"pre-trained prompt written to {out}" in stdout.getvalue()
    assert not db.exists()  # nothing logged
    trained = {p: p.stat().st_mtime_ns for p in out.rglob("*")}

    res = ptv2(*args)  # as the line says
    assert res.returncode == 0 and res.stderr.strip().splitlines() == [
        f"the pre-trained prompt in {out} is finished already (not trained again): logging its run to MLflow"], res.stderr
    client = MlflowClient(f"sqlite:///{db}")
    (run,) = client.search_runs([client.get_experiment_by_name("ptv2-pretrain").experiment_id])
    assert run.info.status == "FINISHED" and f"MLflow run {run.info.run_id} " in res.stdout
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.name != "logged_runs.json"} == trained


@pytest.mark.parametrize("track", [True, False])
def test_ctrl_c_as_the_prompt_is_written_says_it_is_complete_not_to_resume_it(tmp_path, tokenizer, monkeypatch,
                                                                              python_sigint, track):
    """A SIGINT inside the pre-training run just after it wrote the finished prompt (before it
    returned) said "epoch 1 of 1 is checkpointed ...: run the same command again to resume from it",
    as for a run stopped midway. It says the prompt is complete and kept; tracked, that its run is
    not in MLflow and that the same command (without --overwrite) logs it, which it then does. A
    finished prompt of these settings that an --overwrite run has not replaced yet is not its own."""
    import contextlib
    import io
    import os
    import signal
    import sys

    from mlflow import MlflowClient

    from conftest import run_cli as ptv2
    from pipelines.cli import main

    model = tiny_model_folder(tmp_path, tokenizer)
    own_home(monkeypatch, tmp_path)
    out, db = tmp_path / "pre", tmp_path / "mlflow.db"
    args = ["pretrain", "--tasks", "trec", "--model", str(model), "--max-prompt-len", "4", "--lengths", "2,4",
            "--epochs", "1", "--max-train", "16", "--max-eval", "16", "--device", "cpu", "--out", str(out), "--quiet",
            *(["--mlflow-uri", f"sqlite:///{db}"] if track else ["--no-track"])]
    pretrain_module = sys.modules["ptv2_core.multitask.pretrain"]  # the package's `pretrain` is its function
    write = pretrain_module.write_atomic_dir

    def write_then_sigint(*a, **kw):  # the real write; a Ctrl-C the moment it has landed
        write(*a, **kw)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(pretrain_module, "write_atomic_dir", write_then_sigint)
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as e:
        main([*args, "--overwrite"])
    kept = (f"the pre-trained prompt in {out} is complete and kept, but its run is not in MLflow: run the same "
            "command again without --overwrite to log it (it is not trained again)" if track else
            f"the pre-trained prompt in {out} is complete and kept")
    assert (e.value.code, stderr.getvalue()) == (130, f"error: interrupted; {kept}\n"), stdout.getvalue()
    assert (out / "prompt_config.json").is_file() and not db.exists()
    monkeypatch.setattr(pretrain_module, "write_atomic_dir", write)
    trained = {p: p.stat().st_mtime_ns for p in out.rglob("*")}

    res = ptv2(*args)  # as the line says: nothing trained again; tracked, the run is logged
    assert res.returncode == 0, res.stderr
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.name != "logged_runs.json"} == trained
    if track:
        client = MlflowClient(f"sqlite:///{db}")
        (logged,) = client.search_runs([client.get_experiment_by_name("ptv2-pretrain").experiment_id])
        assert logged.info.status == "FINISHED"

    # --overwrite again, a Ctrl-C before its first checkpoint: the finished prompt of these settings is the
    # previous run's (kept until a new one is written), not this run's: nothing of this run to resume
    checkpoint = pretrain_module.save_checkpoint

    def sigint_then_checkpoint(*a, **kw):
        os.kill(os.getpid(), signal.SIGINT)
        checkpoint(*a, **kw)

    monkeypatch.setattr(pretrain_module, "save_checkpoint", sigint_then_checkpoint)
    stderr = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as e:
        main([*args, "--overwrite"])
    assert (e.value.code, stderr.getvalue()) == (
        130, "error: interrupted before the first epoch's checkpoint: nothing to resume\n")


@pytest.mark.parametrize("args, message", [
    (["--prompt-len", "16"], "prompt length 16 is longer than the pre-trained prompt"),
    (["--prompt-len", "4", "--seed", "1"], "use seed 0"),
    (["--prompt-len", "4", "--reparam"], "pre-train and train with the same --reparam setting"),
])
def test_train_init_refuses_what_the_prompt_cannot_start_before_the_task_and_model_load(run, tmp_path, args, message):
    """`ptv2 train --init` used to load the task and the base model before it looked at the length,
    seed and reparameterization the prompt can start: minutes on a large model, to be told a
    --prompt-len was too long. The prompt's base here ("tiny-bert") cannot be loaded at all, so
    only a check made before the model loads can name the problem."""
    from conftest import run_cli

    out, _ = run
    res = run_cli("train", "--task", "trec", "--model", "tiny-bert", "--epochs", "1", "--max-train", "8", *args,
                  "--init", str(out), "--out", str(tmp_path / "a"), "--quiet")
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], res.stderr
    assert list(tmp_path.iterdir()) == []


def test_train_init_records_the_prompt_folder_by_its_absolute_path(tmp_path, tokenizer, monkeypatch):
    """`ptv2 train --init runs/pre` recorded "runs/pre" in metrics.json and adapter_config.json,
    while it records the task and model by absolute paths (a relative one names another folder,
    or none, from elsewhere): the adapter's provenance pointed nowhere once read from another folder."""
    from conftest import run_cli

    model = tiny_model_folder(tmp_path, tokenizer)
    monkeypatch.chdir(tmp_path)
    res = run_cli("pretrain", "--tasks", "trec", "--model", str(model), "--max-prompt-len", "4", "--lengths", "2,4",
                  "--epochs", "1", "--max-train", "16", "--max-eval", "8", "--no-track", "--quiet", "--out", "pre")
    assert res.returncode == 0, res.stderr
    res = run_cli("train", "--task", "trec", "--model", str(model), "--prompt-len", "2", "--epochs", "1",
                  "--max-train", "16", "--max-eval", "8", "--quiet", "--init", "pre", "--out", "adapter")
    assert res.returncode == 0, res.stderr
    where = str(tmp_path.resolve() / "pre")
    assert json.loads((tmp_path / "adapter" / "metrics.json").read_text())["init"] == where
    assert json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())["extra"]["init"] == where


def test_eval_pretrained_says_a_base_model_that_does_not_load_is_the_prompts_recorded_base(run):
    """The prompt here was pre-trained on a model named "tiny-bert", which no folder or cache holds:
    `eval --pretrained` said only that model 'tiny-bert' is not found, with no word of whose it is."""
    from conftest import run_cli

    out, _ = run
    res = run_cli("eval", "--pretrained", str(out), "--max-eval", "4")
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and res.stdout == "", res.stderr
    prefix = f"error: pre-trained prompt '{out}': its base model 'tiny-bert' cannot be loaded here: "
    assert lines[0].startswith(prefix) and "'tiny-bert'" in lines[0][len(prefix):], res.stderr  # then the loader's why
