"""The training loop on a tiny random BERT with MiniLM's tokenizer and real TREC rows (fast)."""
from __future__ import annotations

import math

import pytest
import torch

from ptv2_core.errors import Ptv2Error
from ptv2_core.metrics import report_keys
from ptv2_core.train import TrainConfig, TrainingDiverged, train


def cfg(model: str, **kw) -> TrainConfig:
    base = dict(task="trec", model=model, prompt_len=4, lr=3e-2, epochs=2, batch_size=16, max_train=64,
                max_eval=32, progress=False, device="cpu")
    return TrainConfig(**(base | kw))


def test_same_seed_same_adapter_other_seed_other_adapter(tiny_model_dir):
    a = train(cfg(tiny_model_dir, seed=1)).model.trainable_state()
    b = train(cfg(tiny_model_dir, seed=1)).model.trainable_state()
    c = train(cfg(tiny_model_dir, seed=2)).model.trainable_state()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("bad, message", [
    ({"prompt_len": 0}, "prompt length"), ({"epochs": 0}, "epochs"), ({"lr": float("nan")}, "learning rate"),
    ({"batch_size": 0}, "batch size"), ({"eval_batch_size": -1}, "eval batch size"),
    ({"batch_size": 2.5}, "batch size"), ({"prompt_len": True}, "prompt length"),
    # these trained without a word: -1 turned every gradient around, 0 zeroed them
    ({"grad_clip": -1.0}, "grad_clip"), ({"grad_clip": 0.0}, "grad_clip"), ({"grad_clip": float("nan")}, "grad_clip"),
    ({"head_dropout": 1.0}, "head_dropout"), ({"prefix_dropout": -0.1}, "prefix_dropout"),
    ({"warmup_ratio": 1.5}, "warmup_ratio"), ({"weight_decay": -0.01}, "weight_decay"),
    ({"max_train": 0}, "max_train"), ({"max_eval": -3}, "max_eval"), ({"max_length": 0}, "max_length"),
    ({"reparam_hidden": 0}, "reparam hidden"), ({"bf16": "yes"}, "bf16")])
def test_bad_settings_are_refused_before_anything_loads(bad, message):
    # a model that does not exist: the refusal names the setting, so it came before any loading
    with pytest.raises(Ptv2Error, match=message):
        train(cfg("no/such-model", **bad))


def test_report_sees_every_epoch_and_can_stop_the_run(tiny_model_dir):
    seen: list[tuple[int, dict]] = []

    def report(epoch: int, metrics: dict) -> bool:
        seen.append((epoch, metrics))
        return epoch == 2  # a search pruning the trial after epoch 2

    res = train(cfg(tiny_model_dir, epochs=4), report=report)
    assert [e for e, _ in seen] == [1, 2] and res.stopped_early
    assert set(seen[0][1]) == {"epoch", *report_keys("sequence")}  # what a search checks its objective against
    assert len(res.history) == 2 and res.best_epoch in (1, 2)
    # the model keeps the best dev epoch's weights: its dev score is the best reported one
    assert res.dev["score"] == max(m["dev_score"] for _, m in seen)


def test_patience_stops_after_epochs_without_improvement(tiny_model_dir):
    # lr 0: the prompt never changes, so dev never improves after epoch 1
    res = train(cfg(tiny_model_dir, epochs=5, lr=1e-12, patience=2))
    assert res.stopped_early and len(res.history) == 3 and res.best_epoch == 1


def test_diverging_loss_raises(tiny_model_dir):
    with pytest.raises(TrainingDiverged, match="loss became"):
        train(cfg(tiny_model_dir, lr=1e30, epochs=3))


def test_metrics_are_finite_and_throughput_measured(tiny_model_dir):
    res = train(cfg(tiny_model_dir, epochs=1))
    assert all(math.isfinite(v) for v in res.dev.values()) and 0 <= res.test["accuracy"] <= 1
    assert res.train_examples_per_s > 0


