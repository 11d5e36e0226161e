"""`ptv2 train --init` with a base model of another shape than the prompt's: refused from the two
configs, before the task's data or the model's weights load (it loaded both, then refused on the
weights' fingerprint), in the words the search's plan uses for the same check."""
from __future__ import annotations

from pathlib import Path

import pytest

from ptv2_core.errors import Ptv2Error


@pytest.fixture(scope="module")
def tiny_pretrained(tmp_path_factory, minilm_path) -> Path:
    """A pre-trained prompt of 4 positions on a tiny BERT (2 layers, 4 heads of 8)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from ptv2_core import multitask

    folder = tmp_path_factory.mktemp("tinybert")
    tok = BertTokenizerFast.from_pretrained(minilm_path)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=37, max_position_embeddings=256)).save_pretrained(folder)
    tok.save_pretrained(folder)
    pre = tmp_path_factory.mktemp("pretrained") / "pre"
    multitask.pretrain(multitask.PretrainConfig(tasks=("trec",), model=str(folder), max_prompt_len=4, lengths=(4,),
                                                epochs=1, max_train=16, max_eval=8, device="cpu", progress=False), pre)
    return pre


def test_the_core_check_names_both_shapes(tiny_pretrained):
    from ptv2_core.backbone import load_config
    from ptv2_core.multitask import read_pretrained_config
    from ptv2_core.multitask.init import check_init_base

    config = read_pretrained_config(tiny_pretrained)
    with pytest.raises(Ptv2Error) as e:
        check_init_base(config, tiny_pretrained, "minilm", load_config("minilm"))
    assert "(bert, 2 layers, 4 heads of 8); model 'minilm' is bert, 6 layers, 12 heads of 32" in str(e.value)
    assert "train with the model it was pre-trained on, or pre-train one on this model" in str(e.value)
    base = config["base_model"]["name"]
    check_init_base(config, tiny_pretrained, base, load_config(base))  # its own base: no complaint


def test_train_init_refuses_another_base_before_the_data_and_weights_load(tiny_pretrained, tmp_path):
    from conftest import run_cli

    res = run_cli("train", "--task", "trec", "--model", "minilm", "--prompt-len", "4", "--epochs", "1",
                  "--max-train", "8", "--init", str(tiny_pretrained), "--out", str(tmp_path / "a"), "--quiet")
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "was pre-trained on base model" in lines[0] and "model 'minilm' is bert, 6 layers, 12 heads of 32" in lines[0]
    assert list(tmp_path.iterdir()) == []
