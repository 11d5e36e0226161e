"""The four packaged corpora, loaded from their installed packages: labels, splits, seeds."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ptv2_core.tasks import PACKAGED_TASKS, PACKAGED_TYPES, TaskSpec, load_task, task_type
from ptv2_core.tasks.splits import text_key

EXPECTED = {  # name: (type, number of labels, metric, rows after de-duplication)
    "trec": ("sequence", 6, "accuracy", 5380),
    "rt": ("sequence", 2, "accuracy", 12751),
    "wnut16": ("token", 21, "span_f1", 2295),
    "bbc": ("sequence", 5, "accuracy", 2124),
}


@pytest.fixture(scope="module")
def loaded():
    return {name: load_task(name, seed=0) for name in PACKAGED_TASKS}


def _keys(ds, spec: TaskSpec) -> list:
    return [text_key(t) for t in ds["text"]] if spec.type == "sequence" else [tuple(t) for t in ds["tokens"]]


@pytest.mark.parametrize("name", PACKAGED_TASKS)
def test_packaged_task_shape(loaded, name):
    spec, dd = loaded[name]
    kind, n_labels, metric, rows = EXPECTED[name]
    assert (spec.name, spec.type, len(spec.labels), spec.metric) == (name, kind, n_labels, metric)
    assert PACKAGED_TYPES[name] == task_type(name) == spec.type  # known without reading the data
    assert list(dd) == ["train", "dev", "test"]
    sizes = {s: len(dd[s]) for s in dd}
    assert sum(sizes.values()) == rows
    assert all(n > 0 for n in sizes.values())
    assert 0.78 < sizes["train"] / rows < 0.82 and abs(sizes["dev"] - sizes["test"]) <= 3
    if kind == "sequence":
        assert dd["train"].column_names == ["text", "label"]
        row = dd["train"][0]
        assert isinstance(row["text"], str) and row["text"] and isinstance(row["label"], int)
        for split in dd:  # stratified: every class reaches every split
            assert set(dd[split]["label"]) == set(range(n_labels))
    else:
        assert dd["train"].column_names == ["tokens", "tags"]
        assert all(len(t) == len(g) for t, g in zip(dd["train"]["tokens"], dd["train"]["tags"]))


@pytest.mark.parametrize("name", PACKAGED_TASKS)
def test_splits_are_disjoint(loaded, name):
    spec, dd = loaded[name]
    train, dev, test = (set(_keys(dd[s], spec)) for s in ("train", "dev", "test"))
    assert len(train) == len(dd["train"])  # de-duplicated
    assert not train & test and not train & dev and not dev & test


def test_packaged_labels():
    spec, _ = load_task("trec", max_train=8, max_eval=8)
    assert spec.labels == ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
    spec, _ = load_task("rt", max_train=8, max_eval=8)
    assert spec.labels == ("rotten", "fresh")
    spec, _ = load_task("bbc", max_train=8, max_eval=8)
    assert spec.labels == ("business", "entertainment", "politics", "sports", "tech") and spec.max_length == 256
    spec, _ = load_task("wnut16", max_train=8, max_eval=8)
    types = {"company", "facility", "geo-loc", "movie", "musicartist", "other", "person", "product", "sportsteam", "tvshow"}
    assert spec.labels[0] == "O" and list(spec.labels[1:]) == sorted(spec.labels[1:])
    assert set(spec.labels[1:]) == {f"{p}-{t}" for p in "BI" for t in types}


def test_seed_determinism_and_difference(loaded):
    spec, a = loaded["trec"]
    _, b = load_task("trec", seed=0)
    _, c = load_task("trec", seed=1)
    for s in a:
        assert a[s]["text"] == b[s]["text"] and a[s]["label"] == b[s]["label"]
    assert set(a["test"]["text"]) != set(c["test"]["text"])
    assert len(a["train"]) == len(c["train"])  # same sizes, different members


def test_same_splits_in_another_process(loaded):
    """No dependence on hash order (PYTHONHASHSEED) or process state."""
    code = (
        "import json; from ptv2_core.tasks import load_task; _, d = load_task('wnut16', seed=0); "
        "print(json.dumps([d['test']['tokens'][:20], d['dev']['tags'][:5]]))"
    )
    env = {"HF_HUB_OFFLINE": "1", "PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    _, d = loaded["wnut16"]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [d["test"]["tokens"][:20], d["dev"]["tags"][:5]]


def test_max_train_and_max_eval(loaded):
    spec, full = loaded["rt"]
    _, small = load_task("rt", seed=0, max_train=100, max_eval=30)
    assert [len(small[s]) for s in ("train", "dev", "test")] == [100, 30, 30]
    assert set(small["train"]["text"]) <= set(full["train"]["text"])
    assert set(small["test"]["text"]) <= set(full["test"]["text"])
    _, again = load_task("rt", seed=0, max_train=100, max_eval=30)
    assert again["train"]["text"] == small["train"]["text"]
    _, other = load_task("rt", seed=3, max_train=100, max_eval=30)
    assert other["train"]["text"] != small["train"]["text"]
    _, big = load_task("trec", seed=0, max_train=10**6)
    assert len(big["train"]) == len(loaded["trec"][1]["train"])


def test_wnut_keeps_the_annotated_copy_of_a_duplicated_tweet(loaded):
    """The corpus holds some tweets twice, once without the entity tags; the tagged copy is kept."""
    spec, dd = loaded["wnut16"]
    tags_of = {}
    for s in dd:
        for toks, tags in zip(dd[s]["tokens"], dd[s]["tags"]):
            tags_of[tuple(toks)] = [spec.labels[t] for t in tags]
    row = next(k for k in tags_of if k[:2] == ("Pxleyes", "Top"))
    assert tags_of[row][0] == "B-company"


def test_bbc_reads_the_one_cp1252_file(loaded):
    _, dd = loaded["bbc"]
    texts = [t for s in dd for t in dd[s]["text"] if "Mutu" in t and "15.8m" in t]
    assert texts and all("\u00a315.8m" in t for t in texts) and not any("\ufffd" in t for t in texts)
