"""Scoring follows the precision an adapter was trained in: ``ptv2 eval``, ``ptv2 predict``, the
registry's scoring and the served model ran every adapter under bf16 autocast on CUDA, one trained
with ``--no-bf16`` (fp32) included. On CPU autocast is off either way, so what is tested here is the
choice, read from real adapters' configs written by a tiny ``ptv2 train``."""
from __future__ import annotations

import pytest

from conftest import run_cli
from ptv2_core.adapter import read_adapter_config
from ptv2_core.precision import scoring_bf16, trained_bf16


@pytest.fixture(scope="module")
def adapters(tmp_path_factory, tiny_model_dir, one_torch_thread) -> dict[bool, str]:
    """Two tiny adapters on trec, one trained with --bf16 (the default), one with --no-bf16."""
    out = {}
    for bf16 in (True, False):
        folder = tmp_path_factory.mktemp("bf16" if bf16 else "fp32") / "adapter"
        res = run_cli("train", "--task", "trec", "--model", tiny_model_dir, "--prompt-len", "2", "--epochs", "1",
                      "--max-train", "16", "--max-eval", "8", "--batch-size", "8", "--quiet", "--out", str(folder),
                      "--bf16" if bf16 else "--no-bf16")
        assert res.returncode == 0, res.stderr
        out[bf16] = str(folder)
    return out


def test_an_adapter_trained_without_bf16_is_scored_in_fp32(adapters):
    assert trained_bf16(read_adapter_config(adapters[False])) is False
    assert scoring_bf16(read_adapter_config(adapters[False])) is False


def test_an_adapter_trained_with_bf16_is_scored_in_bf16(adapters):
    assert scoring_bf16(read_adapter_config(adapters[True])) is True


def test_the_override_wins_either_way(adapters):
    assert scoring_bf16(read_adapter_config(adapters[False]), True) is True
    assert scoring_bf16(read_adapter_config(adapters[True]), False) is False


def test_an_adapter_that_records_no_train_config_keeps_bf16():
    """Saved without a train_config (before one was recorded): training's default, bf16."""
    assert trained_bf16({"extra": {}}) is True and trained_bf16({}) is True


def test_eval_and_predict_take_the_override(adapters):
    """The flags reach the commands (on CPU both run fp32: the scores are the same)."""
    a = run_cli("eval", "--adapter", adapters[False], "--max-eval", "8", "--device", "cpu", "--bf16")
    assert a.returncode == 0, a.stderr
    b = run_cli("predict", "--adapter", adapters[True], "--device", "cpu", "--no-bf16", "what is a dog ?")
    assert b.returncode == 0 and b.stdout.strip(), b.stderr


def test_the_override_does_not_apply_to_a_pretrained_prompt(tmp_path):
    res = run_cli("eval", "--pretrained", str(tmp_path), "--no-bf16")
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        "error: --bf16/--no-bf16 applies to an adapter or a registered version, not --pretrained "
        "(a pre-trained prompt is scored in the precision it was pre-trained in)"], res.stderr


@pytest.fixture(scope="module")
def fp32_prompt(tmp_path_factory, tiny_model_dir, one_torch_thread) -> str:
    """A tiny pre-trained prompt, pre-trained with --no-bf16 (as tests/test_device_checks.py's)."""
    out = tmp_path_factory.mktemp("pretrain_fp32") / "prompt"
    res = run_cli("pretrain", "--tasks", "trec", "--model", tiny_model_dir, "--lengths", "2", "--max-prompt-len", "2",
                  "--epochs", "1", "--max-train", "8", "--max-eval", "8", "--quiet", "--no-bf16", "--device", "cpu",
                  "--no-track", "--out", str(out))
    assert res.returncode == 0, res.stderr
    return str(out)


def test_a_prompt_pretrained_without_bf16_is_scored_in_fp32(fp32_prompt):
    """`ptv2 eval --pretrained` scored every prompt under bf16 autocast on CUDA, one pre-trained with
    --no-bf16 (fp32, as its own dev scores during pre-training were) included."""
    from ptv2_core.multitask import read_pretrained_config
    from ptv2_core.precision import pretrained_bf16

    config = read_pretrained_config(fp32_prompt)
    assert pretrained_bf16(config) is False
    assert pretrained_bf16(config | {"pretrain_config": config["pretrain_config"] | {"bf16": True}}) is True
    assert pretrained_bf16({}) is True  # one that records none: pre-training's default


def test_evaluate_pretrained_scores_in_the_recorded_precision(fp32_prompt, monkeypatch):
    """The choice reaches the scoring (on CPU autocast is off either way: the call is watched, the
    real scoring runs)."""
    import ptv2_core.multitask.evaluate as mt_eval

    seen, real = [], mt_eval.evaluate

    def watched(*args, **kwargs):
        seen.append(kwargs.get("bf16"))
        return real(*args, **kwargs)

    monkeypatch.setattr(mt_eval, "evaluate", watched)
    out = mt_eval.evaluate_pretrained(fp32_prompt, max_eval=8, device="cpu")
    assert set(out["tasks"]) == {"trec"} and seen == [False], seen
