"""Token tags inferred from a train file: a tag that is not BIO, or no entity tag at all, is refused
naming the file, the row and what to do (it named only the task: "task 't': token tags must be BIO")."""
from __future__ import annotations

import pytest

from ptv2_core.tasks import load_task
from task_files import jsonl_rows, refused, write_task

ROWS = [(["Ada", "Lovelace", "met", "Paris", str(i)], ["B-per", "I-per", "O", "B-loc", "O"]) for i in range(10)]


def task(tmp_path, rows, labels: str = ""):
    """A token task whose train file holds ``rows`` of (tokens, tags)."""
    data = jsonl_rows({"tokens": w, "tags": t} for w, t in rows)
    return write_task(tmp_path, data, "train.jsonl", "token", labels)


@pytest.mark.parametrize("tag, hint", [
    ("S-loc", ": BIOES or BILOU tags? write S- and U- as B-, E- and L- as I-"),
    ("LOC", ": a type without B- or I- (IO tags?): write an entity's first word's tag B-LOC, the others' I-LOC"),
    ("o", ": write B- and I- in capitals, and O: 'O'"),
    (3, ": tags are numbers (tag ids?): write each tag's name, \"B-per\", or give labels: in the task file in id order"),
])
def test_a_tag_that_is_not_bio_names_its_file_and_row(tmp_path, tag, hint):
    rows = ROWS[:3] + [(["Oslo", "x"], [tag, "O"])] + ROWS[3:]
    path = task(tmp_path, rows)
    assert refused(path) == (f"data file {tmp_path / 'train.jsonl'}: row 4 of column 'tags' holds the tag {str(tag)!r}, "
                             f"which is not BIO (\"O\", \"B-<type>\", \"I-<type>\"){hint}")


def test_integer_tags_with_labels_in_id_order_load_as_their_names(tmp_path):
    """Hugging Face data sets save ner_tags as ids: with labels: in id order, they name the tags."""
    names = ["O", "B-per", "I-per", "B-loc"]
    rows = [(w, [names.index(t) for t in ts]) for w, ts in ROWS]
    spec, dd = load_task(str(task(tmp_path, rows, "labels: [O, B-per, I-per, B-loc]\n")))
    got = {tuple(spec.labels[i] for i in ts) for s in dd for ts in dd[s]["tags"]}
    assert got == {tuple(ROWS[0][1])}


def test_a_train_file_without_any_entity_says_so(tmp_path):
    path = task(tmp_path, [(w, ["O"] * len(w)) for w, _ in ROWS])
    assert refused(path) == (f"data file {tmp_path / 'train.jsonl'}: column 'tags' holds only \"O\" in all 10 rows; a "
                             "token task needs at least one entity tag (\"B-<type>\")")
