"""A pre-trained prompt's files checked against each other and describing themselves: tensors whose
shapes its config does not name are refused by every reader, ``train --init`` included, and the
config records when, where and by which code it was made."""
from __future__ import annotations

import json
import re
import shutil

import pytest
import torch

from ptv2_core.build import build_model
from ptv2_core.errors import Ptv2Error
from ptv2_core.heads import HeadConfig
from ptv2_core.multitask import PretrainConfig, init_from_pretrained, load_pretrained, pretrain
from ptv2_core.multitask.pretrained import read_pretrained_state
from ptv2_core.prefix import PromptConfig
from test_multitask import tiny_bert

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CFG = dict(tasks=("trec", "rt"), model="tiny-bert", max_prompt_len=8, lengths=(2, 8), epochs=1, batch_size=16,
           max_train=16, max_eval=8, device="cpu", progress=False)


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="module")
def prompt(tmp_path_factory, tokenizer):
    out = tmp_path_factory.mktemp("pre") / "p"
    pretrain(PretrainConfig(**CFG), out, backbone=tiny_bert(tokenizer), tokenizer=tokenizer)
    return out


def edited(prompt, tmp_path, edit):
    copy = tmp_path / "edited"
    shutil.copytree(prompt, copy)
    path = copy / "prompt_config.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    return copy


def trec_model(tokenizer, prompt_len=2):
    from ptv2_core.tasks import load_task

    spec, _ = load_task("trec", seed=0, max_train=16, max_eval=8)
    bb = tiny_bert(tokenizer)
    return build_model(bb, spec, prompt_len, max_length=64), spec


def _head_labels(doc):
    doc["tasks"][0]["head"]["num_labels"] = 3


def _longer(doc):
    doc["max_prompt_len"] = doc["prompt"]["prompt_len"] = 16
    doc["lengths"] = [2, 16]


@pytest.mark.parametrize("edit, tensor", [(_head_labels, "heads.0.classifier"), (_longer, "prefix.embedding.weight")])
def test_tensors_other_than_the_config_names_are_refused_by_init(prompt, tmp_path, tokenizer, edit, tensor):
    """A config edited by hand so that it no longer describes its tensors (a head's labels, a longer
    prompt) was taken by ``train --init``: the head silently left fresh, or a prompt of 16 positions
    that holds 8 used. It is refused as ``eval --pretrained`` refuses it, naming the tensor."""
    bad = edited(prompt, tmp_path, edit)
    model, spec = trec_model(tokenizer)
    with pytest.raises(Ptv2Error, match=rf"prompt\.safetensors.*'{re.escape(tensor)}.*shape"):
        init_from_pretrained(model, spec, pretrained_dir=bad, task="trec")
    with pytest.raises(Ptv2Error, match=re.escape(tensor)):
        read_pretrained_state(bad)  # the search's plan reads it so, before any trial
    with pytest.raises(Ptv2Error, match=re.escape(tensor)):
        load_pretrained(bad, tiny_bert(tokenizer), tokenizer)


def test_a_missing_head_tensor_is_named(prompt, tmp_path):
    from safetensors.torch import load_file, save_file

    copy = tmp_path / "c"
    shutil.copytree(prompt, copy)
    state = load_file(str(copy / "prompt.safetensors"))
    del state["heads.1.classifier.bias"]
    save_file(state, str(copy / "prompt.safetensors"))
    with pytest.raises(Ptv2Error, match=r"'heads\.1\.classifier\.bias' is missing"):
        read_pretrained_state(copy)


def test_the_untouched_prompt_still_initialises(prompt, tokenizer):
    model, spec = trec_model(tokenizer)
    init_from_pretrained(model, spec, pretrained_dir=prompt, task="trec")
    state = read_pretrained_state(prompt)
    assert (model.prefix.embedding.weight == state["prefix.embedding.weight"][:2]).all()
    assert (model.head.classifier.weight == state["heads.0.classifier.weight"]).all()


