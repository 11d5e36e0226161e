"""Tags that are almost BIO say what to write: lower case (b-per, o), an underscore (B_PER), or a
bare type (PER: the IO scheme, no B-/I-); each was refused only as "not BIO"."""
from __future__ import annotations

import json

import pytest

from task_files import refused, write_task


@pytest.mark.parametrize("tags, hint", [
    (["b-per", "o"], ": write B- and I- in capitals, and O: 'B-per'"),
    (["B-per", "o"], ": write B- and I- in capitals, and O: 'O'"),
    (["B_PER", "O"], ": write a dash after B or I: 'B-PER'"),
    (["PER", "O"], ": a type without B- or I- (IO tags?): write an entity's first word's tag B-PER, the others' I-PER"),
])
def test_an_almost_bio_tag_says_what_to_write(tmp_path, tags, hint):
    rows = "".join(json.dumps({"tokens": ["Ada", f"x{i}"], "tags": tags}) + "\n" for i in range(12))
    said = refused(write_task(tmp_path, rows, name="train.jsonl", kind="token"))
    assert said.endswith('which is not BIO ("O", "B-<type>", "I-<type>")' + hint), said


@pytest.mark.parametrize("tags, hint", [
    (["B", "O"], ": B and I need a type after a dash: B-<type>, I-<type> (B-PER)"),
    (["B PER", "O"], ": write a dash after B or I: 'B-PER'"),
    (["B-PER", "o "], ": write B- and I- in capitals, and O: 'O'"),  # read stripped: 'o', not an IO type 'o '
])
def test_a_bare_b_or_a_spaced_tag_gets_no_wrong_hint(tmp_path, tags, hint):
    """'B' alone was told to write B-B, and 'B PER' B-B PER (both taken for IO types)."""
    rows = "".join(json.dumps({"tokens": ["Ada", f"x{i}"], "tags": tags}) + "\n" for i in range(12))
    said = refused(write_task(tmp_path, rows, name="train.jsonl", kind="token"))
    assert said.endswith('which is not BIO ("O", "B-<type>", "I-<type>")' + hint), said
