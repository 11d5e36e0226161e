"""Per-trial costs outside the model that were cut, and the proof that results stayed the same:
encoding no longer has datasets hash the tokenizer (dill) for a data set in memory, and a search's
trial no longer scores the test split it never reads (docs/benchmarks.md, "Per-trial costs")."""
from __future__ import annotations

import datasets
import datasets.arrow_dataset
import pytest
import torch
from transformers import AutoTokenizer

import ptv2_core.train as train_mod
from optuna_studies.objective import objective
from ptv2_core.tasks import load_task
from ptv2_core.tasks.encode import encode, prepare_tokenizer
from ptv2_core.train import TrainConfig, train


@pytest.fixture(scope="module")
def minilm(minilm_path):
    return prepare_tokenizer(AutoTokenizer.from_pretrained(minilm_path))


@pytest.fixture
def transform_hashes(monkeypatch):
    """How many times ``Dataset.map`` named a result by hashing its transform (datasets' own function,
    called through: nothing is replaced)."""
    calls = []
    real = datasets.arrow_dataset.update_fingerprint

    def counted(*a, **k):
        calls.append(a[1])
        return real(*a, **k)

    monkeypatch.setattr(datasets.arrow_dataset, "update_fingerprint", counted)
    return calls


def on_disk(ds: datasets.Dataset, folder) -> datasets.Dataset:
    ds.save_to_disk(str(folder))
    loaded = datasets.load_from_disk(str(folder))
    assert loaded.cache_files  # the kind of data set whose map results datasets caches
    return loaded


@pytest.mark.parametrize("task", ["trec", "wnut16"])
def test_encoding_in_memory_hashes_no_tokenizer_and_gives_the_rows_datasets_own_path_gives(
        task, minilm, transform_hashes, tmp_path):
    spec, data = load_task(task, seed=0, max_train=40, max_eval=40)
    fast = encode(data["train"], minilm, spec)
    assert transform_hashes == []  # was one dill pickle of the tokenizer per split: 0.11 CPU-s for MiniLM
    hashed = encode(on_disk(data["train"], tmp_path / "rows"), minilm, spec)
    assert transform_hashes  # a data set on disk keeps datasets' own hashed name (its cache key)
    assert fast.features == hashed.features and fast.column_names == hashed.column_names
    assert fast.to_list() == hashed.to_list()


def test_a_data_set_on_disk_is_never_served_another_max_lengths_cached_rows(minilm, tmp_path):
    spec, data = load_task("trec", seed=0, max_train=40, max_eval=40)
    rows = on_disk(data["train"], tmp_path / "rows")
    long = encode(rows, minilm, spec, max_length=32)
    short = encode(rows, minilm, spec, max_length=8)
    assert max(len(ids) for ids in short["input_ids"]) == 8 < max(len(ids) for ids in long["input_ids"])
    assert encode(rows, minilm, spec, max_length=32).to_list() == long.to_list()


def _config(model: str) -> dict:
    return dict(task="trec", model=model, prompt_len=4, lr=1e-2, epochs=2, max_train=48, max_eval=48,
                batch_size=16, device="cpu", progress=False, seed=3)


@pytest.fixture
def scored_splits(monkeypatch):
    """The number of rows of each split ``train`` scores (the real evaluate, called through)."""
    sizes = []
    real = train_mod.evaluate

    def counted(model, dataset, *a, **k):
        sizes.append(len(dataset))
        return real(model, dataset, *a, **k)

    monkeypatch.setattr(train_mod, "evaluate", counted)
    return sizes


def test_without_test_scoring_training_is_the_same_to_the_last_bit(tiny_model_dir, scored_splits):
    full = train(TrainConfig(**_config(tiny_model_dir)))
    assert len(scored_splits) == 3  # dev after each of 2 epochs, then test
    scored_splits.clear()
    dev_only = train(TrainConfig(**_config(tiny_model_dir)), score_test=False)
    assert len(scored_splits) == 2 and dev_only.test == {} and full.test
    assert dev_only.history == full.history and dev_only.dev == full.dev and dev_only.best_epoch == full.best_epoch
    a, b = full.model.trainable_state(), dev_only.model.trainable_state()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert dev_only.data_hashes == full.data_hashes  # the test rows are still recorded, by hash


def test_a_search_trial_scores_dev_each_epoch_and_never_test(tiny_model_dir, scored_splits):
    reports = []
    out = objective(_config(tiny_model_dir) | {"metric": "dev_score", "mode": "max", "init": None},
                    lambda e, m, a: reports.append((e, m["dev_score"], a is not None)))
    assert out["status"] == "completed" and [e for e, _, _ in reports] == [1, 2]
    assert len(scored_splits) == 2  # one dev pass per epoch; a test pass here was thrown away
    full = train(TrainConfig(**_config(tiny_model_dir)))  # the same trial, test scored: the same reports
    assert [r["dev_score"] for r in full.history] == [score for _, score, _ in reports]