def test_the_config_says_when_where_and_by_which_code(tmp_path, tokenizer):
    """Found a year later, a prompt says when its run started and ended (a resumed run: when it first
    started), on which device, and which code made it (the version and, from a checkout, the commit)."""
    from datetime import datetime, timezone

    from ptv2_core import __version__
    from ptv2_core.multitask import read_pretrained_config

    before = datetime.now(timezone.utc).replace(microsecond=0)  # the config records whole seconds
    out = tmp_path / "p"
    cfg = PretrainConfig(**CFG | {"epochs": 2})
    stopped = pretrain(cfg, out, lambda epoch, row: True, backbone=tiny_bert(tokenizer), tokenizer=tokenizer)
    assert stopped.stopped
    middle = datetime.now(timezone.utc).replace(microsecond=0)
    pretrain(cfg, out, backbone=tiny_bert(tokenizer), tokenizer=tokenizer)
    config = read_pretrained_config(out)
    started, finished = (datetime.fromisoformat(config[k]) for k in ("started", "finished"))
    assert started.tzinfo is not None and before <= started <= middle <= finished  # the first start, kept
    assert config["trained_on"] == {"device": "cpu", "bf16": False}
    made_by = config["provenance"]
    assert made_by["code_version"].startswith(__version__) and made_by["libraries"]["torch"] == torch.__version__
    assert re.fullmatch(r"[0-9a-f]{40}(\.dirty)?", made_by["git_commit"])  # the tests run from a git checkout


def test_a_resume_with_other_settings_names_both_values(tmp_path, tokenizer):
    """``ptv2 pretrain`` again on a stopped run with another task list, lengths or lr was refused with
    the keys alone ("differs in: task_data:rt, task_spec:rt, tasks"): which value the checkpoint has is
    what the user needs to type the same command again. The values are named, the per-task keys of a
    task that is simply not in both lists are not."""
    out = tmp_path / "p"
    cfg = PretrainConfig(**CFG | {"epochs": 2})
    pretrain(cfg, out, lambda epoch, row: True, backbone=tiny_bert(tokenizer), tokenizer=tokenizer)
    with pytest.raises(Ptv2Error) as e:
        pretrain(PretrainConfig(**CFG | {"epochs": 2, "tasks": ("trec",), "lengths": (4, 8), "lr": 0.02}), out,
                 backbone=tiny_bert(tokenizer), tokenizer=tokenizer)
    assert str(e.value) == (
        f"'{out}' holds checkpoints of a different pre-training run (differs in: lengths, lr, tasks; the checkpoint's "
        "lengths 2,8, lr 0.01, tasks trec,rt; now lengths 4,8, lr 0.02, tasks trec); use another --out, or "
        "--overwrite to start afresh")


def test_train_init_says_when_the_head_starts_fresh(prompt, tokenizer, capsys):
    """``train --init`` of a task that took no part in pre-training, or took part with other labels,
    copies the prompt only, and said nothing: the user believed the head pre-trained too."""
    from ptv2_core.tasks import TaskSpec

    model, spec = trec_model(tokenizer)
    init_from_pretrained(model, spec, pretrained_dir=prompt, task="trec", note=True)
    assert capsys.readouterr().err == ""  # the head is copied: nothing to say
    init_from_pretrained(model, spec, pretrained_dir=prompt, task="wnut16", note=True)
    assert capsys.readouterr().err == (
        f"note: task 'wnut16' took no part in pre-training the prompt in '{prompt}' (tasks trec, rt): its first 2 "
        "positions are copied, its head starts fresh\n")
    shuffled = TaskSpec.from_dict(spec.to_dict() | {"labels": list(reversed(spec.labels))})
    init_from_pretrained(model, shuffled, pretrained_dir=prompt, task="trec", note=True)
    assert capsys.readouterr().err == (
        f"note: task 'trec' took part in pre-training the prompt in '{prompt}' with other labels or another label "
        "order: its first 2 positions are copied, its head starts fresh\n")
    init_from_pretrained(model, spec, pretrained_dir=prompt, task="wnut16")  # a search's trials: no note each
    assert capsys.readouterr().err == ""


def test_a_run_resumed_from_a_checkpoint_that_does_not_say_when_it_started_records_no_start(tmp_path, tokenizer):
    """A checkpoint written before 2026-12-07 records no start: the prompt then records none, rather
    than the resume's time as its start."""
    from ptv2_core.multitask import read_pretrained_config

    out = tmp_path / "p"
    cfg = PretrainConfig(**CFG | {"epochs": 2})
    pretrain(cfg, out, lambda epoch, row: True, backbone=tiny_bert(tokenizer), tokenizer=tokenizer)
    path = out / "checkpoints" / "epoch-1.json"
    doc = json.loads(path.read_text())
    del doc["started"]
    for row in doc["history"]:
        del row["time"]
    path.write_text(json.dumps(doc))
    pretrain(cfg, out, backbone=tiny_bert(tokenizer), tokenizer=tokenizer)
    config = read_pretrained_config(out)
    assert "started" not in config and "finished" in config
