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
    dev = [{"sentence": f"v {i}", "intent": "a" if i % 3 else "b", "id": i} for i in range(6)]
    (tmp_path / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in dev))
    spec, dd = load_task(f"hub:{tmp_path}", seed=0)
    assert (spec.type, spec.text_column, spec.label_column, spec.labels) == ("sequence", "sentence", "intent", ("a", "b"))
    # its name is a folder name (the prepared data's): the path's separators made '-'
    assert spec.name == str(tmp_path).strip("/").replace("/", "-")
    assert len(dd["dev"]) == 6  # validation → dev; test carved from train
    assert len(dd["train"]) + len(dd["test"]) == 60 and len(dd["test"]) > 0


def test_hub_local_folder_token_with_classlabel_tags(tmp_path):
    names = ["O", "B-loc", "I-loc"]
    feats = Features({"tokens": List(Value("string")), "ner_tags": List(ClassLabel(names=names))})
    rows = {"tokens": [["New", "York", "is", "big"], ["so", "is", "Oslo"]] * 10, "ner_tags": [[1, 2, 0, 0], [0, 0, 1]] * 10}
    Dataset.from_dict(rows, features=feats).to_parquet(tmp_path / "train.parquet")
    rows["tokens"] = [[*words[:-1], f"{words[-1]}{i}"] for i, words in enumerate(rows["tokens"])]  # not train's
    Dataset.from_dict(rows, features=feats).to_parquet(tmp_path / "test.parquet")
    spec, dd = load_task(f"hub:{tmp_path}", seed=0)
    assert (spec.type, spec.labels, spec.metric, spec.label_column) == ("token", tuple(names), "span_f1", "ner_tags")
    assert dd["test"]["tags"][0] == [1, 2, 0, 0] and len(dd["test"]) == 20


def _write(folder, features: Features, **splits: dict) -> str:
    """A local data-set folder, one parquet file per split (features kept in its metadata)."""
    for split, rows in splits.items():
        Dataset.from_dict(rows, features=features).to_parquet(folder / f"{split}.parquet")
    return f"hub:{folder}"


def test_hub_token_task_takes_ner_tags_or_the_bio_tag_column(tmp_path):
    """conll2003 lists pos_tags and chunk_tags before ner_tags: the first *_tags column (pos_tags)
    was taken and refused as not BIO; with chunk_tags first, a chunking task was trained silently."""
    pos, chunk = ClassLabel(names=['"', "NN", "VB"]), ClassLabel(names=["O", "B-NP", "I-NP"])
    ner = ClassLabel(names=["O", "B-PER", "I-PER"])
    rows = {"tokens": [[f"Ada{i}", "wrote", "it"] for i in range(20)], "pos_tags": [[1, 2, 1]] * 20,
            "chunk_tags": [[1, 0, 1]] * 20, "ner_tags": [[1, 0, 0], [0, 0, 1]] * 10}
    (tmp_path / "conll").mkdir()
    feats = Features({"tokens": List(Value("string")), "pos_tags": List(pos), "chunk_tags": List(chunk),
                      "ner_tags": List(ner)})
    spec, dd = load_task(_write(tmp_path / "conll", feats, train=rows), seed=0)
    assert (spec.label_column, spec.labels) == ("ner_tags", ("O", "B-PER", "I-PER"))
    (tmp_path / "chunks").mkdir()  # no ner_tags: the BIO one of the others, not the first
    feats = Features({"tokens": List(Value("string")), "pos_tags": List(pos), "chunk_tags": List(chunk)})
    spec, _ = load_task(_write(tmp_path / "chunks", feats, train={k: rows[k] for k in feats}), seed=0)
    assert (spec.label_column, spec.labels) == ("chunk_tags", ("O", "B-NP", "I-NP"))
    (tmp_path / "pos").mkdir()
    feats = Features({"tokens": List(Value("string")), "pos_tags": List(pos)})
    with pytest.raises(Ptv2Error, match=r"none of the tag columns \['pos_tags'\] holds BIO tags"):
        load_task(_write(tmp_path / "pos", feats, train={k: rows[k] for k in feats}))


