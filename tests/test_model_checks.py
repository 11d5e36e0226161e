"""What a model can run, refused before anything runs: pooling 'pooler' needs a backbone with a
pooler layer (it failed at the first batch, in every trial of a search), and a hub task's
max_length must fit the model's positions (a search's plan knew it only once fetched)."""
from __future__ import annotations

import pytest
import torch
import yaml

from conftest import FAMILIES, make_tiny_gpt2, tiny_backbone
from ptv2_core.backbone import has_pooler, load_config
from ptv2_core.build import build_model, check_model_pooling
from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks import TaskSpec

SPEC = TaskSpec("t", "sequence", ("a", "b"), "accuracy")
NO_POOLER = "has no pooler layer, so pooling 'pooler' cannot run on it; it supports cls, mean, last"


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory, minilm_path) -> str:
    """A tiny random GPT-2 (no pooler layer) with MiniLM's tokenizer, saved as a model folder."""
    folder = tmp_path_factory.mktemp("tinygpt2")
    make_tiny_gpt2(minilm_path, folder)
    return str(folder)


@pytest.mark.parametrize("family", FAMILIES)
def test_has_pooler_says_what_the_forward_returns(family):
    """From the config alone (built on the meta device) as from the loaded model: the backbone's
    output has a pooler_output exactly when has_pooler says so."""
    bb = tiny_backbone(family)
    ids = torch.tensor([[2, 5, 7, 9]])
    with torch.no_grad():
        out = bb(input_ids=ids, attention_mask=torch.ones_like(ids))
    gives = getattr(out, "pooler_output", None) is not None
    assert has_pooler(bb.config) == has_pooler(bb) == gives
    assert gives == (family in ("bert", "mpnet", "roberta"))


def test_the_packaged_minilm_has_a_pooler():
    assert has_pooler(load_config("minilm"))
    check_model_pooling("minilm", "pooler")  # no error


@pytest.mark.parametrize("family", ["gpt2", "llama", "deberta-v2"])
def test_building_a_pooler_model_on_a_backbone_without_one_is_refused(family):
    """It was a ValueError at the first forward pass (a traceback, after data and weights loaded)."""
    bb = tiny_backbone(family)
    with pytest.raises(Ptv2Error, match=f"^model '.*' {NO_POOLER}$"):
        build_model(bb, SPEC, 4, max_length=16, pooling="pooler")
    assert build_model(bb, SPEC, 4, max_length=16, pooling="mean").head_config.pooling == "mean"


def test_check_model_pooling_reads_the_config_only(tiny_gpt2):
    with pytest.raises(Ptv2Error) as e:
        check_model_pooling(tiny_gpt2, "pooler")
    assert str(e.value) == f"model '{tiny_gpt2}' {NO_POOLER}"
    for pooling in (None, "cls", "mean", "last"):
        check_model_pooling(tiny_gpt2, pooling)
    with pytest.raises(Ptv2Error, match="unknown pooling 'max': expected one of cls, pooler, mean, last"):
        check_model_pooling(tiny_gpt2, "max")


def _plan(tmp_path, model: str, space: dict):
    from optuna_studies.plan import plan_search

    file = tmp_path / "space.yaml"
    file.write_text(yaml.safe_dump({"prompt_len": [4, 8], "lr": {"low": 1e-3, "high": 1e-2}} | space))
    return file, lambda: plan_search("trec", model, tmp_path / "out", trials=2, space=file,
                                     storage=f"sqlite:///{tmp_path}/o.db", init=None, max_train=8, max_eval=8,
                                     epochs=None, concurrency=1, cpus_per_trial=1, gpus_per_trial=0,
                                     overwrite=False, study_name=None, seed=0)


def test_a_search_plan_refuses_pooler_on_a_model_without_one(tiny_gpt2, tmp_path, monkeypatch):
    """Every trial failed in its first batch, after the study and its MLflow run were made."""
    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    file, plan = _plan(tmp_path, tiny_gpt2, {"fixed": {"pooling": "pooler"}})
    with pytest.raises(Ptv2Error) as e:
        plan()
    assert str(e.value) == f"search space {file}: model '{tiny_gpt2}' {NO_POOLER}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["space.yaml"]  # no study storage, output or state folder
    _, plan = _plan(tmp_path, "minilm", {"fixed": {"pooling": "pooler"}})  # MiniLM (BERT) has one
    assert plan().constants["pooling"] == "pooler"


def test_pretraining_refuses_pooler_on_a_model_without_one_before_its_folder_is_made(tmp_path, minilm_path):
    from ptv2_core.multitask import PretrainConfig, pretrain

    bb, tok = make_tiny_gpt2(minilm_path)
    cfg = PretrainConfig(tasks=("trec", "rt"), model="tiny-gpt2", max_prompt_len=4, lengths=(2, 4), epochs=1,
                         batch_size=8, max_train=16, max_eval=8, device="cpu", progress=False, pooling="pooler")
    with pytest.raises(Ptv2Error, match=f"^model 'tiny-gpt2' {NO_POOLER}$"):
        pretrain(cfg, tmp_path / "prompt", backbone=bb, tokenizer=tok)
    assert list(tmp_path.iterdir()) == []