def test_data_seed_holds_the_splits_while_seed_varies_training(tiny_model_dir, tmp_path):
    import json

    from conftest import run_cli
    from ptv2_core.adapter import load_adapter, split_seed_of
    from ptv2_core.report import evaluate_adapter

    assert TrainConfig(seed=3).split_seed == 3 and TrainConfig(seed=3, data_seed=5).split_seed == 5
    outs = {}
    for seed in (1, 2):  # through the command line: --data-seed, the adapter records it
        out = tmp_path / f"seed{seed}"
        args = ["train", "--model", tiny_model_dir, "--task", "trec", "--prompt-len", "4", "--lr", "3e-2",
                "--epochs", "1", "--max-train", "64", "--max-eval", "32", "--device", "cpu", "--quiet",
                "--seed", str(seed), "--data-seed", "5", "--out", str(out)]
        res = run_cli(*args)
        assert res.returncode == 0, res.stderr[-2000:]
        outs[seed] = (out, json.loads((out / "metrics.json").read_text()))
    a, b = (load_adapter(outs[s][0], device="cpu") for s in (1, 2))
    assert split_seed_of(a.config) == 5 == split_seed_of(b.config)
    # the training seed changed the run (initialisation, batch order) ...
    sa, sb = a.model.trainable_state(), b.model.trainable_state()
    assert any(not torch.equal(sa[k], sb[k]) for k in sa)
    # ... but both were scored on the same rows: split seed 5's, which eval picks by default
    for seed, loaded in ((1, a), (2, b)):
        recorded = outs[seed][1]["test"]["loss"]
        assert evaluate_adapter(loaded, seed=5, max_eval=32)["test"]["loss"] == pytest.approx(recorded, abs=1e-6)
        assert evaluate_adapter(loaded, seed=seed, max_eval=32)["test"]["loss"] != pytest.approx(recorded, abs=1e-6)
        res = run_cli("eval", "--adapter", str(outs[seed][0]), "--max-eval", "32", "--device", "cpu")
        assert res.returncode == 0, res.stderr[-2000:]
        assert json.loads(res.stdout)["test"]["loss"] == pytest.approx(recorded, abs=1e-6)


@pytest.mark.parametrize("task", ["trec", "wnut16"])
def test_scoring_and_prediction_batch_rows_of_similar_length_and_keep_the_rows_order(tiny_model_dir, task):
    """Rows are visited shortest first, so a batch pads little (rt trained 28 % faster end to end),
    and every result goes back to its own row: the same per-row predictions as one row at a time
    (no padding at all), which the paired bootstrap of a promotion relies on."""
    from ptv2_core.adapter import LoadedAdapter
    from ptv2_core.evaluate import predict_split
    from ptv2_core.predict import predict
    from ptv2_core.tasks import load_task
    from ptv2_core.tasks.encode import Collator, encode

    res = train(cfg(tiny_model_dir, task=task, epochs=1, max_eval=48))
    spec, data = load_task(task, seed=0, max_eval=48)
    dev = encode(data["dev"], res.tokenizer, spec)
    lengths = [len(ids) for ids in dev["input_ids"]]
    assert len(set(lengths)) > 5 and lengths != sorted(lengths)  # mixed lengths, not already in order

    class Recording(Collator):
        def __call__(self, features):
            padded.append(len(features) * max(len(f["input_ids"]) for f in features))
            return super().__call__(features)

    padded: list[int] = []
    preds, golds, _ = predict_split(res.model, dev, spec, Recording(res.tokenizer, spec), torch.device("cpu"), batch_size=8)
    shortest_first = sorted(lengths)
    batches = [shortest_first[i:i + 8] for i in range(0, len(lengths), 8)]
    assert sum(padded) == sum(len(b) * max(b) for b in batches)
    one_by_one = predict_split(res.model, dev, spec, Collator(res.tokenizer, spec), torch.device("cpu"), batch_size=1)
    assert (preds, golds) == one_by_one[:2]
    assert golds == ([int(y) for y in dev["labels"]] if spec.type == "sequence"
                     else [[y for y in row if y != -100] for row in dev["labels"]])

    texts = list(data["dev"]["text"]) if spec.type == "sequence" else [" ".join(t) for t in data["dev"]["tokens"]]
    loaded = LoadedAdapter(res.model, res.tokenizer, spec, {})
    batched, single = predict(loaded, texts, batch_size=8), predict(loaded, texts, batch_size=1)
    key = "label" if spec.type == "sequence" else "tags"
    assert [p[key] for p in batched] == [p[key] for p in single]
    if spec.type == "token":
        assert [p["tokens"] for p in batched] == [t.split() for t in texts]


def test_words_cut_off_by_the_max_length_are_scored_as_missed_not_dropped(tiny_model_dir):
    """Span F1 over the words a max length kept only counted an entity past the cut as neither
    found nor missed (a perfect tagger of the visible words scored 1.0); now every word is scored,
    the cut-off ones tagged "O" as ``predict`` tags them, and the golds are every word's tag."""
    from ptv2_core.evaluate import predict_split
    from ptv2_core.metrics import compute_metrics
    from ptv2_core.tasks import load_task
    from ptv2_core.tasks.encode import Collator, encode

    res = train(cfg(tiny_model_dir, task="wnut16", epochs=1, max_eval=48))
    spec, data = load_task("wnut16", seed=0, max_eval=48)
    dev = encode(data["dev"], res.tokenizer, spec, max_length=12)
    kept = [sum(y != -100 for y in row) for row in dev["labels"]]
    words = [len(t) for t in data["dev"]["tokens"]]
    assert sum(k < w for k, w in zip(kept, words)) > 10  # most rows lose words at 12 tokens
    preds, golds, _ = predict_split(res.model, dev, spec, Collator(res.tokenizer, spec), torch.device("cpu"))
    assert golds == [list(t) for t in data["dev"]["tags"]]
    assert [len(p) for p in preds] == words
    outside = spec.labels.index("O")
    assert all(p[k:] == [outside] * (w - k) for p, k, w in zip(preds, kept, words))
    # a perfect tagger of the kept words no longer scores 1.0 when entities lie past the cut
    perfect_visible = [g[:k] + [outside] * (len(g) - k) for g, k in zip(golds, kept)]
    cut_entities = sum(any(t != outside for t in g[k:]) for g, k in zip(golds, kept))
    assert cut_entities > 0 and compute_metrics(spec, perfect_visible, golds)["span_f1"] < 1.0


