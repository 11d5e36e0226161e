"""A token task whose train file is CoNLL (a word and its tag per line: .conll, .txt, .tsv, .iob) is
told how to give it: ptv2 reads token tasks from JSONL, JSON or Parquet list columns."""
from __future__ import annotations

import pytest

from task_files import refused, write_task

CONLL = "Ada\tB-per\nwrote\tO\n\nParis\tB-loc\nrocks\tO\n"


@pytest.mark.parametrize("name", ["train.conll", "train.txt", "train.tsv", "train.iob2"])
def test_a_conll_file_for_a_token_task_is_told_to_be_jsonl(tmp_path, name):
    said = refused(write_task(tmp_path, CONLL, name=name, kind="token"))
    suffix = name.rsplit(".", 1)[1]
    assert said == (f"data file {tmp_path / name} (train): unsupported extension '.{suffix}'; use one of .csv, .jsonl, "
                    ".json, .parquet; a CoNLL file (a word and its tag per line, a blank line between sentences) is "
                    "not read: write it as JSON Lines, one sentence a line, {\"tokens\": [\"Ada\", \"wrote\"], "
                    "\"tags\": [\"B-per\", \"O\"]} (docs/tasks.md, \"Token tasks\")")


def test_a_sequence_tasks_tsv_gets_no_conll_hint(tmp_path):
    said = refused(write_task(tmp_path, "hi\tgreet\n", name="train.tsv"))
    assert said.endswith("unsupported extension '.tsv'; use one of .csv, .jsonl, .json, .parquet")
