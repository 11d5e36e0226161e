"""The pipeline's final step, retraining from a pre-trained prompt, says in its log when the
task's head starts fresh (the task took no part in pre-training), as ``ptv2 train --init`` does."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def pretrained_on_rt(tiny_model_dir, tmp_path_factory):
    from conftest import run_cli

    pre = tmp_path_factory.mktemp("pretrained") / "prompt"
    res = run_cli("pretrain", "--tasks", "rt", "--model", tiny_model_dir, "--max-prompt-len", "4", "--lengths", "4",
                  "--epochs", "1", "--max-train", "16", "--max-eval", "8", "--batch-size", "16", "--device", "cpu",
                  "--no-track", "--quiet", "--out", str(pre))
    assert res.returncode == 0, res.stderr[-3000:]
    return pre


def test_the_final_retrain_says_the_heads_start_fresh(pretrained_on_rt, tiny_model_dir, tmp_path, capsys):
    from components.data import prepare_data
    from components.final_step import final_train

    prepared = tmp_path / "data"
    prepare_data(["trec"], prepared, seed=0, max_train=16, max_eval=8)
    capsys.readouterr()
    final_train(prepared, "trec", {"prompt_len": 4, "lr": 3e-2, "batch_size": 16}, tmp_path / "final",
                model=tiny_model_dir, epochs=1, init_dir=pretrained_on_rt, seed=0)
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note: ")]
    assert notes == [f"note: task 'trec' took no part in pre-training the prompt in '{pretrained_on_rt}' (tasks rt): "
                     "its first 4 positions are copied, its head starts fresh"], notes
