"""The attention-hook prefix path (DeBERTa-v2, MPNet: their forwards take no cache).

The family-wide invariants run on these models in test_prefix_cache.py; here: an independent
check of the hook arithmetic against the cache path (a DeBERTa-v2 / MPNet with its relative
position terms switched off *is* BERT, so with BERT's weights and the same prefix it must give
BERT's hidden states), absolute positions, and the hook's scope.
"""
from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModel

from conftest import TINY, tiny_backbone
from ptv2_core.backbone import geometry
from ptv2_core.cache import prefix_injection, prefix_inputs, run_backbone, strategy
from ptv2_core.errors import Ptv2Error
from ptv2_core.heads import HeadConfig
from ptv2_core.model import PromptModel
from ptv2_core.prefix import PromptConfig
from test_prefix_cache import batch

EPS = 1e-7


def _bert():
    torch.manual_seed(0)
    cfg = AutoConfig.for_model("bert", **TINY["bert"], layer_norm_eps=EPS, hidden_dropout_prob=0.0,
                               attention_probs_dropout_prob=0.0)
    return AutoModel.from_config(cfg).eval()


def _as(model_type: str, bert, **overrides):
    """A ``model_type`` backbone carrying ``bert``'s weights, relative position terms off."""
    common = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, vocab_size=120,
                  layer_norm_eps=EPS, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    cfg = AutoConfig.for_model(model_type, **common, **overrides)
    model = AutoModel.from_config(cfg).eval()
    src = bert.state_dict()
    rename = {
        "deberta-v2": {"attention.self.query.": "attention.self.query_proj.",
                       "attention.self.key.": "attention.self.key_proj.",
                       "attention.self.value.": "attention.self.value_proj."},
        "mpnet": {"attention.self.query.": "attention.attn.q.", "attention.self.key.": "attention.attn.k.",
                  "attention.self.value.": "attention.attn.v.", "attention.output.dense.": "attention.attn.o.",
                  "attention.output.LayerNorm.": "attention.LayerNorm."},
    }[model_type]
    state = model.state_dict()
    for key, value in src.items():
        for old, new in rename.items():
            key = key.replace(old, new)
        if key in state and state[key].shape == value.shape:
            state[key] = value
    if model_type == "mpnet":
        # MPNet numbers real tokens from padding_idx + 1 = 2, BERT from 0; MPNet has no token types
        pos = src["embeddings.position_embeddings.weight"]
        state["embeddings.position_embeddings.weight"][2:] = pos[: state["embeddings.position_embeddings.weight"].shape[0] - 2]
        state["embeddings.word_embeddings.weight"] = src["embeddings.word_embeddings.weight"] + src["embeddings.token_type_embeddings.weight"][0]
        state["encoder.relative_attention_bias.weight"].zero_()  # no relative position bias
    model.load_state_dict(state)
    return model


@pytest.mark.parametrize("model_type,overrides", [
    ("deberta-v2", dict(relative_attention=False, position_biased_input=True, type_vocab_size=2, max_position_embeddings=512)),
    ("mpnet", dict(max_position_embeddings=80)),
])
@pytest.mark.parametrize("visible", [True, False])
def test_hook_path_equals_cache_path_on_the_same_weights(model_type, overrides, visible):
    bert = _bert()
    other = _as(model_type, bert, **overrides)
    assert strategy("bert") == "cache" and strategy(model_type) == "hook"
    ids, mask = batch()
    g = geometry(bert.config)
    torch.manual_seed(3)
    prefix = [(torch.randn(3, g.num_kv_heads, 4, g.head_dim), torch.randn(3, g.num_kv_heads, 4, g.head_dim))
              for _ in range(g.num_layers)]
    with torch.no_grad():
        want = run_backbone(bert, ids, mask, prefix, visible).last_hidden_state
        got = run_backbone(other, ids, mask, prefix, visible).last_hidden_state
        plain = bert(input_ids=ids, attention_mask=mask).last_hidden_state
    real = mask.bool()
    torch.testing.assert_close(got[real], want[real], atol=1e-5, rtol=1e-5)
    assert visible == bool((want[real] - plain[real]).abs().max() > 1e-3)  # the prefix mattered iff visible


