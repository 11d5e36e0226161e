"""Tokenization for training and prediction: encode splits, pad batches, align word-level tags.

Token tasks label the FIRST sub-word of each word; later sub-words and special tokens get -100
(ignored by the loss and by the metrics). Padding is always on the right, and only at batch
time (``Collator``), so a batch is as long as its longest row.
"""
from __future__ import annotations

import contextlib
import copy
import json
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from datasets import Dataset, concatenate_datasets
from tqdm.auto import tqdm

from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks.spec import TaskSpec

IGNORE = -100
BAR_ROWS = 20_000  # a split this long gets a progress bar (on a terminal): a shorter one encodes in a second or so
BAR_PARTS = 20  # a bar's steps: the split is encoded in this many contiguous parts
_WORDS_TOKENIZERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Right padding and truncation; ``pad_token := eos_token`` when missing (GPT-2, Llama). In place; returns it."""
    tokenizer.padding_side = "right"
    tokenizer.truncation_side = "right"
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise Ptv2Error(
                f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has neither a pad nor an eos token; "
                "set tokenizer.pad_token to one of its existing tokens"
            )
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _has_unprefixed_byte_level(node: Any) -> bool:
    """True if a byte-level pre-tokenizer splits words without a leading space (GPT-2's default)."""
    if not isinstance(node, dict):
        return False
    if node.get("type") == "Sequence":
        subs = node.get("pretokenizers") or []
        if any(isinstance(s, dict) and s.get("type") == "ByteLevel" and s.get("add_prefix_space") for s in subs):
            return False
        return any(_has_unprefixed_byte_level(s) for s in subs)
    return node.get("type") == "ByteLevel" and not node.get("add_prefix_space")


def words_tokenizer(tokenizer: Any) -> Any:
    """The tokenizer to use on pre-split words.

    Byte-level BPE (GPT-2, Llama 3, Qwen) marks a word start with a leading space ("Ġ"); words
    passed one by one have none, so every word would be tokenized like the inside of a word and
    differ from running text. HF's fix is ``add_prefix_space=True`` at load time; here the same
    effect comes from a copy whose normalizer prepends a space to each word (each pre-split word
    is normalized on its own). Other tokenizers (WordPiece, Metaspace) are returned unchanged.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or getattr(tokenizer, "add_prefix_space", False):
        return tokenizer
    try:
        cached = _WORDS_TOKENIZERS.get(tokenizer)
    except TypeError:
        cached = None
    if cached is None:
        state = json.loads(backend.to_str())
        if not _has_unprefixed_byte_level(state.get("pre_tokenizer")):
            return tokenizer
        prepend = {"type": "Prepend", "prepend": " "}
        old = state.get("normalizer")
        state["normalizer"] = prepend if old is None else {"type": "Sequence", "normalizers": [old, prepend]}
        cached = copy.deepcopy(tokenizer)
        # type(backend) is tokenizers.Tokenizer: rebuilt without importing tokenizers (layer rule)
        cached._tokenizer = type(backend).from_str(json.dumps(state))
        try:
            _WORDS_TOKENIZERS[tokenizer] = cached
        except TypeError:
            pass
    cached.pad_token = tokenizer.pad_token
    cached.padding_side = tokenizer.padding_side
    cached.truncation_side = tokenizer.truncation_side
    return cached


def _tokenize_words(tokenizer: Any, words: list[list[str]], max_length: int, padding: bool, tensors: bool):
    """Tokenize pre-split words; a word that yields no sub-word (e.g. a lone zero-width space
    under WordPiece) is replaced by the unknown token, so its tag is not silently dropped."""
    tok = words_tokenizer(tokenizer)
    kw = dict(is_split_into_words=True, truncation=True, max_length=max_length)
    enc = tok(words, **kw)
    unk = tok.unk_token
    fixed = []
    for i, ws in enumerate(words):
        seen = {w for w in enc.word_ids(i) if w is not None}
        truncated = len(enc["input_ids"][i]) >= max_length
        limit = max(seen, default=-1) if truncated else len(ws)
        lost = [j for j in range(limit) if j not in seen]
        fixed.append([unk if j in lost else w for j, w in enumerate(ws)] if lost and unk else ws)
    if any(a is not b for a, b in zip(fixed, words)) or padding or tensors:
        enc = tok(fixed, padding=padding, return_tensors="pt" if tensors else None, **kw)
    return enc


def _align(tags: Sequence[int], word_ids: Sequence[int | None]) -> list[int]:
    labels, prev = [], None
    for w in word_ids:
        labels.append(IGNORE if w is None or w == prev else int(tags[w]))
        prev = w
    return labels


def encode(ds: Dataset, tokenizer: Any, spec: TaskSpec, max_length: int | None = None) -> Dataset:
    """Columns ``input_ids``, ``attention_mask``, ``labels`` (int, or per-token ints with -100), unpadded;
    token tasks also ``word_tags``, every word's tag id (the words cut off by truncation included),
    and ``label_words``, the word each labelled position tags (a word with no sub-word, e.g. an
    empty one under a tokenizer with no unknown token, has none: scoring tags it "O").

    Truncates to ``max_length`` (default ``spec.max_length``) tokens, special tokens included.
    """
    max_length = max_length or spec.max_length
    need = ("text", "label") if spec.type == "sequence" else ("tokens", "tags")
    missing = [c for c in need if c not in ds.column_names]
    if missing:
        raise Ptv2Error(f"encode: dataset lacks columns {missing} of a {spec.type} task (has {ds.column_names})")

    def sequence(batch: dict) -> dict:
        enc = tokenizer(batch["text"], truncation=True, max_length=max_length)
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": batch["label"]}

    def token(batch: dict) -> dict:
        enc = _tokenize_words(tokenizer, batch["tokens"], max_length, padding=False, tensors=False)
        labels = [_align(tags, enc.word_ids(i)) for i, tags in enumerate(batch["tags"])]
        label_words = [[w for w, y in zip(enc.word_ids(i), row) if y != IGNORE] for i, row in enumerate(labels)]
        # every word's tag, those cut off by max_length too: scoring counts a cut-off entity as missed
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels,
                "word_tags": [[int(t) for t in tags] for tags in batch["tags"]], "label_words": label_words}

    fn = sequence if spec.type == "sequence" else token
    with _without_datasets_bars() as quiet, \
            tqdm(total=len(ds), desc=f"encode {spec.name}", unit="row", leave=False,
                 disable=True if quiet or len(ds) < BAR_ROWS else None) as bar:  # None: on a terminal only
        if bar.disable:
            return _map(ds, fn)
        parts = []
        for i in range(BAR_PARTS):
            part = ds.shard(BAR_PARTS, i, contiguous=True)
            parts.append(_map(part, fn))
            bar.update(len(part))
        return concatenate_datasets(parts)


def _map(ds: Dataset, fn) -> Dataset:
    """``ds.map(fn)`` (batched, the old columns dropped), without hashing ``fn`` where nothing reads the hash.

    ``Dataset.map`` names its result by pickling ``fn`` with dill and hashing the bytes: the tokenizer in
    ``fn``'s closure, its whole vocabulary, every call (all-MiniLM-L6-v2: 0.11 CPU-seconds a split, most
    of encoding a 256-row one; a training run encodes three, a search trial too). The name keys
    datasets' cache files, which only a data set on disk has (``cache_files``): one loaded from disk keeps
    datasets' own name, so its cache is never served for another tokenizer or ``max_length``. One in memory
    (every task ptv2 loads: ``rows.make_dataset``) is never cached, and gets the random name datasets itself
    gives a transform it cannot hash. The rows are the same either way: the name is not in them."""
    from datasets.fingerprint import generate_random_fingerprint

    name = {} if ds.cache_files else {"new_fingerprint": generate_random_fingerprint()}
    return ds.map(fn, batched=True, remove_columns=ds.column_names, **name)


@contextlib.contextmanager
def _without_datasets_bars() -> Iterator[bool]:
    """datasets' own progress bars off for the duration (its map bar stays on screen, and in a log,
    when done: ptv2's bars go); yields whether they were off already (``--quiet``: no bar at all)."""
    from datasets import config
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was = are_progress_bars_disabled()
    if config.HF_DATASETS_DISABLE_PROGRESS_BARS is False:  # HF_DATASETS_DISABLE_PROGRESS_BARS=0: asked for, kept
        yield was
        return
    if not was:
        disable_progress_bars()
    try:
        yield was
    finally:
        if not was:
            enable_progress_bars()


