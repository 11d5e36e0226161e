"""Metrics against hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest

from ptv2_core.errors import Ptv2Error
from ptv2_core.metrics import METRIC_NAMES, compute_metrics, majority_baseline, report_keys
from ptv2_core.tasks import TaskSpec

SEQ = TaskSpec("s", "sequence", ("a", "b", "c"), "accuracy")
SEQ_F1 = TaskSpec("s", "sequence", ("a", "b", "c"), "macro_f1")
NER = TaskSpec("n", "token", ("O", "B-per", "I-per", "B-loc", "I-loc"), "span_f1", "tokens", "tags")


def test_sequence_accuracy_and_macro_f1():
    # gold a a b c, pred a b b b: accuracy 2/4; F1 a = 2/3 (p 1, r .5), b = 1/2 (p 1/3, r 1), c = 0
    m = compute_metrics(SEQ, np.array([0, 1, 1, 1]), np.array([0, 0, 1, 2]))
    assert m == pytest.approx({"accuracy": 0.5, "macro_f1": (2 / 3 + 1 / 2 + 0) / 3, "score": 0.5})
    assert all(type(v) is float for v in m.values())
    assert compute_metrics(SEQ_F1, [0, 1, 1, 1], [0, 0, 1, 2])["score"] == pytest.approx(7 / 18)
    logits = np.eye(3)[[0, 1, 1, 1]]  # 2-D logits are arg-maxed
    assert compute_metrics(SEQ, logits, [0, 0, 1, 2])["accuracy"] == 0.5


def test_span_f1_one_of_two_entities_right():
    # gold: B-per I-per O B-loc ; pred gets the person, misses the location (tags it O)
    gold = [[-100, 1, 2, -100, 0, 3, -100]]
    pred = [[0, 1, 2, 4, 0, 0, 0]]  # positions under -100 are ignored, whatever they say
    m = compute_metrics(NER, pred, gold)
    assert m["precision"] == 1.0 and m["recall"] == 0.5
    assert m["span_f1"] == pytest.approx(2 / 3) and m["score"] == m["span_f1"]
    assert m["accuracy"] == pytest.approx(3 / 4)


def test_span_f1_needs_exact_boundaries_and_type():
    gold = [[1, 2, 0], [3, 0]]
    assert compute_metrics(NER, [[1, 0, 0], [3, 0]], gold)["span_f1"] == pytest.approx(0.5)  # short span: wrong
    assert compute_metrics(NER, [[3, 4, 0], [1, 0]], gold)["span_f1"] == 0.0  # wrong types
    assert compute_metrics(NER, gold, gold)["span_f1"] == 1.0


def test_span_f1_accepts_filtered_rows_and_padded_arrays():
    gold = np.array([[-100, 1, 2, 0, -100], [-100, 3, -100, -100, -100]])
    pred = np.array([[0, 1, 2, 0, 0], [0, 3, 0, 0, 0]])
    padded = compute_metrics(NER, pred, gold)
    filtered = compute_metrics(NER, [[1, 2, 0], [3]], [[1, 2, 0], [3]])
    assert padded == filtered and padded["span_f1"] == 1.0


def test_no_entities_anywhere_is_zero_not_a_crash():
    m = compute_metrics(NER, [[0, 0]], [[0, 0]])
    assert m["span_f1"] == 0.0 and m["accuracy"] == 1.0


def test_bad_metric_inputs():
    with pytest.raises(Ptv2Error, match="3 predictions but 2 labels"):
        compute_metrics(SEQ, [0, 1, 2], [0, 1])
    with pytest.raises(Ptv2Error, match="row 0 has 2 predictions for 3 labels"):
        compute_metrics(NER, [[0, 1]], [[0, 1, 0]])
    with pytest.raises(Ptv2Error, match="tag ids \\[9\\]"):
        compute_metrics(NER, [[9]], [[0]])


def test_majority_baseline():
    assert majority_baseline(SEQ, [0, 1, 1, 2]) == 0.5
    assert majority_baseline(SEQ, np.array([1, 1, 0]), eval_labels=[0, 0, 1, 2]) == 0.25
    assert majority_baseline(NER, [[0, 1, 2], [0, 0]]) == 0.0  # always "O" finds no entity


def test_predicted_tags_are_printed_as_valid_bio_with_the_spans_span_f1_scores():
    """`ptv2 predict` printed argmax tags such as `John/I-movie`; they are now repaired to BIO the way
    seqeval reads spans, so what is printed is what span F1 counted: same score on random tags."""
    import random

    from seqeval.metrics import f1_score

    from ptv2_core.predict import as_bio

    kinds = ["person", "loc", "movie"]
    labels = ["O"] + [f"{p}-{k}" for k in kinds for p in "BI"]
    rng = random.Random(0)
    gold = [[rng.choice(labels) for _ in range(rng.randrange(1, 15))] for _ in range(300)]
    raw = [[t if rng.random() < 0.6 else rng.choice(labels) for t in g] for g in gold]
    fixed = [as_bio(t) for t in raw]
    assert sum(a != b for a, b in zip(raw, fixed)) > 50  # the random tags do hold stray I- tags
    assert f1_score(gold, fixed) == pytest.approx(f1_score(gold, raw), abs=1e-12)
    for tags in fixed:
        for prev, tag in zip(["O"] + tags, tags):
            assert not tag.startswith("I-") or prev in (f"B-{tag[2:]}", tag)  # every I-x continues an x span
        assert as_bio(tags) == tags
    assert as_bio(["I-movie", "O", "I-loc", "I-loc", "B-person", "I-loc"]) == \
        ["B-movie", "O", "B-loc", "I-loc", "B-person", "B-loc"]


def test_report_keys_are_what_training_reports():
    """A search's objective is checked against report_keys before any trial runs: they must be the
    keys compute_metrics and the training loop give (dev_<metric>, dev_score, dev_loss, train_loss)."""
    seq = compute_metrics(SEQ, [0, 1], [0, 1])
    ner = compute_metrics(NER, [[0, 1, 2]], [[0, 1, 2]])
    assert set(seq) == {*METRIC_NAMES["sequence"], "score"} and set(ner) == {*METRIC_NAMES["token"], "score"}
    assert set(report_keys("sequence")) == {"train_loss", "dev_loss", *(f"dev_{k}" for k in seq)}
    assert set(report_keys("token")) == {"train_loss", "dev_loss", *(f"dev_{k}" for k in ner)}
    assert set(report_keys()) == set(report_keys("sequence")) | set(report_keys("token"))
