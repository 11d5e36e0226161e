"""`ptv2 eval`'s own options checked before anything loads, through the real command line in this process."""
from __future__ import annotations

import pytest

from conftest import run_cli


@pytest.mark.parametrize("source", ["--adapter", "--pretrained"])
@pytest.mark.parametrize("value", ["0", "-3"])
def test_a_max_eval_below_one_is_refused_by_its_option_name_before_anything_loads(tmp_path, source, value):
    """`eval --max-eval 0` loaded the adapter and its base model, then failed deep in the data
    loading with `max_eval must be a positive integer or None` (Python's word, not the option's).
    The folder here does not exist: only a check made before any loading can name --max-eval."""
    res = run_cli("eval", source, str(tmp_path / "missing"), "--max-eval", value)
    assert res.returncode == 2, res.stderr
    assert res.stderr.splitlines() == [
        f"error: --max-eval must be a positive integer (or left out: all rows), got {value}"], res.stderr
    assert res.stdout == "" and list(tmp_path.iterdir()) == []


def test_an_adapter_whose_base_model_folder_is_gone_says_it_is_the_adapters_base(tmp_path, minilm_path):
    """An adapter records its base model folder by its absolute path. Once that folder was moved,
    `eval` and `predict --adapter` said only `model folder '/…/base' does not exist`: no word that
    it is the adapter's recorded base, though the user gave no model at all."""
    import shutil

    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    torch.manual_seed(0)
    base = tmp_path / "base"
    AutoModel.from_config(AutoConfig.for_model("bert", hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                               intermediate_size=37, vocab_size=tokenizer.vocab_size)).save_pretrained(base)
    tokenizer.save_pretrained(base)
    adapter = tmp_path / "adapter"
    res = run_cli("train", "--task", "trec", "--model", str(base), "--prompt-len", "2", "--epochs", "1",
                  "--max-train", "8", "--max-eval", "8", "--quiet", "--out", str(adapter))
    assert res.returncode == 0, res.stderr
    shutil.rmtree(base)
    for command in (["eval", "--adapter", str(adapter), "--max-eval", "8"], ["predict", "--adapter", str(adapter), "hi"]):
        res = run_cli(*command)
        assert res.returncode == 2 and res.stdout == "", res.stderr
        assert res.stderr.splitlines() == [
            f"error: adapter '{adapter}': its base model '{base}' cannot be loaded here: model folder '{base}' does not "
            "exist"], res.stderr
