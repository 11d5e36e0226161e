"""A model folder (or hub repository) that ships its own Python code (``auto_map`` in its
config.json) is refused without running that code. transformers, asked with ``trust_remote_code``
left unset, does not refuse: it asks "Do you wish to run the custom code? [y/N]" with ``input()``,
which reads standard input even when it is no terminal, so a "y" line piped to ``ptv2 train`` or
``ptv2 predict --file -`` (an adapter names its base model: adapters are handed around) ran it."""
from __future__ import annotations

import io
import json
import sys

import pytest

from conftest import run_cli
from ptv2_core.backbone import load_config
from ptv2_core.errors import Ptv2Error


@pytest.fixture
def custom_code_model(tmp_path):
    """A model folder whose config needs its own code; the code, if run, writes ``ran``."""
    folder, marker = tmp_path / "custom", tmp_path / "ran"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "custombert", "auto_map": {"AutoConfig": "conf.CustomConfig", "AutoModel": "conf.CustomModel"},
        "hidden_size": 8, "num_attention_heads": 2, "num_hidden_layers": 1}))
    (folder / "conf.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
                                    "from transformers import PretrainedConfig\n"
                                    "class CustomConfig(PretrainedConfig):\n    model_type = 'custombert'\n")
    (folder / "tokenizer_config.json").write_text("{}")
    (folder / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    return folder, marker


def test_custom_code_is_refused_and_never_run_even_with_yes_on_stdin(custom_code_model, monkeypatch):
    folder, marker = custom_code_model
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n" * 4))
    with pytest.raises(Ptv2Error) as e:
        load_config(str(folder))
    assert not marker.exists(), "the model folder's own code ran"
    assert "custom code" in str(e.value) and "trust_remote_code=True" not in str(e.value), e.value
    assert sys.stdin.read() == "y\n" * 4  # nothing was asked


def test_the_command_says_so_in_one_error_line(custom_code_model, tmp_path, monkeypatch):
    folder, marker = custom_code_model
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    res = run_cli("train", "--task", "trec", "--model", str(folder), "--out", str(tmp_path / "out"))
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert not marker.exists() and not (tmp_path / "out").exists()
