"""Predictions for raw text with a loaded adapter: a label and score per text, or tags per word."""
from __future__ import annotations

from collections.abc import Callable

import torch

from ptv2_core.adapter import LoadedAdapter
from ptv2_core.batching import in_order, length_order
from ptv2_core.evaluate import autocast
from ptv2_core.memory import batch_shape, fits
from ptv2_core.precision import scoring_bf16
from ptv2_core.tasks.encode import encode_texts, encode_words


@torch.no_grad()
def predict(adapter: LoadedAdapter, texts: list[str], batch_size: int = 64,
            on_batch: Callable[[int], object] | None = None, bf16: bool | None = None) -> list[dict]:
    """Sequence tasks: ``{"label", "score"}`` per text (score = softmax probability of the label).
    Token tasks: ``{"tokens", "tags", "scores"}`` per text, split on whitespace, one tag per word,
    as valid BIO (``as_bio``); a score is the probability of the word's argmax tag.
    ``on_batch(n)`` is called after each batch of ``n`` texts (a progress bar's ``update``).
    On CUDA the backbone runs under bf16 autocast when ``bf16`` says so; None (the default): as the
    adapter was trained (``ptv2_core.precision``)."""
    model, spec, tok = adapter.model, adapter.spec, adapter.tokenizer
    bf16 = scoring_bf16(adapter.config, bf16)
    model.eval()
    device = next(model.parameters()).device
    out: list[dict] = []
    # shortest first, so that a batch pads little; the rows go back to the texts' order at the end
    order = length_order([len(t.split()) if spec.type == "token" else len(t) for t in texts])
    texts = [texts[i] for i in order]
    for start in range(0, len(texts), batch_size):
        chunk = texts[start:start + batch_size]
        if spec.type == "sequence":
            batch = encode_texts(tok, chunk, spec.max_length)
            probs = _probs(model, batch, device, bf16)
            score, idx = probs.max(-1)
            out += [{"label": spec.labels[i], "score": float(s)} for i, s in zip(idx.tolist(), score.tolist())]
        else:
            words = [t.split() for t in chunk]
            batch, word_ids = encode_words(tok, words, spec.max_length)
            probs = _probs(model, batch, device, bf16)
            for b, (ws, wid) in enumerate(zip(words, word_ids)):
                # words cut off by max_length stay "O" with score 0.0 (not scored)
                tags, scores, seen = ["O"] * len(ws), [0.0] * len(ws), set()
                for pos, w in enumerate(wid):
                    if w is None or w in seen:  # special tokens and later sub-words carry no tag
                        continue
                    seen.add(w)
                    s, i = probs[b, pos].max(-1)
                    tags[w], scores[w] = spec.labels[int(i)], float(s)
                out.append({"tokens": ws, "tags": as_bio(tags), "scores": scores})
        if on_batch is not None:
            on_batch(len(chunk))
    return in_order(out, order)


def _probs(model, batch: dict, device: torch.device, bf16: bool) -> torch.Tensor:
    """Label probabilities of one encoded batch (fp32), or an ``OutOfMemory`` naming its shape."""
    with fits(device, f"labelling a batch of {batch_shape(batch)}", "try a smaller --batch-size"), \
            autocast(device, bf16):
        logits = model(batch["input_ids"].to(device), batch["attention_mask"].to(device)).logits
    return logits.float().softmax(-1)


def as_bio(tags: list[str]) -> list[str]:
    """Per-word argmax tags as valid BIO, spans read the way seqeval reads them for span F1: a span
    starting with ``I-x`` (after ``O`` or another type) begins with ``B-x``. So the printed spans are
    the ones the task's metric scores (argmax alone printed e.g. ``John/I-movie``)."""
    from seqeval.metrics.sequence_labeling import get_entities

    out = ["O"] * len(tags)
    for kind, start, end in get_entities(list(tags)):
        out[start] = f"B-{kind}"
        out[start + 1:end + 1] = [f"I-{kind}"] * (end - start)
    return out
