"""What loading a base model says on stderr: transformers 5.x logs a multi-line LOAD REPORT for any
weight a checkpoint lacks or holds besides the model's. A pooler saved without (sentence-transformers
checkpoints) is the usual case and no news to a prompt on cls or mean pooling: nothing is said. Other
missing weights get one ptv2 line; a checkpoint whose shapes are not its config's is a ptv2 error.

The loads run in a fresh interpreter whose stderr is read: transformers' log handler writes to the
stream that was sys.stderr when transformers was imported, which pytest's capfd does not see."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch



def _save(minilm_path, folder: Path, *, pooler: bool, cls=None, drop: str | None = None,
          extra: str | None = None, config_edit: dict | None = None) -> str:
    """A tiny BERT folder; ``drop``: leave out the weights whose key holds it; ``extra``: a key the
    model has no parameter for; ``config_edit``: config.json fields changed after saving."""
    from safetensors.torch import load_file, save_file
    from transformers import BertConfig, BertModel, BertTokenizerFast

    tok = BertTokenizerFast.from_pretrained(minilm_path)
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=37)
    torch.manual_seed(0)
    model = cls(config) if cls is not None else BertModel(config, add_pooling_layer=pooler)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    if drop or extra:
        weights = load_file(folder / "model.safetensors")
        weights = {k: v for k, v in weights.items() if not (drop and drop in k)}
        if extra:
            weights[extra] = torch.zeros(3)
        save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    if config_edit:
        (folder / "config.json").write_text(json.dumps({**json.loads((folder / "config.json").read_text()),
                                                        **config_edit}))
    return str(folder)


@pytest.fixture(scope="module")
def berts(tmp_path_factory, minilm_path) -> dict[str, str]:
    from transformers import BertForSequenceClassification

    root = tmp_path_factory.mktemp("load_report")
    return {
        "bare": _save(minilm_path, root / "bare", pooler=False),  # add_pooling_layer=False: no pooler.*
        "full": _save(minilm_path, root / "full", pooler=True),
        "classifier": _save(minilm_path, root / "classifier", pooler=True, cls=BertForSequenceClassification),
        "holes": _save(minilm_path, root / "holes", pooler=False, drop="attention.self.query"),
        "stray": _save(minilm_path, root / "stray", pooler=True, extra="encoder.layer.0.attention.self.stray"),
        "mismatch": _save(minilm_path, root / "mismatch", pooler=True, config_edit={"intermediate_size": 40}),
    }


# Each case's stderr follows a line '=== NAME' (what the loads print is read between the markers).
_SCRIPT = r"""
import logging, sys
from transformers import AutoModel
from ptv2_core.backbone import load_backbone
from ptv2_core.errors import Ptv2Error
from ptv2_core.load_report import load_report_held

def mark(name):
    print(f"=== {name}", file=sys.stderr, flush=True)

for name, folder in zip(sys.argv[1::2], sys.argv[2::2]):
    mark(name)
    try:
        model, _ = load_backbone(folder)
        print(f"pooler keys: {sorted(model._ptv2_untrained_pooler_keys)}", file=sys.stderr, flush=True)
    except Ptv2Error as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
mark("not ptv2's load")
AutoModel.from_pretrained(dict(zip(sys.argv[1::2], sys.argv[2::2]))["bare"])
mark("another record of the same logger")
with load_report_held():
    logging.getLogger("transformers.modeling_utils").warning("some other warning")
mark("a load that fails after its report")
try:
    with load_report_held():
        logging.getLogger("transformers.modeling_utils").warning("BertModel LOAD REPORT from: x\ntable")
        raise RuntimeError("For details look at the above report!")
except RuntimeError as e:
    print(f"raised: {e}", file=sys.stderr, flush=True)
"""


@pytest.fixture(scope="module")
def said(berts) -> dict[str, list[str]]:
    """The stderr lines of each load (and check), by case."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1"}
    args = [x for name, folder in berts.items() for x in (name, folder)]
    res = subprocess.run([sys.executable, "-c", _SCRIPT, *args], capture_output=True, text=True, env=env,
                         cwd=root, timeout=300)
    assert res.returncode == 0, res.stderr
    out: dict[str, list[str]] = {}
    for line in res.stderr.splitlines():
        if line.startswith("=== "):
            out[line[4:]] = current = []
        else:
            current.append(line)
    return out


@pytest.mark.parametrize("which", ["bare", "full", "classifier"])
def test_a_checkpoint_lacking_only_its_pooler_or_holding_a_task_head_loads_silently(said, which):
    """The pooler (random, frozen, refused for pooling 'pooler') and a task head's weights (a
    classifier the base model has no place for) are nothing a user must act on."""
    pooler = "['pooler.dense.bias', 'pooler.dense.weight']" if which == "bare" else "[]"
    assert said[which] == [f"pooler keys: {pooler}"]


def test_other_missing_weights_are_named_in_one_ptv2_line(said, berts):
    assert said["holes"] == [
        f"warning: model '{berts['holes']}' lacks 4 weights, which transformers filled at random (frozen under the "
        "prompt, they stay random): encoder.layer.0.attention.self.query.bias, "
        "encoder.layer.0.attention.self.query.weight, encoder.layer.1.attention.self.query.bias and 1 more",
        "pooler keys: ['pooler.dense.bias', 'pooler.dense.weight']"]


def test_a_weight_inside_the_base_that_it_has_no_place_for_is_named(said, berts):
    assert said["stray"] == [f"warning: model '{berts['stray']}' holds 1 weight its architecture has no place for, "
                             "left unused: encoder.layer.0.attention.self.stray", "pooler keys: []"]


def test_weights_whose_shapes_are_not_the_configs_are_a_ptv2_error(said, berts):
    """transformers raised a RuntimeError 'look at the above report' after its table (a traceback
    from ptv2): one error names the weights and both shapes."""
    assert said["mismatch"] == [
        f"error: cannot load model '{berts['mismatch']}': 6 of its weights do not have the shapes its config gives "
        "them (a config.json that is not the checkpoint's own): encoder.layer.0.intermediate.dense.bias (checkpoint "
        "[37], config [40]), encoder.layer.0.intermediate.dense.weight (checkpoint [37, 32], config [40, 32]), "
        "encoder.layer.0.output.dense.weight (checkpoint [32, 37], config [32, 40]) and 3 more"]


def test_the_report_is_held_only_during_ptv2s_own_load(said):
    """A load that is not ptv2's still reports as transformers does, and any other record of the
    same logger passes while ptv2 holds the report back."""
    assert any("BertModel LOAD REPORT" in line for line in said["not ptv2's load"]), said["not ptv2's load"]
    assert any("pooler.dense.weight" in line and "MISSING" in line for line in said["not ptv2's load"])
    assert said["another record of the same logger"] == ["[transformers] some other warning"]


def test_a_held_report_is_let_out_when_the_load_fails(said):
    """transformers' own errors after the report say 'look at the above report': it must be there."""
    assert said["a load that fails after its report"] == [
        "[transformers] BertModel LOAD REPORT from: x", "table", "raised: For details look at the above report!"]