@pytest.mark.parametrize("columns", [("sentence1", "sentence2"), ("premise", "hypothesis"), ("question", "sentence")])
def test_hub_sentence_pairs_are_refused(tmp_path, columns):
    """GLUE mrpc (sentence1, sentence2, label, idx) trained on sentence1 alone, silently."""
    feats = Features({columns[0]: Value("string"), columns[1]: Value("string"),
                      "label": ClassLabel(names=["no", "yes"]), "idx": Value("int32")})
    rows = {columns[0]: [f"a {i}" for i in range(30)], columns[1]: [f"b {i}" for i in range(30)],
            "label": [i % 2 for i in range(30)], "idx": list(range(30))}
    with pytest.raises(Ptv2Error, match=f"several text columns per row \\({columns[0]}, {columns[1]}\\): a sentence-pair"):
        load_task(_write(tmp_path, feats, train=rows))


def test_hub_multi_label_null_text_and_an_unlabeled_test_split(tmp_path):
    """A list-valued label column was a TypeError, a test split without labels a TypeError (it was
    to be carved, as documented), a missing text an AttributeError while carving."""
    (tmp_path / "multi").mkdir()
    feats = Features({"text": Value("string"), "labels": List(ClassLabel(names=["a", "b", "c"])), "id": Value("string")})
    rows = {"text": [f"t {i}" for i in range(30)], "labels": [[i % 3] if i % 4 else [0, 2] for i in range(30)],
            "id": [str(i) for i in range(30)]}
    with pytest.raises(Ptv2Error, match="label column 'labels' holds a list of labels per row"):
        load_task(_write(tmp_path / "multi", feats, train=rows))
    feats = Features({"text": Value("string"), "label": ClassLabel(names=["a", "b"])})
    rows = {"text": [f"t {i}" for i in range(40)], "label": [i % 2 for i in range(40)]}
    (tmp_path / "unlabeled").mkdir()
    Dataset.from_dict({"text": [f"x {i}" for i in range(40)]}).to_parquet(tmp_path / "unlabeled" / "test.parquet")
    spec, dd = load_task(_write(tmp_path / "unlabeled", feats, train=rows), seed=0)
    assert len(dd["test"]) > 0 and set(dd["test"]["text"]) <= set(rows["text"])  # carved from train
    assert len(dd["train"]) + len(dd["dev"]) + len(dd["test"]) == 40
    (tmp_path / "null").mkdir()
    rows["text"][5] = None
    with pytest.raises(Ptv2Error, match="train split of hub dataset '.*': 1 row with an empty 'text' \\(first at row 6\\)"):
        load_task(_write(tmp_path / "null", feats, train=rows))


def test_hub_revision_pins_the_data_and_is_named_in_errors(tmp_path):
    """``hub:<name>[:<config>]@<revision>``: the revision goes to load_dataset (offline here, so it
    is seen in the error); an empty one is refused; a local folder with '@' in its path is whole."""
    from ptv2_core.tasks import task_name, task_ref_kind
    from ptv2_core.tasks.hub import parse_hub_ref

    assert parse_hub_ref("conll2003") == ("conll2003", None, None)
    assert parse_hub_ref("glue:sst2@3a1b2c") == ("glue", "sst2", "3a1b2c")
    assert parse_hub_ref("user/data@refs/convert/parquet") == ("user/data", None, "refs/convert/parquet")
    folder = tmp_path / "v@1"
    folder.mkdir()
    assert parse_hub_ref(str(folder)) == (str(folder), None, None)
    assert task_ref_kind("hub:user/data@v1.0") == "hub" and task_name("hub:user/data@v1.0") == "user-data"
    with pytest.raises(Ptv2Error, match="empty revision after '@'"):
        task_ref_kind("hub:user/data@")
    with pytest.raises(Ptv2Error) as e:
        load_task("hub:ptv2-no-such-dataset-0b1c@v9")
    assert "could not load hub dataset 'ptv2-no-such-dataset-0b1c' at revision 'v9'" in str(e.value)


def test_a_hub_bool_label_column_gives_the_labels_true_and_false(tmp_path):
    """str(True) made a hub data set's bool label column the labels 'True', 'False', where a JSON or
    Parquet task file's booleans are 'true', 'false'."""
    feats = Features({"text": Value("string"), "label": Value("bool")})
    ref = _write(tmp_path, feats, train={"text": [f"t {i}" for i in range(40)], "label": [i % 3 == 0 for i in range(40)]})
    spec, dd = load_task(ref, seed=0)
    assert (spec.label_column, spec.labels) == ("label", ("false", "true"))
    assert sorted({spec.labels[y] for s in dd for y in dd[s]["label"]}) == ["false", "true"]
