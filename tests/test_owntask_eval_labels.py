"""Scoring an adapter on a task whose labels changed (train gained a label, or the list's order
changed) says how they differ; it said only "task 'q' has other labels than the adapter's task 'q'"."""
from __future__ import annotations

import pytest

from ptv2_core.errors import Ptv2Error
from ptv2_core.report import check_adapter_labels
from ptv2_core.tasks.spec import TaskSpec


def spec(labels, kind="sequence") -> TaskSpec:
    return TaskSpec(name="q", type=kind, labels=tuple(labels), metric="accuracy" if kind == "sequence" else "span_f1")


def said(task, adapter) -> str:
    with pytest.raises(Ptv2Error) as e:
        check_adapter_labels(task, adapter)
    return str(e.value)


def test_a_label_train_gained_and_one_it_lost_are_named():
    assert said(spec(["definition", "person", "place"]), spec(["person", "place", "quantity"])) == (
        "task 'q' has other labels than the adapter's task 'q': labels the adapter was not trained on: 'definition'; "
        "adapter labels the task lacks: 'quantity'; the adapter predicts ['person', 'place', 'quantity']")


def test_the_same_labels_in_another_order_say_which_order_to_give():
    assert said(spec(["b", "a"]), spec(["a", "b"])) == (
        "task 'q' lists the adapter's labels in another order: ['b', 'a'], the adapter's ['a', 'b'] (a label's id is "
        "its place in the list): give labels: ['a', 'b'] in the task file")


def test_another_task_type_is_named_and_the_same_labels_pass():
    assert said(spec(["O", "B-x", "I-x"], "token"), spec(["O", "B-x", "I-x"])) == (
        "task 'q' is a token task but the adapter's task 'q' is a sequence task")
    check_adapter_labels(spec(["a", "b"]), spec(["a", "b"]))
