"""``hub:<name>``: offline it fails with a clear Ptv2Error; the column guessing and split mapping
run through the real ``datasets.load_dataset`` on a local data-set folder (which needs no network)."""
from __future__ import annotations

import json

import pytest
from datasets import ClassLabel, Dataset, Features, List, Value

from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks import load_task


def test_hub_offline_is_a_clear_error():
    with pytest.raises(Ptv2Error) as e:
        load_task("hub:ptv2-no-such-dataset-0b1c")
    msg = str(e.value)
    assert "could not load hub dataset 'ptv2-no-such-dataset-0b1c'" in msg and "HF_HUB_OFFLINE" in msg


def test_hub_needs_a_name():
    with pytest.raises(Ptv2Error, match="needs a data set name"):
        load_task("hub:")


def test_hub_local_folder_sequence_with_string_labels(tmp_path):
    rows = [{"sentence": f"s {i}", "intent": "a" if i % 3 else "b", "id": i} for i in range(60)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:6]))
    spec, dd = load_task(f"hub:{tmp_path}", seed=0)
    assert (spec.type, spec.text_column, spec.label_column, spec.labels) == ("sequence", "sentence", "intent", ("a", "b"))
    assert len(dd["dev"]) == 6  # validation → dev; test carved from train
    assert len(dd["train"]) + len(dd["test"]) == 60 and len(dd["test"]) > 0


def test_hub_local_folder_token_with_classlabel_tags(tmp_path):
    names = ["O", "B-loc", "I-loc"]
    feats = Features({"tokens": List(Value("string")), "ner_tags": List(ClassLabel(names=names))})
    rows = {"tokens": [["New", "York", "is", "big"], ["so", "is", "Oslo"]] * 10, "ner_tags": [[1, 2, 0, 0], [0, 0, 1]] * 10}
    for split in ("train", "test"):
        Dataset.from_dict(rows, features=feats).to_parquet(tmp_path / f"{split}.parquet")
    spec, dd = load_task(f"hub:{tmp_path}", seed=0)
    assert (spec.type, spec.labels, spec.metric, spec.label_column) == ("token", tuple(names), "span_f1", "ner_tags")
    assert dd["test"]["tags"][0] == [1, 2, 0, 0] and len(dd["test"]) == 20