def test_length_grouped_batches_cover_every_row_once_and_pad_little(tiny_model_dir):
    """group_by_length: each epoch every training row exactly once, in random batches of rows of
    similar length; a seed gives the same batches, the next epoch others."""
    from transformers import AutoTokenizer

    from ptv2_core.batching import LengthGroupedBatches
    from ptv2_core.tasks import load_task
    from ptv2_core.tasks.encode import encode

    spec, data = load_task("rt", seed=0, max_train=700)
    lengths = [len(ids) for ids in encode(data["train"], AutoTokenizer.from_pretrained(tiny_model_dir), spec)["input_ids"]]
    sampler = LengthGroupedBatches(lengths, 32, torch.Generator().manual_seed(3), group=5)
    first, second = list(sampler), list(sampler)
    again = list(LengthGroupedBatches(lengths, 32, torch.Generator().manual_seed(3), group=5))
    for epoch in (first, second):
        assert sorted(i for b in epoch for i in b) == list(range(len(lengths))) and len(epoch) == len(sampler)
        assert all(1 <= len(b) <= 32 for b in epoch) and sum(len(b) < 32 for b in epoch) <= -(-700 // 160)
    assert first == again and first != second

    def padded(batches):
        return sum(len(b) * max(lengths[i] for i in b) for b in batches) / sum(lengths)

    shuffled = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(3)).tolist()
    at_random = padded([shuffled[i:i + 32] for i in range(0, len(shuffled), 32)])
    whole = list(LengthGroupedBatches(lengths, 32, torch.Generator().manual_seed(3), group=50))  # one group: all rows
    assert padded(whole) < 1.1 < padded(first) < 1.4 < 1.6 < at_random, (padded(whole), padded(first), at_random)


def test_group_by_length_trains_on_other_batches_and_is_checked(tiny_model_dir):
    grouped = train(cfg(tiny_model_dir, task="rt", group_by_length=True, epochs=1))
    plain = train(cfg(tiny_model_dir, task="rt", epochs=1))
    a, b = grouped.model.trainable_state(), plain.model.trainable_state()
    assert any(not torch.equal(a[k], b[k]) for k in a)  # the option took effect
    assert grouped.dev["score"] > 0 and len(grouped.history) == 1
    with pytest.raises(Ptv2Error, match="group_by_length must be true or false"):
        train(cfg("no/such-model", group_by_length="yes"))


def test_a_max_length_other_than_the_tasks_is_what_the_adapter_records_and_is_scored_with(tiny_model_dir, tmp_path):
    """`max_length` (a search space's fixed: setting) trained and scored dev with that truncation,
    but the adapter recorded the task's own: eval, the search's best-adapter scores and serving
    then truncated differently from the run that chose it."""
    from ptv2_core.adapter import load_adapter, save_adapter
    from ptv2_core.report import evaluate_adapter

    res = train(TrainConfig(task="trec", model=tiny_model_dir, prompt_len=4, lr=3e-2, epochs=1, max_train=32,
                            max_eval=32, max_length=8, device="cpu", progress=False))
    assert res.spec.max_length == 8
    out = save_adapter(res.model, tmp_path / "a", res.spec, tiny_model_dir)
    loaded = load_adapter(out, device="cpu")
    assert loaded.spec.max_length == 8
    assert evaluate_adapter(loaded, "trec", max_eval=32)["test"]["loss"] == pytest.approx(res.test["loss"], abs=1e-6)


@pytest.mark.parametrize("command", [
    ["train", "--task", "nope", "--prompt-len", "600", "--out", "OUT"],
    ["pretrain", "--tasks", "nope", "--max-prompt-len", "600", "--lengths", "4,600", "--no-track", "--out", "OUT"],
])
def test_a_prompt_longer_than_the_models_context_is_refused_before_the_task_and_weights_load(tmp_path, command):
    """MiniLM has 512 positions. `train --prompt-len 600` (and `pretrain --max-prompt-len 600`) was
    refused only after the task's data and the model's weights had loaded (minutes for a large
    model); from the model's config it is known at once. The task here does not exist: only a
    check made before the data loads can name the prompt length."""
    from conftest import run_cli

    res = run_cli(*[str(tmp_path / "out") if a == "OUT" else a for a in command], "--model", "minilm", "--quiet")
    assert res.returncode == 2, res.stderr
    assert res.stderr.splitlines() == [
        "error: prompt length 600 is too long for this model: at most its context size, 512"], res.stderr
    assert list(tmp_path.iterdir()) == []
