"""The four packaged corpora, loaded from their installed packages: labels, splits, seeds."""
from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from ptv2_core.tasks import PACKAGED_TASKS, PACKAGED_TYPES, TaskSpec, load_task, task_type
from ptv2_core.tasks.splits import text_key
from ptv2_core.tasks.subsample import allocate

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


def test_max_eval_keeps_every_label_in_its_share(loaded):
    """--max-eval drew a plain random subset: trec's ABBR (1.6 % of its rows) was missing from
    30 dev rows in most seeds, so the score left out a label and moved with the draw."""
    spec, full = loaded["trec"]
    for seed in range(4):  # the subset's draw depends on the seed (the split does too)
        _, full = (spec, full) if seed == 0 else load_task("trec", seed=seed)
        _, small = load_task("trec", seed=seed, max_train=30, max_eval=30)
        for split in ("train", "dev", "test"):
            got, share = Counter(small[split]["label"]), Counter(full[split]["label"])
            assert set(got) == set(range(len(spec.labels))), (seed, split, got)
            assert set(small[split]["text"]) <= set(full[split]["text"])
            for label, rows in share.items():  # in proportion, ABBR's 0.5 rows made 1
                assert abs(got[label] - 30 * rows / len(full[split])) < 1, (seed, split, label, got)
    _, few = load_task("trec", seed=0, max_eval=4)  # fewer rows than labels: 4 labels, one row each
    assert sorted(Counter(few["dev"]["label"]).values()) == [1, 1, 1, 1]


def test_max_eval_of_a_token_task_keeps_every_entity_type(loaded):
    """Token rows are drawn by their rarest entity type: all ten wnut16 types in 30 rows, and the
    rows without entities keep their share."""
    spec, full = loaded["wnut16"]
    _, small = load_task("wnut16", seed=0, max_eval=30)

    def types(ds):
        return {spec.labels[t][2:] for tags in ds["tags"] for t in tags if spec.labels[t] != "O"}

    for split in ("dev", "test"):
        assert len(small[split]) == 30 and types(small[split]) == types(full[split]) and len(types(full[split])) == 10
        with_entity = [sum(any(spec.labels[t] != "O" for t in tags) for tags in ds["tags"])
                       for ds in (small[split], full[split])]
        assert abs(with_entity[0] - 30 * with_entity[1] / len(full[split])) < 1


@pytest.mark.parametrize("counts, n, expected", [
    ([1, 99], 2, [1, 1]),  # a rare stratum kept, taken from the one above its share
    ([1, 1, 98], 2, [0, 0, 2]),  # fewer rows than strata: in proportion
    ([1, 1, 98], 3, [1, 1, 1]),
    ([50, 30, 20], 10, [5, 3, 2]),
    ([5, 5], 9, None),  # a tie: one of them gets the odd row
])
def test_allocate_is_proportional_with_a_row_per_stratum(counts, n, expected):
    got = allocate(counts, n, np.random.default_rng(0))
    assert sum(got) == n and all(0 <= g <= c for g, c in zip(got, counts))
    if expected is not None:
        assert got == expected
    for seed in range(20):  # any counts: n rows, none beyond a stratum's, one per stratum when n allows
        rng = np.random.default_rng(seed)
        cs = [int(c) for c in rng.integers(1, 40, size=rng.integers(2, 8))]
        m = int(rng.integers(1, sum(cs)))
        got = allocate(cs, m, rng)
        assert sum(got) == m and all(0 <= g <= c for g, c in zip(got, cs))
        assert m < len(cs) or min(got) >= 1


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
