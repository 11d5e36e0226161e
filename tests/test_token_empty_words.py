"""Token-task scoring pairs every word with its own gold tag, also when a word yields no sub-word
(an empty word under a byte-level BPE with no unknown token, as Llama 3's and Qwen's): that word
is tagged "O" (as ``predict`` tags a word it cannot read), the words after it keep their own."""
from __future__ import annotations

import torch
from datasets import Dataset
from transformers import AutoConfig, AutoModel

from conftest import byte_level_bpe
from ptv2_core.backbone import geometry
from ptv2_core.evaluate import predict_split
from ptv2_core.heads import HeadConfig
from ptv2_core.model import PromptModel
from ptv2_core.prefix import PromptConfig
from ptv2_core.tasks import TaskSpec
from ptv2_core.tasks.encode import Collator, encode, encode_words, prepare_tokenizer, word_predictions

NER = TaskSpec("ner", "token", ("O", "B-loc", "I-loc"), "span_f1", "tokens", "tags", 32)


def _no_unk_bpe():
    return prepare_tokenizer(byte_level_bpe())  # no unknown token, as Llama 3's and Qwen's


def test_a_word_with_no_subword_is_scored_as_outside_and_the_next_words_keep_their_tags():
    tok = _no_unk_bpe()
    assert tok.unk_token is None
    torch.manual_seed(0)
    bb = AutoModel.from_config(AutoConfig.for_model("gpt2", n_embd=32, n_layer=2, n_head=4, vocab_size=400,
                                                    n_positions=64)).eval()
    g = geometry(bb.config)
    model = PromptModel(bb, PromptConfig(3, g.num_layers, g.num_kv_heads, g.head_dim),
                        HeadConfig("token", 3, g.hidden_size)).eval()

    rows = [["we", "visit", "", "New", "York", "is", "big", "the", "Empire"], ["New", "York", "is", "big"]]
    tags = [[0, 0, 1, 1, 2, 0, 0, 0, 1], [1, 2, 0, 0]]
    enc = encode(Dataset.from_dict({"tokens": rows, "tags": tags}), tok, NER)
    preds, golds, _ = predict_split(model, enc, NER, Collator(tok, NER), torch.device("cpu"))
    assert golds == tags

    # each word's tag read at its own first sub-word, straight from the model
    expected = []
    for words in rows:
        batch, word_ids = encode_words(tok, [words], NER.max_length)
        with torch.no_grad():
            logits = model(batch["input_ids"], batch["attention_mask"]).logits[0]
        per_word = word_predictions(logits.argmax(-1).tolist(), word_ids[0], len(words))
        expected.append([0 if p is None else p for p in per_word])
    assert expected[0][2] == 0  # the empty word has no sub-word: "O"
    assert len(set(expected[0])) > 1  # the model does not tag every word alike (the test could fail)
    assert preds == expected
