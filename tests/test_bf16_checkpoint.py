"""A base model stored in bf16 (as most Llama/Qwen/Mistral checkpoints are) trains, scores and
predicts on CPU: ptv2 runs the frozen base in fp32 (bf16 only under CUDA autocast), and an adapter
records the fingerprint of the weights as stored."""
from __future__ import annotations

import pytest
import torch

from ptv2_core.adapter import load_adapter, save_adapter
from ptv2_core.backbone import fingerprint, load_backbone
from ptv2_core.predict import predict
from ptv2_core.report import evaluate_adapter
from ptv2_core.train import TrainConfig, train


def _save(tmp_path_factory, minilm_path, model_type: str, dtype: torch.dtype) -> str:
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp(f"tiny-{model_type}-{str(dtype).split('.')[-1]}")
    config = AutoConfig.for_model(model_type, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  num_key_value_heads=2, intermediate_size=37, vocab_size=30522,
                                  max_position_embeddings=256, bos_token_id=101, eos_token_id=102)
    AutoModel.from_config(config).to(dtype).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def bf16_dir(request, tmp_path_factory, minilm_path) -> str:
    return _save(tmp_path_factory, minilm_path, request.param, torch.bfloat16)


def test_a_bf16_checkpoint_trains_scores_and_predicts_on_cpu(bf16_dir, tmp_path, one_torch_thread):
    result = train(TrainConfig(task="trec", model=bf16_dir, prompt_len=4, lr=3e-2, epochs=1, batch_size=16,
                               max_train=32, max_eval=16, progress=False, device="cpu"))
    assert {p.dtype for p in result.model.backbone.parameters()} == {torch.float32}
    assert 0.0 <= result.test["accuracy"] <= 1.0
    out = save_adapter(result.model, tmp_path / "adapter", result.spec, bf16_dir, result.base_fingerprint)
    loaded = load_adapter(out)  # loads the base by name, as eval and predict do
    metrics = evaluate_adapter(loaded, max_eval=16)
    assert metrics["test"]["accuracy"] == pytest.approx(result.test["accuracy"])
    preds = predict(loaded, ["What is the capital of France ?", "Who wrote Hamlet ?"])
    assert [p["label"] in result.spec.labels for p in preds] == [True, True]


def test_the_fingerprint_is_of_the_weights_as_stored(bf16_dir, tmp_path_factory, minilm_path):
    """bf16 weights are run in fp32 but fingerprinted as stored: an adapter trained on them before
    (under CUDA autocast, the base loaded in bf16) still matches; fp32 checkpoints hash as before."""
    from transformers import AutoModel

    backbone, _ = load_backbone(bf16_dir)
    as_stored = AutoModel.from_pretrained(bf16_dir, dtype=torch.bfloat16)
    assert backbone.dtype == torch.float32
    assert fingerprint(backbone) == fingerprint(as_stored)

    fp32_dir = _save(tmp_path_factory, minilm_path, "llama", torch.float32)
    backbone, _ = load_backbone(fp32_dir)
    assert fingerprint(backbone) == fingerprint(AutoModel.from_pretrained(fp32_dir, dtype=torch.float32))