def test_a_search_plan_checks_a_hub_tasks_max_length_without_fetching_it(tmp_path, monkeypatch, minilm_path):
    """A hub task's max_length (always the default, 128) was not checked by the plan: on a model
    of 64 positions every trial failed. Offline (HF_HUB_OFFLINE=1), and the data set need not exist."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    folder = tmp_path / "short"
    tok = BertTokenizerFast.from_pretrained(minilm_path)
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=37, max_position_embeddings=64)).save_pretrained(folder)
    tok.save_pretrained(folder)
    from optuna_studies.plan import plan_search

    space = tmp_path / "space.yaml"
    kw = dict(trials=2, space=space, storage=f"sqlite:///{tmp_path}/o.db", init=None, max_train=8, max_eval=8,
              epochs=None, concurrency=1, cpus_per_trial=1, gpus_per_trial=0, overwrite=False, study_name=None, seed=0)
    space.write_text(yaml.safe_dump({"prompt_len": [4, 8], "lr": {"low": 1e-3, "high": 1e-2}}))
    with pytest.raises(Ptv2Error) as e:
        plan_search("hub:ptv2-no-such-user/no-such-data", str(folder), tmp_path / "out", **kw)
    assert str(e.value).startswith("hub task 'hub:ptv2-no-such-user/no-such-data' (its max_length, the default, 128): "
                                   "max length 128 is too long for this model: it has 64 "
                                   "positions; lower it to at most 64: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short", "space.yaml"]
    space.write_text(yaml.safe_dump({"prompt_len": [4, 8], "lr": {"low": 1e-3, "high": 1e-2},
                                     "fixed": {"max_length": 64}}))
    plan = plan_search("hub:ptv2-no-such-user/no-such-data", str(folder), tmp_path / "out", **kw)
    assert plan.constants["max_length"] == 64


@pytest.mark.parametrize("which, pooling, message", [
    ("gpt2", "pooler", NO_POOLER),
    ("minilm", "maen", "unknown pooling 'maen': expected one of"),
])
def test_pretrain_refuses_a_pooling_the_model_cannot_run_before_any_data_loads(tiny_gpt2, tmp_path, monkeypatch,
                                                                               which, pooling, message):
    """`ptv2 pretrain --pooling pooler` on GPT-2 (or --pooling maen) was refused only after every
    task's data and the weights loaded. Now from the model's config first: the task's data (a
    label outside its list, an error of its own) is not even read, the store not opened."""
    import json

    from conftest import run_cli

    rows = "text,label\n" + "".join(f"question {i},{'a' if i % 2 else 'c'}\n" for i in range(20))
    (tmp_path / "train.csv").write_text(rows)
    (tmp_path / "task.yaml").write_text(json.dumps({
        "name": "mine", "type": "sequence", "text_column": "text", "label_column": "label", "labels": ["a", "b"],
        "metric": "accuracy", "data": {"train": "train.csv"}}))
    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    model = tiny_gpt2 if which == "gpt2" else "minilm"
    res = run_cli("pretrain", "--tasks", f"{tmp_path / 'task.yaml'},trec", "--model", model, "--pooling", pooling,
                  "--epochs", "1", "--quiet", "--out", str(tmp_path / "out"))
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert message in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["task.yaml", "train.csv"]


# A checkpoint saved without its pooler's weights (many sentence-transformers checkpoints) still
# gets the layer from AutoModel, initialised at random: frozen, 'pooler' trained a head on noise.
UNTRAINED = ("has a pooler layer but its checkpoint has no pooler weights (transformers would initialise them "
             "randomly and they stay frozen), so pooling 'pooler' cannot be trained on it; it supports cls, mean, last")


def _tiny_bert(minilm_path, folder, *, pooler: bool, cls=None, **save):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    tok = BertTokenizerFast.from_pretrained(minilm_path)
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=37)
    torch.manual_seed(0)
    model = cls(config) if cls is not None else BertModel(config, add_pooling_layer=pooler)
    model.save_pretrained(folder, **save)
    tok.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def tiny_berts(tmp_path_factory, minilm_path) -> dict[str, str]:
    """Tiny BERT folders: without pooler weights (one file, and sharded with an index), with them,
    and a BertForSequenceClassification checkpoint (its keys are 'bert.pooler.…')."""
    from transformers import BertForSequenceClassification

    root = tmp_path_factory.mktemp("berts")
    return {"bare": _tiny_bert(minilm_path, root / "bare", pooler=False),
            "bare-sharded": _tiny_bert(minilm_path, root / "sharded", pooler=False, max_shard_size="100KB"),
            "pooler": _tiny_bert(minilm_path, root / "pooler", pooler=True),
            "classifier": _tiny_bert(minilm_path, root / "classifier", pooler=True, cls=BertForSequenceClassification)}


@pytest.mark.parametrize("which", ["bare", "bare-sharded"])
def test_pooler_is_refused_early_on_a_checkpoint_without_pooler_weights(tiny_berts, which):
    """From the folder's files alone (a safetensors header, or the index's weight map): before the
    plan, `ptv2 train` or `ptv2 pretrain` load any data or weights."""
    from pathlib import Path

    folder = tiny_berts[which]
    assert (Path(folder, "model.safetensors.index.json").is_file()) == (which == "bare-sharded")
    with pytest.raises(Ptv2Error) as e:
        check_model_pooling(folder, "pooler")
    assert str(e.value) == f"model '{folder}' {UNTRAINED}"
    for pooling in (None, "cls", "mean"):
        check_model_pooling(folder, pooling)


@pytest.mark.parametrize("which", ["pooler", "classifier"])
def test_pooler_is_accepted_early_on_a_checkpoint_with_pooler_weights(tiny_berts, which):
    check_model_pooling(tiny_berts[which], "pooler")  # no error


def test_building_pooler_on_a_backbone_loaded_without_pooler_weights_is_refused(tiny_berts):
    """The loaded backbone has the layer (randomly initialised): build_model asks how it loaded.
    Its modules and state dict are as transformers made them (the base's fingerprint hashes them)."""
    from ptv2_core.backbone import load_backbone

    bb, _ = load_backbone(tiny_berts["bare"])
    assert has_pooler(bb) and "pooler.dense.weight" in bb.state_dict()
    with pytest.raises(Ptv2Error) as e:
        build_model(bb, SPEC, 4, max_length=16, pooling="pooler")
    assert str(e.value) == f"model '{tiny_berts['bare']}' {UNTRAINED}"
    for pooling in ("cls", "mean"):
        assert build_model(bb, SPEC, 4, max_length=16, pooling=pooling).head_config.pooling == pooling


@pytest.mark.parametrize("which", ["pooler", "classifier", "minilm"])
def test_building_pooler_on_a_backbone_loaded_with_pooler_weights_is_accepted(tiny_berts, which):
    from ptv2_core.backbone import load_backbone

    bb, _ = load_backbone(tiny_berts.get(which, which))
    assert build_model(bb, SPEC, 4, max_length=16, pooling="pooler").head_config.pooling == "pooler"


@pytest.mark.parametrize("which", ["bare", "bare-sharded"])
def test_a_checkpoint_without_pooler_weights_has_one_fingerprint_whatever_the_random_state(tiny_berts, which):
    """transformers fills weights missing from a checkpoint (a pooler saved without) at random, and
    the base's fingerprint hashed them: each load of the same folder had another fingerprint, so an
    adapter trained on it (with cls or mean pooling) was refused as made on another base model."""
    from ptv2_core.backbone import fingerprint, load_backbone

    prints = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        backbone, _ = load_backbone(tiny_berts[which])
        prints.append(fingerprint(backbone))
    assert prints[0] == prints[1]
    # and a checkpoint with every weight hashes them all: the pooler's bytes count
    torch.manual_seed(1)
    full, _ = load_backbone(tiny_berts["pooler"])
    assert "pooler.dense.weight" in full.state_dict() and fingerprint(full) != prints[0]


def test_pretraining_refuses_pooler_on_a_loaded_backbone_without_pooler_weights(tiny_berts, tmp_path):
    """What the early check cannot see (a hub model, read only when it loads; here the loaded backbone
    given to pretrain under a name that is no folder) is refused once it has loaded."""
    from ptv2_core.backbone import load_backbone
    from ptv2_core.multitask import PretrainConfig, pretrain

    bb, tok = load_backbone(tiny_berts["bare"])
    cfg = PretrainConfig(tasks=("trec",), model="some-hub/bert-without-pooler", max_prompt_len=4, lengths=(2, 4),
                         epochs=1, batch_size=8, max_train=16, max_eval=8, device="cpu", progress=False,
                         pooling="pooler")
    with pytest.raises(Ptv2Error, match="has a pooler layer but its checkpoint has no pooler weights"):
        pretrain(cfg, tmp_path / "prompt", backbone=bb, tokenizer=tok)
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_missing_other_weights_is_not_made_to_look_the_same_at_each_load(tiny_berts, tmp_path):
    """Only the pooler, which cls and mean pooling never read, is left out of the fingerprint: a
    checkpoint missing a weight the model computes with (here one attention layer's query) gets
    random values at each load, and its fingerprint says so (an adapter made on one load is not
    taken for the next's)."""
    import shutil

    from safetensors.torch import load_file, save_file

    from ptv2_core.backbone import fingerprint, load_backbone

    folder = tmp_path / "holed"
    shutil.copytree(tiny_berts["pooler"], folder)
    weights = load_file(folder / "model.safetensors")
    del weights["encoder.layer.0.attention.self.query.weight"]
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    prints = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        prints.append(fingerprint(load_backbone(str(folder))[0]))
    assert prints[0] != prints[1]
