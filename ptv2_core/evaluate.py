"""Scoring a PromptModel on an encoded split."""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ptv2_core.batching import in_order, length_order
from ptv2_core.memory import batch_shape, fits
from ptv2_core.metrics import compute_metrics
from ptv2_core.model import PromptModel
from ptv2_core.tasks import TaskSpec
from ptv2_core.tasks.encode import Collator


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast on CUDA (frozen backbone, fp32 prompt and head); a no-op elsewhere."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16 and device.type == "cuda")


@torch.no_grad()
def predict_split(
    model: PromptModel,
    dataset,
    spec: TaskSpec,
    collator: Collator,
    device: torch.device,
    batch_size: int = 128,
    prompt_len: int | None = None,
    bf16: bool = True,
    batch_option: str = "--eval-batch-size",
    progress: str | None = None,
) -> tuple[list, list, float]:
    """Per-example ``(preds, golds, mean loss)`` on an encoded split: class ids per example, or
    tag-id lists, one per word, for token tasks: a word's tag is read at its first sub-word, and a
    word cut off by the max length is tagged "O" (as ``predict`` does), so an entity past the cut
    counts as missed rather than vanishing from the score. The loss is per row (sequence) or per
    labelled token (token tasks). ``batch_option``: the option that sets ``batch_size``, named if a
    batch does not fit in memory. ``progress``: a progress bar's label (rows scored, on a terminal
    only); None shows none. The model's train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        preds, golds, loss = _predict(model, dataset, spec, collator, device, batch_size, prompt_len, bf16,
                                      batch_option, progress)
    finally:
        model.train(was_training)
    columns = getattr(dataset, "column_names", ())
    if spec.type == "token" and "word_tags" in columns:
        label_words = dataset["label_words"] if "label_words" in columns else None
        preds, golds = _all_words(preds, dataset["word_tags"], spec.labels.index("O"), label_words)
    return preds, golds, loss


def _all_words(preds: list[list[int]], word_tags: list[list[int]], outside: int,
               label_words: list[list[int]] | None = None) -> tuple[list, list]:
    """Predictions over every word and the gold tags of every word: each prediction goes to the
    word its position tags (``label_words``; without them, the words in order), and a word with
    none (cut off by the max length, or with no sub-word) is ``outside``."""
    full = []
    for i, (p, words) in enumerate(zip(preds, word_tags)):
        at = label_words[i] if label_words is not None else range(len(p))
        if len(p) != len(at) or any(not 0 <= w < len(words) for w in at):
            raise ValueError(f"{len(p)} tagged positions for {len(words)} words")
        row = [outside] * len(words)
        for w, tag in zip(at, p):
            row[w] = tag
        full.append(row)
    return full, [list(w) for w in word_tags]


def _predict(model, dataset, spec, collator, device, batch_size, prompt_len, bf16, batch_option, progress):
    # batches of similar length pad little (measured: 1.4x faster on short uniform texts, 5x with a
    # tenth of long ones); results go back to the split's order, which scoring pairs per example
    order = length_order([len(ids) for ids in dataset["input_ids"]])
    loader = DataLoader(dataset, batch_size=batch_size, sampler=order, collate_fn=collator)
    preds: list = []
    golds: list = []
    loss_sum, n = 0.0, 0
    bar = tqdm(total=len(order), desc=progress, unit="row", leave=False, disable=None if progress else True)
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        with fits(device, f"scoring a batch of {batch_shape(batch)}", f"try a smaller {batch_option}"), \
                autocast(device, bf16):
            out = model(batch["input_ids"], batch["attention_mask"], batch["labels"], prompt_len=prompt_len)
        # out.loss is the batch's mean over rows (sequence) or labelled tokens (token tasks)
        weight = batch["input_ids"].shape[0] if spec.type == "sequence" else int((batch["labels"] != -100).sum())
        if weight:  # a batch with no labelled token has a NaN mean
            loss_sum += out.loss.item() * weight
        n += weight
        bar.update(batch["input_ids"].shape[0])
        guess = out.logits.argmax(-1).cpu()
        labels = batch["labels"].cpu()
        if spec.type == "sequence":
            preds.extend(guess.tolist())
            golds.extend(labels.tolist())
        else:  # keep only first sub-words (label != -100), one list per example
            for g, y in zip(guess, labels):
                keep = y != -100
                preds.append(g[keep].tolist())
                golds.append(y[keep].tolist())
    bar.close()
    return in_order(preds, order), in_order(golds, order), loss_sum / max(n, 1)


def evaluate(
    model: PromptModel,
    dataset,
    spec: TaskSpec,
    collator: Collator,
    device: torch.device,
    batch_size: int = 128,
    prompt_len: int | None = None,
    bf16: bool = True,
    batch_option: str = "--eval-batch-size",
    progress: str | None = None,
) -> dict[str, float]:
    """Metrics of ``spec`` (with ``score`` = the primary metric) plus mean ``loss``."""
    preds, golds, loss = predict_split(model, dataset, spec, collator, device, batch_size, prompt_len, bf16,
                                       batch_option, progress)
    metrics = compute_metrics(spec, preds, golds)
    metrics["loss"] = loss
    return metrics
