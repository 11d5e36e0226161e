"""The prefix path on every supported family, on tiny random models built from configs."""
from __future__ import annotations

import pytest
import torch

from conftest import FAMILIES, tiny_backbone
from ptv2_core.backbone import geometry
from ptv2_core.cache import run_backbone
from ptv2_core.errors import Ptv2Error
from ptv2_core.heads import HeadConfig
from ptv2_core.model import PromptModel
from ptv2_core.prefix import PrefixEncoder, PromptConfig


def make(model_type: str, task_type: str = "sequence", prompt_len: int = 5, reparam: bool = False, pooling=None):
    bb = tiny_backbone(model_type)
    g = geometry(bb.config)
    pooling = pooling or ("last" if g.family == "decoder" else "mean")
    prompt = PromptConfig(prompt_len, g.num_layers, g.num_kv_heads, g.head_dim, reparam=reparam, reparam_hidden=16)
    return PromptModel(bb, prompt, HeadConfig(task_type, 3, g.hidden_size, pooling)).eval()


def batch(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 120, (3, 9), generator=g)
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    ids[mask == 0] = 1  # pad id (any id; masked)
    return ids, mask


@pytest.mark.parametrize("model_type", FAMILIES)
def test_masked_prefix_equals_plain_backbone(model_type):
    model = make(model_type)
    ids, mask = batch()
    with torch.no_grad():
        plain = model.backbone(input_ids=ids, attention_mask=mask).last_hidden_state
        masked = run_backbone(model.backbone, ids, mask, model.prefix(ids.shape[0]), prefix_visible=False).last_hidden_state
        visible = run_backbone(model.backbone, ids, mask, model.prefix(3)).last_hidden_state
    real = mask.bool()
    torch.testing.assert_close(masked[real], plain[real], atol=1e-5, rtol=0)
    # and the prefix, when visible, does change the output (the test above is not vacuous)
    assert (visible[real] - plain[real]).abs().max() > 1e-3


@pytest.mark.parametrize("model_type", FAMILIES)
@pytest.mark.parametrize("task_type", ["sequence", "token"])
@pytest.mark.parametrize("prompt_len", [5, 100])  # 100: longer than every tiny model's positions (64 or 80)
def test_padded_batch_matches_each_example_alone(model_type, task_type, prompt_len):
    model = make(model_type, task_type, prompt_len=prompt_len)
    ids, mask = batch()
    with torch.no_grad():
        together = model(ids, mask).logits
        for i in range(ids.shape[0]):
            n = int(mask[i].sum())
            alone = model(ids[i:i + 1, :n], mask[i:i + 1, :n]).logits
            got = together[i] if task_type == "sequence" else together[i, :n]
            torch.testing.assert_close(got, alone[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("model_type", FAMILIES)
def test_gradients_reach_only_prefix_and_head(model_type):
    model = make(model_type).train()
    ids, mask = batch()
    out = model(ids, mask, labels=torch.tensor([0, 1, 2]))
    out.loss.backward()
    for name, p in model.named_parameters():
        if name.startswith(("prefix.", "head.")):
            assert p.requires_grad and p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert not p.requires_grad and p.grad is None, name
    trainable, total = model.parameter_counts()
    assert trainable == sum(p.numel() for p in model.prefix.parameters()) + sum(p.numel() for p in model.head.parameters())
    assert 0 < trainable < total


@pytest.mark.parametrize("model_type", ["llama", "qwen2"])
def test_grouped_query_prefix_uses_key_value_heads(model_type):
    model = make(model_type, prompt_len=4)
    k, v = model.prefix(2)[0]
    assert k.shape == v.shape == (2, 2, 4, 8)  # [batch, kv heads (not 4 query heads), prompt, head dim]


@pytest.mark.parametrize("model_type", ["bert", "gpt2", "llama"])
def test_folded_mlp_prefix_gives_identical_logits(model_type):
    model = make(model_type, reparam=True)
    ids, mask = batch()
    with torch.no_grad():
        before = model(ids, mask).logits
        model.prefix = model.prefix.fold()
        after = model(ids, mask).logits
    assert not model.prefix.config.reparam and model.prefix.mlp is None
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)


def test_shorter_prompt_uses_leading_positions():
    enc = PrefixEncoder(PromptConfig(8, 2, 2, 4, dropout=0.0))
    full, short = enc(1), enc(1, length=3)
    assert short[0][0].shape[2] == 3
    torch.testing.assert_close(short[1][1], full[1][1][:, :, :3])
    with pytest.raises(ValueError):
        enc(1, length=9)


def test_gradient_checkpointing_is_refused_loudly():
    model = make("bert").train()
    model.backbone.gradient_checkpointing_enable()
    ids, mask = batch()
    with pytest.raises(Ptv2Error, match="gradient checkpointing"):
        model(ids, mask)


def test_fresh_cache_each_forward():
    model = make("gpt2")
    ids, mask = batch()
    with torch.no_grad():
        a = model(ids, mask).logits
        b = model(ids, mask).logits  # a reused cache would have grown and changed this
    torch.testing.assert_close(a, b)


def test_unsupported_model_type_named():
    from transformers import AutoConfig

    with pytest.raises(Ptv2Error, match="unsupported model type 't5'"):
        geometry(AutoConfig.for_model("t5"))


def test_prefix_dropout_draws_a_mask_per_example():
    # one mask for the batch dropped the same entries for every example (the original's get_prompt
    # drops out after the prefix is copied per example)
    torch.manual_seed(0)
    enc = PrefixEncoder(PromptConfig(6, 2, 2, 4, dropout=0.5)).train()
    keys = enc(4)[0][0]  # [B, H, L, D]
    zeros = keys == 0
    assert zeros.any() and not all(torch.equal(zeros[0], zeros[b]) for b in range(1, 4))
    enc.eval()
    keys = enc(4)[0][0]
    assert all(torch.equal(keys[0], keys[b]) for b in range(1, 4)) and not (keys == 0).any()


def test_prompt_length_does_not_spend_the_position_budget():
    from transformers import AutoConfig

    from ptv2_core.build import check_prompt_len

    bert = AutoConfig.for_model("bert", max_position_embeddings=512)
    check_prompt_len(64, bert, 512)  # the text keeps positions 0..511: the prefix takes none
    with pytest.raises(Ptv2Error, match="prompt length 513 is too long for this model: at most its context size, 512"):
        check_prompt_len(513, bert, 16)
    with pytest.raises(Ptv2Error, match="max length 600 is too long for this model: it has 512 positions"):
        check_prompt_len(4, bert, 600)
    # fairseq-style positions start at padding_idx + 1: RoBERTa's 514 positions hold 512 tokens
    roberta = AutoConfig.for_model("roberta", max_position_embeddings=514, pad_token_id=1)
    check_prompt_len(4, roberta, 512)
    with pytest.raises(Ptv2Error, match="max length 513 is too long for this model: it has 512 positions"):
        check_prompt_len(4, roberta, 513)
    # a sliding window sees the last keys only: a prefix in front of a longer span is invisible
    mistral = AutoConfig.for_model("mistral", sliding_window=128)
    check_prompt_len(64, mistral, 64)
    with pytest.raises(Ptv2Error, match="attends to the last 128 keys only.*a prompt of at most 64"):
        check_prompt_len(65, mistral, 64)