def _prompt_model(model_type: str, **overrides):
    torch.manual_seed(0)
    cfg = AutoConfig.for_model(model_type, **{**TINY[model_type], **overrides})
    bb = AutoModel.from_config(cfg).eval()
    g = geometry(bb.config)
    return PromptModel(bb, PromptConfig(5, g.num_layers, g.num_kv_heads, g.head_dim), HeadConfig("sequence", 3, g.hidden_size)).eval()


@pytest.mark.parametrize("overrides", [
    dict(position_biased_input=True),  # absolute positions used too
    dict(share_att_key=True, norm_rel_ebd="layer_norm"),  # as DeBERTa-v3's configs
    dict(conv_kernel_size=3, conv_act="gelu"),  # as DeBERTa-v2-xlarge's (a convolution after layer 0)
])
def test_deberta_config_variants_masked_equals_plain_and_padding_is_neutral(overrides):
    model = _prompt_model("deberta-v2", **overrides)
    ids, mask = batch()
    with torch.no_grad():
        together = model(ids, mask).logits
        plain = model.backbone(input_ids=ids, attention_mask=mask).last_hidden_state
        masked = run_backbone(model.backbone, ids, mask, model.prefix(3), prefix_visible=False).last_hidden_state
        for i in range(3):
            n = int(mask[i].sum())
            torch.testing.assert_close(together[i], model(ids[i:i + 1, :n], mask[i:i + 1, :n]).logits[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(masked[mask.bool()], plain[mask.bool()], atol=1e-5, rtol=0)


@pytest.mark.parametrize("model_type", ["deberta-v2", "mpnet"])
def test_hooks_are_removed_after_the_call_and_after_an_error(model_type):
    model = _prompt_model(model_type)
    ids, mask = batch()
    attn = [m for m in model.backbone.modules() if type(m).__name__ in ("DisentangledSelfAttention", "MPNetSelfAttention")]
    assert len(attn) == 2
    with torch.no_grad():
        plain = model.backbone(input_ids=ids, attention_mask=mask).last_hidden_state
        model(ids, mask)
        assert all("forward" not in m.__dict__ for m in attn)
        with pytest.raises(RuntimeError, match="boom"):
            with prefix_injection(model.backbone, mask, model.prefix(3)) as kw:
                assert all("forward" in m.__dict__ for m in attn)
                model.backbone(input_ids=ids, **kw)
                raise RuntimeError("boom")
        assert all("forward" not in m.__dict__ for m in attn)
        torch.testing.assert_close(model.backbone(input_ids=ids, attention_mask=mask).last_hidden_state, plain)


@pytest.mark.parametrize("model_type", ["deberta-v2", "mpnet"])
def test_prefix_gets_gradient_after_the_hook_is_gone(model_type):
    model = _prompt_model(model_type).train()
    ids, mask = batch()
    loss = model(ids, mask, labels=torch.tensor([0, 1, 2])).loss  # the hook is already uninstalled here
    loss.backward()
    assert model.prefix.embedding.weight.grad.abs().sum() > 0


def test_hook_family_refuses_bare_keywords_and_gradient_checkpointing():
    model = _prompt_model("deberta-v2").train()
    ids, mask = batch()
    with pytest.raises(Ptv2Error, match="attention hooks"):
        prefix_inputs(model.backbone, mask, model.prefix(3))
    model.backbone.gradient_checkpointing_enable()
    with pytest.raises(Ptv2Error, match="gradient checkpointing"):
        model(ids, mask)


def test_prefix_head_shape_mismatch_is_named():
    bb = tiny_backbone("deberta-v2")
    ids, mask = batch()
    wrong = [(torch.zeros(3, 2, 4, 16), torch.zeros(3, 2, 4, 16))] * 2  # 2 heads × 16, the model has 4 × 8
    with pytest.raises(Ptv2Error, match="head"):
        run_backbone(bb, ids, mask, wrong)
