"""The pre-training's MLflow run as a reviewer reads it: which code ran, when the run trained (not when it
was logged), every metric at its epoch's time, and the settings that change what is trained."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from components.pretrain_tracking import log_pretraining
from ptv2_core.multitask import PretrainConfig, pretrain, read_pretrained_config
from test_multitask import tiny_bert

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def test_the_run_tells_the_code_the_training_times_and_per_task_losses(tmp_path, minilm_path):
    from mlflow import MlflowClient
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    out = tmp_path / "p"
    cfg = PretrainConfig(tasks=("trec", "wnut16"), model="tiny-bert", max_prompt_len=4, lengths=(2, 4), epochs=2,
                         batch_size=16, max_train=16, max_eval=8, device="cpu", progress=False)
    pretrain(cfg, out, backbone=tiny_bert(tokenizer), tokenizer=tokenizer)
    config = read_pretrained_config(out)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(store)
    run = client.get_run(log_pretraining(out, store))

    tags, params = run.data.tags, run.data.params
    # the runs list tells one pre-training from another (every run was named 'pretrain')
    assert run.info.run_name == "pretrain trec,wnut16 L2-4 (tiny-bert)"
    assert tags["ptv2.code_version"] == config["provenance"]["code_version"]
    head = subprocess.run(["git", "-C", str(Path(__file__).resolve().parents[1]), "rev-parse", "HEAD"],
                          capture_output=True, text=True)
    if head.returncode == 0:  # a git checkout (a tarball of the code records no commit, and no tag)
        assert tags["mlflow.source.git.commit"] == head.stdout.strip()  # the UI's "Source"
    else:
        assert "mlflow.source.git.commit" not in tags
    # the run's times are the training's, whenever it is logged (a store that failed: logged later)
    assert (run.info.start_time, run.info.end_time) == (_ms(config["started"]), _ms(config["finished"]))
    history = client.get_metric_history(run.info.run_id, "dev_trec_L2")
    assert [(m.step, m.timestamp) for m in sorted(history, key=lambda m: m.step)] == [
        (row["epoch"], _ms(row["time"])) for row in config["history"]]
    for task in ("trec", "wnut16"):  # which task the loss comes from, per epoch (an epoch that drew it)
        drew = [row["epoch"] for row in config["history"][1:] if task in row["train_loss_by_task"]]
        assert drew and sorted(m.step for m in client.get_metric_history(run.info.run_id, f"train_loss_{task}")) == drew
    assert {k: params[k] for k in ("pooling", "reparam", "ptv2_version", "started", "trained_on")} == {
        "pooling": "mean", "reparam": "False", "ptv2_version": config["ptv2_version"], "started": config["started"],
        "trained_on": "cpu (fp32)"}

    # a prompt resumed from a checkpoint of before 2026-12-07 records no start: its first scores' time is the
    # start, and the run does not end before it starts
    old = shutil.copytree(out, tmp_path / "old")
    doc = json.loads((old / "prompt_config.json").read_text())
    del doc["started"]
    (old / "prompt_config.json").write_text(json.dumps(doc))
    run = client.get_run(log_pretraining(old, store))
    assert (run.info.start_time, run.info.end_time) == (_ms(config["history"][0]["time"]), _ms(config["finished"]))
    # nor without any time: the run's times are the logging's, its end not before its start
    for row in doc["history"]:
        del row["time"]
    (old / "prompt_config.json").write_text(json.dumps(doc))
    run = client.get_run(log_pretraining(old, store))
    assert run.info.start_time <= run.info.end_time < _ms(datetime.now().isoformat()) + 1000