class Collator:
    """Pads a list of encoded rows to the longest one (right padding).

    ``input_ids`` with the pad id, ``attention_mask`` with 0, token ``labels`` with -100;
    sequence ``labels`` become a 1-D tensor. Rows without ``labels`` (prediction) give none.
    """

    def __init__(self, tokenizer: Any, spec: TaskSpec) -> None:
        self.pad_id = int(prepare_tokenizer(tokenizer).pad_token_id)
        self.spec = spec

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        n = max(len(f["input_ids"]) for f in features)
        input_ids = torch.full((len(features), n), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(features), n), dtype=torch.long)
        for i, f in enumerate(features):
            ids = torch.as_tensor(f["input_ids"], dtype=torch.long)
            input_ids[i, : len(ids)] = ids
            mask = f.get("attention_mask")
            attention_mask[i, : len(ids)] = 1 if mask is None else torch.as_tensor(mask, dtype=torch.long)
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "labels" in features[0]:
            if self.spec.type == "sequence":
                batch["labels"] = torch.tensor([int(f["labels"]) for f in features], dtype=torch.long)
            else:
                labels = torch.full((len(features), n), IGNORE, dtype=torch.long)
                for i, f in enumerate(features):
                    lab = torch.as_tensor(f["labels"], dtype=torch.long)
                    labels[i, : len(lab)] = lab
                batch["labels"] = labels
        return batch


def encode_texts(tokenizer: Any, texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
    """A right-padded batch (``input_ids``, ``attention_mask``) of raw texts, for prediction."""
    enc = prepare_tokenizer(tokenizer)(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def encode_words(
    tokenizer: Any, words: list[list[str]], max_length: int
) -> tuple[dict[str, torch.Tensor], list[list[int | None]]]:
    """A right-padded batch of pre-split sentences, plus each row's ``word_ids`` (word index per
    token position; None for special and pad tokens) to map first-sub-word predictions back."""
    prepare_tokenizer(tokenizer)
    enc = _tokenize_words(tokenizer, [list(w) for w in words], max_length, padding=True, tensors=True)
    batch = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    return batch, [enc.word_ids(i) for i in range(len(words))]


def word_predictions(token_preds: Sequence[int], word_ids: Sequence[int | None], n_words: int) -> list[int | None]:
    """Per-word prediction: the one at each word's first sub-word; None for words cut by truncation."""
    out: list[int | None] = [None] * n_words
    prev = None
    for p, w in zip(token_preds, word_ids):
        if w is not None and w != prev and out[w] is None:
            out[w] = int(p)
        prev = w
    return out
