"""Search without Ray: spaces as data, storage URLs, the objective as a plain function, and the
command line refusing bad input before it writes anything."""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import optuna
import pytest
import yaml

from ptv2_core.errors import Ptv2Error
from optuna_studies.objective import objective
from optuna_studies.space import load_space, parse_space
from optuna_studies.study import check_storage_url, mask_url


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, minilm_path) -> str:
    """A tiny random BERT with MiniLM's WordPiece tokenizer, saved as a model folder."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tinybert")
    tok = BertTokenizerFast.from_pretrained(minilm_path)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=37, max_position_embeddings=256)
    BertModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def test_packaged_spaces_load_with_task_sized_lengths():
    assert load_space("trec").prompt_lens == (4, 8, 16, 32)
    assert load_space("rt").prompt_lens == (4, 8, 16, 32)
    assert load_space("wnut16").prompt_lens == (8, 16, 32, 64, 128)
    assert max(load_space("bbc").prompt_lens) <= 64
    user = load_space("my_task.yaml")  # a user task gets the packaged default space
    assert user.source.endswith("default.yaml") and 128 in user.prompt_lens
    for task in ("trec", "rt", "wnut16", "bbc"):
        s = load_space(task)
        assert s.mode == "max" and s.metric == "dev_score" and 0 < s.lr_low < s.lr_high and s.trials > 0
        assert 1 <= s.grace_period <= s.epochs


def test_space_overrides_keep_grace_within_epochs():
    s = load_space("wnut16").with_overrides(trials=3, epochs=1)
    assert (s.trials, s.epochs, s.grace_period, s.warm_grace_period) == (3, 1, 1, 1)
    with pytest.raises(Ptv2Error, match="trials"):
        load_space("trec").with_overrides(trials=0)


def test_warm_starts_get_their_own_grace_period():
    doc = {"prompt_len": [4, 8], "lr": {"low": 1e-3, "high": 1e-2}, "epochs": 6,
           "pruning": {"grace_period": 1, "warm_grace_period": 9}}
    s = parse_space(doc)
    assert (s.grace_period, s.warm_grace_period) == (1, 6)  # never past the epochs
    assert s.for_start(warm=False).grace_period == 1 and s.for_start(warm=True).grace_period == 6
    s = parse_space(doc | {"pruning": {"grace_period": 2}})  # unset: warm starts prune like fresh ones
    assert s.warm_grace_period is None and s.for_start(warm=True).grace_period == 2
    # the packaged spaces' choices, measured on the grid curves in bench/results/search_cost.json
    assert load_space("trec").for_start(warm=True).grace_period > load_space("trec").grace_period
    assert load_space("wnut16").for_start(warm=True).grace_period < load_space("wnut16").grace_period


def test_a_search_from_a_pretrained_prompt_plans_with_the_warm_grace_period(tiny_model, tiny_pretrained, tmp_path):
    from optuna_studies.plan import plan_search

    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"prompt_len": [4, 8], "lr": {"low": 1e-3, "high": 1e-2}, "epochs": 4,
                                     "pruning": {"grace_period": 1, "warm_grace_period": 3}}))
    kw = dict(trials=2, space=space, storage=f"sqlite:///{tmp_path}/o.db", max_train=8, max_eval=8, epochs=None,
              concurrency=1, cpus_per_trial=1, gpus_per_trial=0, overwrite=False, study_name=None, seed=0)
    cold = plan_search("trec", tiny_model, tmp_path / "cold", init=None, **kw)
    warm = plan_search("trec", tiny_model, tmp_path / "warm", init=tiny_pretrained, **kw)
    assert cold.space.grace_period == 1 and cold.constants["init"] is None
    assert warm.space.grace_period == 3 and warm.constants["init"] == str(tiny_pretrained.resolve())
    assert not (tmp_path / "cold").exists() and not (tmp_path / "warm").exists()  # planning writes nothing


def test_a_space_file_for_another_task_is_refused_by_the_plan(tmp_path, monkeypatch):
    """A copy of rt.yaml (``task: rt``: its budget and pruning measured on rt) given to --task trec
    was run on trec without a word: the space's task: key was read and ignored."""
    from optuna_studies.plan import plan_search

    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    kw = dict(trials=1, storage=f"sqlite:///{tmp_path}/o.db", init=None, max_train=8, max_eval=8, epochs=None,
              concurrency=1, cpus_per_trial=1, gpus_per_trial=0, overwrite=False, study_name=None, seed=0)
    file = tmp_path / "space.yaml"
    file.write_text(yaml.safe_dump({"task": "rt", "prompt_len": [4, 8], "lr": {"low": 1e-3, "high": 1e-2}}))
    with pytest.raises(Ptv2Error, match=f"search space {file} is for task 'rt' \\(its task: key\\), not 'trec'"):
        plan_search("trec", "minilm", tmp_path / "out", space=file, **kw)
    assert plan_search("rt", "minilm", tmp_path / "out", space=file, **kw).space.prompt_lens == (4, 8)
    file.write_text(yaml.safe_dump({"task": ["rt"], "prompt_len": [4, 8], "lr": {"low": 1e-3, "high": 1e-2}}))
    with pytest.raises(Ptv2Error, match="task must be a task name, got \\['rt'\\]"):
        plan_search("rt", "minilm", tmp_path / "out", space=file, **kw)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("space, match", [
    ({"fixed": {"pooling": "maen"}}, "unknown pooling 'maen': expected one of cls, pooler, mean, last"),
    ({"fixed": {"max_length": 1024}}, "max length 1024 is too long for this model: it has 512 positions"),
    ({"prompt_len": [4, 600]}, "prompt length 600 is too long for this model: at most its context size, 512"),
])
def test_a_setting_every_trial_would_fail_on_in_building_its_model_is_refused_by_the_plan(tmp_path, monkeypatch,
                                                                                          space, match):
    """The plan checked the shortest prompt's training settings only: a space's pooling, max_length
    or longest prompt that the model cannot take failed every trial, after the study was made."""
    from optuna_studies.plan import plan_search

    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    file = tmp_path / "space.yaml"
    file.write_text(yaml.safe_dump({"prompt_len": [4, 8], "lr": {"low": 1e-3, "high": 1e-2}} | space))
    with pytest.raises(Ptv2Error, match=f"search space {file}: {match}"):
        plan_search("trec", "minilm", tmp_path / "out", trials=2, space=file, storage=f"sqlite:///{tmp_path}/o.db",
                    init=None, max_train=8, max_eval=8, epochs=None, concurrency=1, cpus_per_trial=1,
                    gpus_per_trial=0, overwrite=False, study_name=None, seed=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["space.yaml"]  # no study storage, output or state folder


def test_a_shared_folder_holds_the_work_and_must_hold_the_trials_file_inputs(tiny_model, tiny_pretrained,
                                                                            tmp_path):
    import shutil

    from optuna_studies.plan import plan_search
    from ptv2_core.errors import Ptv2Error

    shared = tmp_path / "shared"
    shared.mkdir()
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"prompt_len": [4, 8], "lr": {"low": 1e-3, "high": 1e-2}, "epochs": 2}))
    kw = dict(trials=2, space=space, storage=f"sqlite:///{tmp_path}/o.db", max_train=8, max_eval=8, epochs=None,
              concurrency=1, cpus_per_trial=1, gpus_per_trial=0, overwrite=False, study_name=None, seed=0)
    with pytest.raises(Ptv2Error, match="model folder .* is outside --shared-dir"):
        plan_search("trec", tiny_model, tmp_path / "out", init=None, shared_dir=shared, **kw)
    model = shutil.copytree(tiny_model, shared / "model")
    with pytest.raises(Ptv2Error, match="pre-trained prompt .* is outside --shared-dir"):
        plan_search("trec", str(model), tmp_path / "out", init=tiny_pretrained, shared_dir=shared, **kw)
    task = tmp_path / "task.yaml"  # a task file in the shared folder whose data file is not
    (tmp_path / "train.csv").write_text("text,label\nhello there,a\ngood bye,b\n")
    (shared / "task.yaml").write_text(yaml.safe_dump({"name": "mine", "type": "sequence",
                                                      "data": {"train": str(tmp_path / "train.csv")}}))
    with pytest.raises(Ptv2Error, match="train file of the task .* is outside --shared-dir"):
        plan_search(str(shared / "task.yaml"), str(model), tmp_path / "out", init=None, shared_dir=shared, **kw)
    pre = shutil.copytree(tiny_pretrained, shared / "prompt")
    plan = plan_search("trec", str(model), tmp_path / "out", init=pre, shared_dir=shared, **kw)
    assert plan.shared == shared and plan.work.parent == shared / "ptv2-searches"
    again = plan_search("trec", str(model), tmp_path / "out", init=pre, shared_dir=shared, **kw)
    assert again.work == plan.work  # --resume finds it
    assert plan_search("trec", str(model), tmp_path / "other", init=pre, shared_dir=shared, **kw).work != plan.work
    assert not plan.work.exists() and not (tmp_path / "out").exists() and not task.exists()  # writes nothing


@pytest.mark.parametrize("doc, match", [
    ([1, 2], "mapping"),
    ({"lr": {"low": 1e-3, "high": 1e-2}}, "prompt_len"),
    ({"prompt_len": [], "lr": {"low": 1e-3, "high": 1e-2}}, "prompt_len"),
    ({"prompt_len": [4, 4], "lr": {"low": 1e-3, "high": 1e-2}}, "duplicates"),
    ({"prompt_len": [4, -1], "lr": {"low": 1e-3, "high": 1e-2}}, "positive"),
    ({"prompt_len": [4], "lr": {"low": 1e-2, "high": 1e-3}}, "low <= high"),
    ({"prompt_len": [4], "lr": 0.01}, "lr must be a mapping"),
    ({"prompt_len": [4], "lr": {"low": 1e-3, "high": 1e-2}, "direction": "up"}, "direction"),
    ({"prompt_len": [4], "lr": {"low": 1e-3, "high": 1e-2}, "metric": "accuracy"}, "metric"),
    ({"prompt_len": [4], "lr": {"low": 1e-3, "high": 1e-2}, "metric": "dev_loss", "direction": "maximize"},
     "metric dev_loss is a loss: direction must be minimize"),
    ({"prompt_len": [4], "lr": {"low": 1e-3, "high": 1e-2}, "metric": "dev_loss", "direction": "max"},
     "metric dev_loss is a loss: direction must be minimize"),  # the short spelling passed the guard
    ({"prompt_len": [4], "lr": {"low": 1e-3, "high": 1e-2}, "trials": 0}, "trials"),
    ({"prompt_len": [4], "lr": {"low": 1e-3, "high": 1e-2}, "pruning": {"reduction_factor": 1}}, "reduction_factor"),
    ({"prompt_len": [4], "lr": {"low": 1e-3, "high": 1e-2}, "pruning": {"warm_grace_period": 0}}, "warm_grace_period"),
    ({"prompt_len": [4], "lr": {"low": 1e-3, "high": 1e-2}, "fixed": {"lr": 1}}, "fixed"),
    # was ignored: every trial trained with --seed (default 0)
    ({"prompt_len": [4], "lr": {"low": 1e-3, "high": 1e-2}, "fixed": {"seed": 7}}, "fixed: seed .* --seed"),
    ({"prompt_len": [4], "lr": {"low": 1e-3, "high": 1e-2}, "enqueue": [{"prompt_len": 8, "lr": 1e-3}]}, "outside"),
    ({"prompt_len": [4], "lr": {"low": 1e-3, "high": 1e-2}, "typo": 1}, "unknown keys"),
    ({"prompt_len": [4], "lr": {"low": 1e-3, "high": 1e-2}, "sampler": {"seed": 2**32}}, "sampler.seed .* 0..4294967295"),
    ({"prompt_len": [4], "lr": {"low": 1e-3, "high": 1e-2}, "sampler": {"seed": -1}}, "sampler.seed"),
])
def test_bad_space_documents_are_refused(doc, match):
    with pytest.raises(Ptv2Error, match=match):
        parse_space(doc)


_BASE = {"prompt_len": [4], "lr": {"low": 1e-3, "high": 1e-2}}


@pytest.mark.parametrize("extra, match", [
    ({"direction": ["maximize"]}, "direction must be maximize or minimize, got \\['maximize'\\]"),  # was a TypeError
    ({"direction": {"max": 1}}, "direction must be maximize or minimize"),                     # (unhashable)
    ({1: 2, "typo": 3}, "unknown keys \\[1, 'typo'\\]"),  # keys of mixed types: sorting them was a TypeError
    ({"metric": ["dev_score"]}, "metric must be"),
    ({"sampler": {"startup": ["lhs"]}}, "sampler.startup"),
    ({"sampler": {"length": {"rank": 1}}}, "sampler.length"),
    ({"sampler": {"seed": [0]}}, "sampler.seed"),
    ({"pruning": {"grace_period": [1]}}, "pruning.grace_period"),
    ({"epochs": {"n": 1}}, "epochs"),
    ({"lr": {"low": [1e-3], "high": 1e-2}}, "lr low/high must be numbers"),
    ({"enqueue": [{"prompt_len": [4], "lr": 1e-3}]}, "enqueue entry"),
    ({"enqueue": [{"prompt_len": 4, "lr": [1e-3]}]}, "enqueue lr must be a number"),
])
def test_a_list_or_mapping_where_a_space_wants_a_scalar_is_refused(extra, match):
    with pytest.raises(Ptv2Error, match=match):
        parse_space(_BASE | extra)


@pytest.mark.parametrize("metric", ["dev_score", "dev_accuracy", "dev_macro_f1", "dev_span_f1"])
@pytest.mark.parametrize("direction", ["minimize", "min"])
def test_a_score_metric_cannot_be_minimised(metric, direction):
    """metric: dev_accuracy with direction: minimize was accepted: every metric but a loss is a
    score in [0, 1], higher is better, so the search ranked its worst trial best and wrote it."""
    with pytest.raises(Ptv2Error, match=f"metric {metric} is a score .*: direction must be maximize"):
        parse_space(_BASE | {"metric": metric, "direction": direction})


def test_a_loss_metric_is_minimised_by_default():
    """metric: dev_loss without a direction was maximised: the search picked the highest loss."""
    base = {"prompt_len": [4], "lr": {"low": 1e-3, "high": 1e-2}}
    assert parse_space(base | {"metric": "dev_loss"}).mode == "min"
    assert parse_space(base | {"metric": "train_loss"}).mode == "min"
    assert parse_space(base | {"metric": "dev_accuracy"}).mode == "max"
    assert parse_space(base).mode == "max"


def test_unreadable_space_file_is_an_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("prompt_len: [4\n")
    with pytest.raises(Ptv2Error, match="not readable YAML"):
        load_space("trec", bad)
    with pytest.raises(Ptv2Error, match="not found"):
        load_space("trec", tmp_path / "missing.yaml")


def test_storage_urls_are_checked_and_passwords_masked(tmp_path):
    assert check_storage_url(f"sqlite:///{tmp_path}/optuna.db")
    assert check_storage_url("postgresql://u:pw@db.example:5432/optuna")
    for bad in ("nonsense", "redis://localhost/0", f"sqlite:///{tmp_path}/missing/optuna.db", "sqlite://"):
        with pytest.raises(Ptv2Error):
            check_storage_url(bad)
    assert mask_url("postgresql://u:s3cret@db:5432/optuna") == "postgresql://u:***@db:5432/optuna"
    assert "s3cret" not in mask_url("postgresql://u:s3cret@db:5432/optuna")
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def _trial_config(model: str, **kw) -> dict:
    return dict(task="trec", model=model, prompt_len=4, lr=1e-2, epochs=2, max_train=48, max_eval=48,
                batch_size=16, device="cpu", metric="dev_score", mode="max", init=None) | kw


def test_objective_reports_every_epoch_and_the_best_adapter(tiny_model):
    reports = []
    out = objective(_trial_config(tiny_model), lambda e, m, a: reports.append((e, m, a)))
    assert out["status"] == "completed" and [e for e, _, _ in reports] == [1, 2]
    assert reports[0][2] is not None  # the first epoch always improves on nothing
    best = max(m["objective"] for _, m, _ in reports)
    assert out["best_objective"] == pytest.approx(best) and reports[-1][1]["best_objective"] == pytest.approx(best)
    # an adapter accompanies exactly the improving epochs, so the last one sent is the best
    last_with_adapter = [m for _, m, a in reports if a is not None][-1]
    assert last_with_adapter["objective"] == pytest.approx(best)
    assert {"adapter.safetensors", "adapter_config.json"} <= set(reports[0][2])


def test_a_trials_adapter_records_the_truncation_it_trained_with(tiny_model):
    """A space's fixed max_length: the trial's adapter named the task's default (it loaded the task
    again for its spec), so eval and the search's best-adapter scoring truncated otherwise."""
    from ptv2_core.tasks import load_task

    assert load_task("trec", max_train=1, max_eval=1)[0].max_length != 24
    reports = []
    objective(_trial_config(tiny_model, epochs=1, max_length=24), lambda e, m, a: reports.append(a))
    config = json.loads(reports[0]["adapter_config.json"])
    assert config["task"]["max_length"] == 24 and config["extra"]["train_config"]["max_length"] == 24


def test_objective_ends_a_diverging_trial_without_raising(tiny_model):
    """lr 1e30 really drives the loss to NaN on this model (TrainingDiverged in the core)."""
    reports = []
    out = objective(_trial_config(tiny_model, lr=1e30), lambda e, m, a: reports.append((e, m, a)))
    assert out["status"] == "diverged" and "nan" in out["failure"]
    assert len(reports) == 1 and reports[0][1]["failure"].startswith("diverged")
    assert math.isnan(reports[0][1]["best_objective"]) and reports[0][2] is None


@pytest.fixture(scope="module")
def tiny_pretrained(tiny_model, tmp_path_factory) -> Path:
    """A pre-trained prompt of 8 positions for the tiny model (one epoch on 32 TREC rows)."""
    from ptv2_core import multitask

    pre = tmp_path_factory.mktemp("pretrained") / "pre"
    multitask.pretrain(multitask.PretrainConfig(tasks=("trec",), model=tiny_model, max_prompt_len=8, lengths=(4, 8),
                                                epochs=1, max_train=32, max_eval=16, device="cpu", progress=False), pre)
    return pre


def test_objective_starts_from_a_pretrained_prompt(tiny_model, tiny_pretrained):
    pre = tiny_pretrained
    reports = []
    out = objective(_trial_config(tiny_model, init=str(pre), epochs=1), lambda e, m, a: reports.append(m))
    assert out["status"] == "completed", out
    # the wiring really calls init_from_pretrained: a length beyond the pre-trained prompt is refused by it
    out = objective(_trial_config(tiny_model, init=str(pre), epochs=1, prompt_len=16), lambda e, m, a: None)
    assert out["status"] == "failed" and "pre-trained prompt" in out["failure"]


@pytest.mark.parametrize("model, seed, fixed, match", [
    ("minilm", 0, {}, "was pre-trained on base model .* \\(bert, 2 layers, 4 heads of 8\\); model 'minilm' is "
                      "bert, 6 layers, 12 heads of 32"),
    (None, 1, {}, "task 'trec' took part in pre-training with data seed 0; training it with seed 1"),
    (None, 0, {"reparam": True}, "uses no reparameterization, the trials MLP reparameterization \\(hidden 512\\)"),
])
def test_a_pretrained_prompt_every_trial_would_refuse_is_refused_by_the_plan(tiny_model, tiny_pretrained, tmp_path,
                                                                             monkeypatch, model, seed, fixed, match):
    """--init with another base model, a --seed other than the pre-training's for a task that took
    part in it, or a space's fixed reparam other than the prompt's: every trial refused it as it
    started (init_from_pretrained), after the study, its MLflow run and the work folder were made,
    and the study was left with failed trials only."""
    from optuna_studies.plan import plan_search

    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"prompt_len": [4, 8], "lr": {"low": 1e-3, "high": 1e-2}, "fixed": fixed}))
    kw = dict(trials=2, space=space, storage=f"sqlite:///{tmp_path}/o.db", max_train=8, max_eval=8, epochs=None,
              concurrency=1, cpus_per_trial=1, gpus_per_trial=0, overwrite=False, study_name=None)
    with pytest.raises(Ptv2Error, match=match):
        plan_search("trec", model or tiny_model, tmp_path / "out", init=tiny_pretrained, seed=seed, **kw)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["space.yaml"]  # no study storage, output or work folder
    # the trial refuses it (the check says what init_from_pretrained would), and another task may take any seed
    cfg = _trial_config(model or tiny_model, init=str(tiny_pretrained), epochs=1, seed=seed, **fixed)
    out = objective(cfg, lambda e, m, a: None)
    assert out["status"] == "failed" and "pre-train" in out["failure"], out
    if seed:
        assert plan_search("rt", tiny_model, tmp_path / "out", init=tiny_pretrained, seed=seed, **kw).init
        space.write_text(yaml.safe_dump({"prompt_len": [4, 8], "lr": {"low": 1e-3, "high": 1e-2},
                                         "fixed": {"data_seed": 0}}))  # the splits' seed is what counts
        assert plan_search("trec", tiny_model, tmp_path / "out", init=tiny_pretrained, seed=seed, **kw).init


@pytest.mark.parametrize("args, match", [
    (["--task", "nope"], "unknown task"),
    (["--task", "trec", "--trials", "0"], "--trials"),
    (["--task", "trec", "--storage", "redis://localhost/0"], "unsupported study storage"),
    (["--task", "trec", "--storage", "not a url"], "bad study storage URL"),
    (["--task", "trec", "--space", "SPACE_DIR/bad.yaml"], "not readable YAML"),
    (["--task", "trec", "--space", "SPACE_DIR/missing.yaml"], "not found"),
    (["--task", "trec", "--init", "SPACE_DIR/no-such-prompt"], "no-such-prompt' does not exist"),
    (["--task", "trec", "--model", "./no-such-model"], "model folder not found"),
    (["--task", "trec", "--concurrency", "0"], "--concurrency"),
    (["--task", "trec", "--seed", "-1"], "--seed must be an integer in 0..4294967295"),  # was a failed trial, a study left
    (["--task", "trec", "--shared-dir", "relative/dir"], "must be an absolute path"),
    (["--task", "trec", "--shared-dir", "SPACE_DIR/no-such-mount"], "is not a folder"),
    # nothing listens on port 1: refused at once, before a study is created (MLflow would retry for minutes)
    (["--task", "trec", "--mlflow-uri", "http://127.0.0.1:1"], "MLflow tracking server http://127.0.0.1:1 does not answer"),
    (["--task", "trec", "--mlflow-uri", "./mlruns"], "MLflow tracking URI './mlruns' is a folder"),  # was MLflow's traceback
    (["--task", "trec", "--mlflow-uri", "foo://x"], "unknown scheme 'foo'"),
    # settings every trial would fail on (or train wrongly with) were found only after all had run
    (["--task", "trec", "--space", "SPACE_DIR/metric.yaml"], "metric 'dev_foo' is not in a trial's report"),
    (["--task", "trec", "--space", "SPACE_DIR/ner-metric.yaml"], "metric 'dev_span_f1' is not in a trial's report"),
    (["--task", "trec", "--space", "SPACE_DIR/batch.yaml"], "batch size must be a positive integer, got 0"),
    (["--task", "trec", "--space", "SPACE_DIR/clip.yaml"], "grad_clip must be a positive number"),
    # failed every trial in building the model (the pooling, the model's 512 positions), a study left behind
    (["--task", "trec", "--space", "SPACE_DIR/pooling.yaml"], "unknown pooling 'maen': expected one of cls, pooler"),
    (["--task", "trec", "--space", "SPACE_DIR/max-length.yaml"], "max length 1024 is too long for this model: it has 512"),
    (["--task", "trec", "--space", "SPACE_DIR/long-prompt.yaml"], "prompt length 600 is too long for this model"),
])
def test_cli_refuses_bad_input_and_writes_nothing(tmp_path, monkeypatch, capsys, args, match):
    from pipelines.cli import main

    spaces = tmp_path / "spaces"
    spaces.mkdir()
    (spaces / "bad.yaml").write_text("prompt_len: [4\n")
    base = "prompt_len: [4, 8]\nlr: {low: 0.003, high: 0.05}\n"
    for name, extra in (("metric", "metric: dev_foo"), ("ner-metric", "metric: dev_span_f1"),
                        ("batch", "fixed: {batch_size: 0}"), ("clip", "fixed: {grad_clip: -1.0}"),
                        ("pooling", "fixed: {pooling: maen}"), ("max-length", "fixed: {max_length: 1024}"),
                        ("long-prompt", "")):
        (spaces / f"{name}.yaml").write_text(base.replace("[4, 8]", "[4, 600]" if name == "long-prompt" else "[4, 8]")
                                             + extra + "\n")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("PTV2_HOME", str(work / ".ptv2"))
    argv = ["search", *[a.replace("SPACE_DIR", str(spaces)) for a in args], "--out", str(work / "out")]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    assert err.startswith("error:") and match in err and len(err.strip().splitlines()) == 1
    assert sorted(os.listdir(work)) == []  # no output, no work folder, no state folder


def test_a_task_files_data_error_is_one_error_line_before_anything_is_made(tmp_path, monkeypatch, capsys):
    """A task file whose data its trials cannot load (here a dev label no train row has) passed the
    plan, which read the YAML only: the study and its MLflow run were made, Ray started, and every
    trial failed on it, ending in "no trial ... finished"."""
    from pipelines.cli import main

    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("text,label\nhello there,a\ngood bye,b\nhi,a\nbye,b\n")
    (data / "dev.csv").write_text("text,label\nwhat now,c\n")
    (data / "task.yaml").write_text(yaml.safe_dump({"name": "mine", "type": "sequence",
                                                    "data": {"train": "train.csv", "dev": "dev.csv"}}))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("PTV2_HOME", str(work / ".ptv2"))
    with pytest.raises(SystemExit) as exc:
        main(["search", "--task", str(data / "task.yaml"), "--out", str(work / "out"), "--ray-cpus", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1, err  # a small file: no progress line before it
    assert err[0].startswith("error: ") and "labels outside the label list of task 'mine': 'c'" in err[0], err
    assert sorted(os.listdir(work)) == []  # no output, no work folder, no study or MLflow store


def test_a_trial_the_ray_cluster_cannot_hold_is_refused_before_the_study_exists(tmp_path, monkeypatch, capsys):
    """The cluster's resources used to be checked after the study, the MLflow parent run (left
    FAILED) and the work folder were made; a NaN --cpus-per-trial passed and Ray waited forever, as
    it did (over 2 minutes) to join a cluster address where nothing listens."""
    from pipelines.cli import main

    home = tmp_path / "home"
    monkeypatch.setenv("PTV2_HOME", str(home))
    for args, needle in ((["--cpus-per-trial", "4096", "--ray-cpus", "1"], "a trial needs 4096 CPU and 0 GPU on one "
                          "node, but the Ray cluster has 1 CPU"), (["--cpus-per-trial", "nan"], "--cpus-per-trial must be a number"),
                         (["--ray-address", "127.0.0.1:1"], "nothing answers at the Ray cluster address '127.0.0.1:1'"),
                         (["--ray-address", "ray://127.0.0.1:1"], "nothing answers at the Ray cluster address"),
                         (["--max-failures", "-1"], "--max-failures must be an integer >= 0"),
                         (["--ray-cpus", "0"], "--ray-cpus must be an integer >= 1")):
        with pytest.raises(SystemExit) as exc:
            main(["search", "--task", "trec", "--out", str(tmp_path / "out"), *args])
        err = capsys.readouterr().err.strip().splitlines()
        assert exc.value.code == 2 and len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err
        assert sorted(p.name for p in tmp_path.iterdir()) in (["home"], []), "an output or work folder was left"
        assert not [p for p in home.rglob("*")], "a study or MLflow store was created"


def test_ray_client_with_a_shared_folder_needs_the_stores_reachable_from_the_head(tiny_model, tmp_path):
    """Under Ray Client the head opens the study storage and the MLflow store: a sqlite file
    outside the shared folder is refused before anything is written, and before Ray is touched
    (it needs only the flags, the address and the paths): nothing listens at the ray:// address
    here, and the refusal names the store, not the dead address (it did, after 7 s of waiting)."""
    import shutil
    import subprocess

    from search_ray_support import PTV2, free_port, write_space

    address = f"ray://127.0.0.1:{free_port()}"  # nothing listens there
    shared = tmp_path / "shared"
    model = shutil.copytree(tiny_model, shared / "model")
    env = dict(os.environ, HF_HUB_OFFLINE="1", PTV2_HOME=str(shared / "home"))
    env.pop("RAY_ADDRESS", None)

    def search(storage: str, mlflow: str) -> subprocess.CompletedProcess:
        return subprocess.run([PTV2, "search", "--task", "trec", "--model", str(model), "--space",
                               str(write_space(tmp_path)), "--max-train", "48", "--max-eval", "48",
                               "--ray-address", address, "--shared-dir", str(shared), "--storage", storage,
                               "--mlflow-uri", mlflow, "--out", str(tmp_path / "out")],
                              env=env, capture_output=True, text=True, timeout=300)

    inside = f"sqlite:///{shared}/optuna.db"
    for storage, mlflow, label in ((f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{shared}/mlflow.db", "study storage"),
                                   (inside, f"sqlite:///{tmp_path}/mlflow.db", "MLflow store")):
        refused = search(storage, mlflow)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 2 and len(lines) == 1, refused.stderr[-3000:]
        assert lines[0].startswith("error:") and label in lines[0] and "--shared-dir" in lines[0], lines[0]
        assert "nothing answers" not in lines[0], lines[0]
        assert not (tmp_path / "out").exists() and not (tmp_path / "optuna.db").exists()
        assert not (shared / "ptv2-searches").exists()


def test_a_trial_larger_than_the_local_ray_is_refused_before_ray_starts(tmp_path):
    """--ray-cpus sizes the local Ray: a trial that asks for more is refused before Ray starts
    (it took a Ray start, ~10 s, to say so); Ray's temp folder stays empty."""
    import shutil
    import subprocess

    from search_ray_support import PTV2, short_tmpdir

    raytmp = short_tmpdir("ptv2nr")
    env = dict(os.environ, HF_HUB_OFFLINE="1", PTV2_HOME=str(tmp_path / "home"), RAY_TMPDIR=raytmp)
    env.pop("RAY_ADDRESS", None)
    try:
        refused = subprocess.run([PTV2, "search", "--task", "trec", "--cpus-per-trial", "2", "--ray-cpus", "1",
                                  "--out", str(tmp_path / "out")], env=env, capture_output=True, text=True, timeout=300)
        lines = refused.stderr.strip().splitlines()
        assert os.listdir(raytmp) == [], "a local Ray was started"
        assert refused.returncode == 2 and lines == [
            "error: a trial needs 2 CPU and 0 GPU on one node, but the Ray cluster has 1 CPU (--ray-cpus 1): lower "
            "--cpus-per-trial or raise --ray-cpus"], refused.stderr[-3000:]
        assert not (tmp_path / "out").exists()
    finally:
        shutil.rmtree(raytmp, ignore_errors=True)


def test_a_study_the_search_would_refuse_is_refused_before_ray_is_touched(tmp_path, monkeypatch, capsys):
    """A study with trials run again without --resume, or resumed with another space, needs only
    the study storage to be refused: it is, before Ray is joined (here nothing listens at the
    cluster address; the refusal named the dead address instead) or started."""
    from pipelines.cli import main
    from search_ray_support import free_port, write_space

    from optuna_studies.params import distributions
    from optuna_studies.space import load_space
    from optuna_studies.study import open_storage, prepare_study

    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    space, other = write_space(tmp_path / "a"), write_space(tmp_path / "b", prompt_len=[2, 8])
    url, out = f"sqlite:///{tmp_path}/o.db", tmp_path / "out"
    spc = load_space("trec", str(space), "trec")
    study = prepare_study(open_storage(url), "s", spc, resume=False).study
    study.tell(study.ask(distributions(spc)), 0.5)
    for extra, needle in ((["--space", str(space)], "study 's' already has 1 trial: pass --resume"),
                          (["--space", str(other), "--resume"], "study 's' was started with another search space")):
        with pytest.raises(SystemExit) as exc:
            main(["search", "--task", "trec", "--storage", url, "--study-name", "s", "--out", str(out),
                  "--ray-address", f"127.0.0.1:{free_port()}", *extra])  # nothing listens there
        err = capsys.readouterr().err.strip().splitlines()
        assert exc.value.code == 2 and len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err
        assert not out.exists()
    assert len(optuna.load_study(study_name="s", storage=url).trials) == 1


def test_resuming_a_search_that_finished_is_refused_before_it_runs_anything(tmp_path, monkeypatch):
    """A finished search deletes its work folder and keeps only its best adapter. `--resume
    --overwrite --trials 5` on it ran 2 more trials, ranked them alone ("2 trials") and replaced
    the output, forgetting an earlier best; with the same --trials it failed with "no trial
    finished" and marked the study's MLflow run FAILED."""
    import optuna

    from optuna_studies.search import run_search
    from optuna_studies.space import load_space
    from optuna_studies.study import open_storage, prepare_study

    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    url = f"sqlite:///{tmp_path}/optuna.db"
    space = load_space("trec").with_overrides(trials=3, epochs=None).for_start(warm=False)
    study = prepare_study(open_storage(url), "finished", space, resume=False).study
    for _ in range(3):  # the finished search's trials (its work folder is gone, as after a real one)
        study.tell(study.ask(), 0.5)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "best.json").write_text(json.dumps({"study": {"name": "finished"}}))
    # the output says it at once, before Ray starts: --resume (with or without --overwrite), and an
    # --overwrite of the same study (each refusal used to suggest what the next one refused)
    for flags, needle in (({"resume": True, "overwrite": True}, "holds a finished search .* cannot be resumed"),
                          ({"resume": True, "overwrite": False}, "holds a finished search .* cannot be resumed"),
                          ({"resume": False, "overwrite": True}, "holds the finished search of study 'finished', "
                                                                 "which keeps its trials")):
        with pytest.raises(Ptv2Error, match=needle + ".* start a new search with another --out or --study-name"):
            run_search("trec", "minilm", tmp_path / "out", trials=5, storage=url, study_name="finished",
                       ray_cpus=1, **flags)
    # without the output (moved away), the study itself says it: its trials ran, their work folder is gone
    with pytest.raises(Ptv2Error, match="study 'finished' already finished 3 trials, and their work folder .* is gone .* start a new search"):
        run_search("trec", "minilm", tmp_path / "elsewhere", trials=5, storage=url, study_name="finished",
                   resume=True, ray_cpus=1)
    assert len(optuna.load_study(study_name="finished", storage=url).trials) == 3  # nothing ran
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["best.json"]  # the result is untouched
    assert not list(tmp_path.glob(".out.*search")) and not (tmp_path / "elsewhere").exists()


def test_cli_refuses_a_non_empty_out(tmp_path, capsys):
    from pipelines.cli import main

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit) as exc:
        main(["search", "--task", "trec", "--storage", f"sqlite:///{tmp_path}/o.db", "--out", str(out)])
    assert exc.value.code == 2 and "not empty" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and (out / "keep.txt").read_text() == "mine"


def test_a_second_search_of_the_same_output_is_refused_while_the_first_runs(tmp_path, capsys):
    """Above all a --resume while the first still runs: it would take that search's running trials
    for interrupted ones and run them twice. The lock is held by another process, as a running
    `ptv2 search` holds it."""
    import subprocess
    import sys

    from ptv2_core.busy_lock import beside
    from pipelines.cli import main

    out = tmp_path / "out"
    lock = beside(out, "search")
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom filelock import FileLock\n"
                               f"l = FileLock({str(lock)!r}); l.acquire(); print('held', flush=True); time.sleep(120)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for extra in ([], ["--resume"]):
            with pytest.raises(SystemExit) as exc:
                main(["search", "--task", "trec", "--storage", f"sqlite:///{tmp_path}/o.db", "--out", str(out), *extra])
            err = capsys.readouterr().err.strip().splitlines()
            assert exc.value.code == 2 and len(err) == 1 and "another `ptv2 search` is running study" in err[0], err
        assert sorted(p.name for p in tmp_path.iterdir()) == [lock.name]  # the holder's lock; no study, no output
    finally:
        holder.kill()
        holder.wait()


def test_resuming_a_study_keeps_finished_trials_and_requeues_interrupted_ones(tmp_path):
    import optuna
    from optuna.trial import TrialState

    from optuna_studies.study import finished_count, open_storage, prepare_study

    space = parse_space({"prompt_len": [4, 8], "lr": {"low": 1e-3, "high": 1e-1}, "trials": 3,
                         "enqueue": [{"prompt_len": 8, "lr": 1e-2}]})
    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    state = prepare_study(storage, "s", space, resume=False)
    assert not state.resumed and [t.state for t in state.study.trials] == [TrialState.WAITING]
    assert not prepare_study(storage, "s", space, resume=False).resumed  # nothing ran yet: no --resume needed
    assert len(state.study.trials) == 1  # and the enqueued point is not doubled
    dists = {"prompt_len": optuna.distributions.CategoricalDistribution([4, 8]),
             "lr": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True)}
    done = state.study.ask(dists)
    state.study.tell(done, 0.7)
    killed = state.study.ask(dists)  # left RUNNING by a killed driver

    with pytest.raises(Ptv2Error, match="--resume to continue it, or start a new search with --study-name NAME"):
        prepare_study(storage, "s", space, resume=False)
    other = parse_space({"prompt_len": [4, 16], "lr": {"low": 1e-3, "high": 1e-1}})
    with pytest.raises(Ptv2Error, match="another search space .*; resume it with the same one, or start a new search"):
        prepare_study(storage, "s", other, resume=True)
    # a study whose every trial failed (a learning rate that diverged, say): --resume with the same space
    # would fail again, with another it is refused; the way on is a new study, and the message says only that
    failed = prepare_study(storage, "all-failed", space, resume=False).study
    failed.tell(failed.ask(dists), state=TrialState.FAIL)
    with pytest.raises(Ptv2Error) as err:
        prepare_study(storage, "all-failed", space, resume=False)
    assert str(err.value) == ("study 'all-failed' already has 1 trial, none with a score: start a new search with "
                              "--study-name NAME or another --out (the study keeps its trials)")

    state = prepare_study(storage, "s", space, resume=True)
    trials = {t.number: t for t in state.study.trials}
    assert state.resumed and state.orphans == 1 and state.finished == 1 == finished_count(state.study)
    assert trials[done.number].state == TrialState.COMPLETE and trials[done.number].value == 0.7
    assert trials[killed.number].state == TrialState.FAIL and trials[killed.number].user_attrs["ptv2_orphaned"]
    again = [t for t in trials.values() if t.user_attrs.get("ptv2_retry_of") == killed.number]
    assert len(again) == 1 and again[0].state == TrialState.WAITING
    assert again[0].system_attrs["fixed_params"] == killed.params  # the next ask() runs them again
    # a resume refused or stopped after the marking (an old-style work folder holding another study's records,
    # MLflow down, Ctrl-C before Tune ran them) leaves the retry waiting: the next resume still counts it, once
    # (it said "0 interrupted trial(s) to run again", then ran it)
    state = prepare_study(storage, "s", space, resume=True)
    assert (state.orphans, state.finished) == (1, 1)
    assert [t.user_attrs.get("ptv2_retry_of") for t in state.study.trials].count(killed.number) == 1  # not doubled


def test_a_study_whose_trials_were_interrupted_is_refused_naming_resume(tmp_path):
    """A search stopped (Ctrl-C) or killed before any trial ended leaves its trials RUNNING in the
    study. Run again without --resume, it was refused with "none with a score: start a new search",
    as if its trials had failed, though --resume runs them again; nor has a pruned trial no score."""
    from optuna.trial import TrialState

    from optuna_studies.params import distributions
    from optuna_studies.study import open_storage, prepare_study

    space = parse_space({"prompt_len": [4, 8], "lr": {"low": 1e-3, "high": 1e-1}, "trials": 3})
    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    fresh = "start a new search with --study-name NAME or another --out (the study keeps its trials)"

    def refusal(name: str) -> str:
        with pytest.raises(Ptv2Error) as err:
            prepare_study(storage, name, space, resume=False)
        return str(err.value)

    stopped = prepare_study(storage, "stopped", space, resume=False).study
    for _ in range(2):  # left RUNNING, as a killed driver or a Ctrl-C leaves them
        stopped.ask(distributions(space))
    told = (f"study 'stopped' has 2 trials, none ended: the search was stopped or killed while they ran; run the "
            f"same command with --resume to run them again and go on, or {fresh}")
    assert refusal("stopped") == told
    # a --resume refused or stopped after it marked them (FAIL, ptv2_orphaned; their reruns waiting): the same
    prepare_study(storage, "stopped", space, resume=True)
    assert {t.state for t in stopped.trials} == {TrialState.FAIL, TrialState.WAITING}
    assert refusal("stopped") == told

    mixed = prepare_study(storage, "mixed", space, resume=False).study
    mixed.tell(mixed.ask(distributions(space)), state=TrialState.FAIL)  # diverged, say
    mixed.ask(distributions(space))
    assert refusal("mixed") == (f"study 'mixed' already has 2 trials: 1 ended without a score and 1 was "
                                f"interrupted; run the same command with --resume to run the interrupted one again "
                                f"and go on, or {fresh}")

    pruned = prepare_study(storage, "pruned", space, resume=False).study
    trial = pruned.ask(distributions(space))
    trial.report(0.4, 1)
    pruned.tell(trial, state=TrialState.PRUNED)  # stopped by ASHA after epoch 1: scored, and ranked if none completed
    assert refusal("pruned") == f"study 'pruned' already has 1 trial: pass --resume to continue it, or {fresh}"


def test_a_study_that_never_ran_follows_a_new_space_and_a_resume_keeps_the_trial_settings(tmp_path):
    """A study interrupted before its first trial kept its direction and enqueued points when the
    space changed (a point outside the new choices failed inside Tune); a resume with other epochs,
    data limits or fixed settings ranked trials trained differently together."""
    import optuna
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    from optuna_studies.study import open_storage, prepare_study

    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    first = parse_space({"prompt_len": [4, 64], "lr": {"low": 1e-3, "high": 1e-1}, "enqueue": [{"prompt_len": 64,
                                                                                                   "lr": 1e-2}]})
    settings = {"model": "minilm", "epochs": 4, "max_train": 200, "max_eval": None, "seed": 0, "init": None, "fixed": {},
                "subset": "stratified"}  # as trial_settings records a capped study
    assert [t.system_attrs["fixed_params"] for t in prepare_study(storage, "s", first, False, settings).study.trials] \
        == [{"prompt_len": 64, "lr": 1e-2}]  # enqueued
    other = parse_space({"prompt_len": [4, 8], "lr": {"low": 1e-3, "high": 1e-1}, "metric": "dev_loss"})
    study = prepare_study(storage, "s", other, False, settings).study
    assert study.direction == StudyDirection.MINIMIZE and study.trials == []  # made anew: nothing had run

    dists = {"prompt_len": optuna.distributions.CategoricalDistribution([4, 8]),
             "lr": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True)}
    study.tell(study.ask(dists), 0.3)
    for changed, needle in ((settings | {"epochs": 6}, "epochs 4 → 6"),
                            (settings | {"max_train": None}, "max_train 200 → None"),
                            (settings | {"fixed": {"batch_size": 8}}, "fixed {} → {'batch_size': 8}")):
        with pytest.raises(Ptv2Error, match=f"study 's' ran its trials with other settings \\({needle}\\)"):
            prepare_study(storage, "s", other, True, changed)
    state = prepare_study(storage, "s", other, True, settings)  # the same: resumed
    assert state.resumed and state.finished == 1
    assert [t.state for t in state.study.trials] == [TrialState.COMPLETE]

    # a capped study from before 2026-12-06 recorded no subset rule: its rows were drawn at random,
    # today's are stratified, so it is not resumed; an uncapped one (every row) still is
    recorded_before = {k: v for k, v in settings.items() if k != "subset"}
    for name, capped in (("old-capped", recorded_before), ("old-full", recorded_before | {"max_train": None})):
        old = optuna.create_study(study_name=name, storage=storage)
        old.set_user_attr("ptv2_settings", json.dumps(capped, sort_keys=True))
        old.tell(old.ask(dists), 0.3)
        now = capped | ({"subset": "stratified"} if capped["max_train"] else {})
        if capped["max_train"]:
            with pytest.raises(Ptv2Error, match=r"study 'old-capped' kept a random subset of the rows .*before "
                                                r"2026-12-06.*stratified by label now.*start a new search"):
                prepare_study(storage, name, other, True, now)
        else:
            assert prepare_study(storage, name, other, True, now).resumed


def test_a_resume_keeps_the_task_and_the_task_files_content(tmp_path, monkeypatch):
    """`--resume --task rt` continued a trec study (the task was not among the trial settings a
    resume checks), and so did a resume after the task file's content changed."""
    import optuna

    from optuna_studies.plan import plan_search
    from optuna_studies.search import trial_settings
    from optuna_studies.study import open_storage, prepare_study

    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"prompt_len": [4, 8], "lr": {"low": 1e-3, "high": 1e-2}, "epochs": 2}))
    # enough rows for the plan's load to carve dev and test splits from train, as the trials do
    rows = "".join(f"row number {i},{'ab'[i % 2]}\n" for i in range(20))
    (tmp_path / "train.csv").write_text("text,label\n" + rows)
    task = tmp_path / "task.yaml"
    task.write_text(yaml.safe_dump({"name": "mine", "type": "sequence", "data": {"train": "train.csv"}}))
    url = f"sqlite:///{tmp_path}/o.db"
    storage = open_storage(url)

    def plan(task_ref: str, name: str):
        return plan_search(task_ref, "minilm", tmp_path / "out", trials=2, space=space, storage=url, init=None,
                           max_train=8, max_eval=8, epochs=None, concurrency=1, cpus_per_trial=1, gpus_per_trial=0,
                           overwrite=False, study_name=name, seed=0, resume=True)

    dists = {"prompt_len": optuna.distributions.CategoricalDistribution([4, 8]),
             "lr": optuna.distributions.FloatDistribution(1e-3, 1e-2, log=True)}
    for name, first, then, needle in (("by-name", "trec", "rt", "task trec → rt"),
                                      ("by-file", str(task), str(task), "task_sha256 "),
                                      ("by-data", str(task), str(task), "task_sha256 ")):
        p = plan(first, name)
        assert trial_settings(p)["subset"] == "stratified"  # capped rows (max_train 8): the rule is recorded
        study = prepare_study(storage, name, p.space, False, trial_settings(p)).study
        study.tell(study.ask(dists), 0.5)
        assert prepare_study(storage, name, p.space, True, trial_settings(plan(first, name))).resumed  # the same
        if name == "by-data":
            (tmp_path / "train.csv").write_text("text,label\n" + rows.replace(",a", ",x").replace(",b", ",a")
                                                .replace(",x", ",b"))  # other labels
        if name == "by-file":
            moved = tmp_path / "moved" / "task.yaml"  # the same file elsewhere is the same task
            moved.parent.mkdir()
            moved.write_text(task.read_text())
            (moved.parent / "train.csv").write_text((tmp_path / "train.csv").read_text())
            assert prepare_study(storage, name, p.space, True, trial_settings(plan(str(moved), name))).resumed
            task.write_text(task.read_text() + "labels: [b, a]\n")  # another label order: other trials
        p = plan(then, name)
        with pytest.raises(Ptv2Error, match=f"study '{name}' ran its trials with other settings \\({needle}"):
            prepare_study(storage, name, p.space, True, trial_settings(p))


def test_a_resume_from_a_prompt_pre_trained_again_in_its_folder_is_refused(tiny_model, tiny_pretrained, tmp_path):
    """`ptv2 pretrain --overwrite` into the folder a study's --init named, then `search --resume`: the
    study kept the folder's path alone, so trials from the old and the new prompt were ranked together.
    The weights' digest tells the prompts apart; a study that never recorded one still resumes."""
    import hashlib
    import shutil

    from optuna_studies.plan import plan_search
    from optuna_studies.search import trial_settings
    from optuna_studies.study import open_storage, prepare_study
    from ptv2_core.multitask.pretrained import FORMAT, WEIGHTS, _bytes_of, read_pretrained_state

    pre = shutil.copytree(tiny_pretrained, tmp_path / "pre")
    url = f"sqlite:///{tmp_path}/o.db"
    storage = open_storage(url)
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"prompt_len": [4, 8], "lr": {"low": 1e-3, "high": 1e-2}, "epochs": 1}))

    def plan(name: str):
        return plan_search("trec", tiny_model, tmp_path / "out", trials=2, space=space, storage=url, init=pre,
                           max_train=8, max_eval=8, epochs=1, concurrency=1, cpus_per_trial=1, gpus_per_trial=0,
                           overwrite=False, study_name=name, seed=0, resume=True)

    held = trial_settings(plan("s"))
    assert held["init_sha256"] == "sha256:" + hashlib.sha256((pre / WEIGHTS).read_bytes()).hexdigest()
    for name, settings in (("s", held), ("older", {k: v for k, v in held.items() if k != "init_sha256"})):
        study = prepare_study(storage, name, plan(name).space, False, settings).study
        study.tell(study.ask({"prompt_len": optuna.distributions.CategoricalDistribution([4, 8])}), 0.5)
    # pre-trained again into the same folder: other weights
    state = {k: v + 1 for k, v in read_pretrained_state(pre).items()}
    (pre / WEIGHTS).write_bytes(_bytes_of(state, {"format": FORMAT}))
    p = plan("s")
    with pytest.raises(Ptv2Error, match="study 's' ran its trials with other settings \\(init_sha256 sha256:"):
        prepare_study(storage, "s", p.space, True, trial_settings(p))
    assert prepare_study(storage, "older", p.space, True, trial_settings(plan("older"))).resumed  # not recorded


def test_the_check_before_ray_leaves_a_storage_without_optunas_version_tables_as_it_is(tmp_path):
    """The study check made before Ray opened the storage with Optuna's RDBStorage, which stamps a
    schema version (alembic_version, version_info) into a storage without one: a read-only check
    wrote to it."""
    import sqlite3

    from optuna_studies.plan import plan_search
    from optuna_studies.search import check_study_before_ray, trial_settings
    from optuna_studies.study import open_storage, prepare_study

    url = f"sqlite:///{tmp_path}/o.db"
    p = plan_search("trec", "minilm", tmp_path / "out", trials=2, space=None, storage=url, init=None,
                    max_train=8, max_eval=8, epochs=None, concurrency=1, cpus_per_trial=1, gpus_per_trial=0,
                    overwrite=False, study_name="s", seed=0, resume=True)
    prepare_study(open_storage(url), "s", p.space, False, trial_settings(p))
    for table in ("alembic_version", "version_info"):
        with sqlite3.connect(tmp_path / "o.db") as db:
            rows = db.execute(f"SELECT * FROM {table}").fetchall()
            db.execute(f"DROP TABLE {table}" if table == "alembic_version" else f"DELETE FROM {table}")
        check_study_before_ray(p, True)
        with sqlite3.connect(tmp_path / "o.db") as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            assert table not in tables if table == "alembic_version" else not db.execute(
                f"SELECT * FROM {table}").fetchall(), table
            if table == "alembic_version":  # back as it was, for the next one
                db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
                db.executemany("INSERT INTO alembic_version VALUES (?)", rows)


def test_a_search_reads_its_trial_settings_once(tmp_path, monkeypatch):
    """The trial settings (a task file's data and a prompt's weights, read through) were made twice, before
    Ray and again once joined: they are made once, and both checks use them."""
    from optuna_studies import search
    from optuna_studies.space import load_space
    from optuna_studies.study import open_storage, prepare_study

    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    made = []
    real = search.trial_settings
    monkeypatch.setattr(search, "trial_settings", lambda plan: made.append(plan) or real(plan))
    url = f"sqlite:///{tmp_path}/optuna.db"
    space = load_space("trec").with_overrides(trials=1, epochs=None).for_start(warm=False)
    study = prepare_study(open_storage(url), "done", space, resume=False).study
    study.tell(study.ask(), 0.5)  # a finished search (its work folder gone): refused once Ray is joined
    with pytest.raises(Ptv2Error, match="study 'done' already finished 1 trial"):
        search.run_search("trec", "minilm", tmp_path / "out", trials=1, storage=url, study_name="done",
                          resume=True, ray_cpus=1)
    assert len(made) == 1


def test_the_study_records_each_trial_end_as_optuna_sees_it(tmp_path):
    """Through Ray's OptunaSearch (the searcher the Tuner runs): a trial that ran every epoch is
    COMPLETE, one ASHA stopped early is PRUNED with its running best at the epoch it was stopped on
    (which Ray passes to on_trial_complete only: it was lost, and a trial stopped at epoch 1 had no
    value), and a diverged one is FAIL, so optuna-dashboard and TPE see what happened."""
    from optuna.trial import TrialState

    from optuna_studies.searcher import StudySearch
    from optuna_studies.study import open_storage, prepare_study

    space = parse_space({"prompt_len": [4, 8], "lr": {"low": 1e-3, "high": 1e-1}, "epochs": 3, "trials": 3})
    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    prepare_study(storage, "s", space, resume=False)
    search = StudySearch(space, "s", storage, "best_objective")
    runs = {"full": [0.5, 0.6, 0.55], "stopped": [0.4, 0.45], "nan": [0.3], "stopped_at_1": [0.35]}
    for number, (trial_id, scores) in enumerate(runs.items()):
        config = search.suggest(trial_id)  # the trial config carries its Optuna number
        assert config is not None and config["optuna_number"] == number
        best = float("-inf")
        for epoch, score in enumerate(scores, 1):
            best = max(best, score)
            last = {"best_objective": best, "objective": score, "epoch": epoch, "training_iteration": epoch}
            if trial_id.startswith("stopped") and epoch == len(scores):
                continue  # as Ray does: the result ASHA stops a trial on goes to on_trial_complete only
            search.on_trial_result(trial_id, last)
        if trial_id == "nan":
            last = {"failure": "diverged: loss is nan", "epoch": 2, "training_iteration": 2}
        search.on_trial_complete(trial_id, result=last)

    trials = {t.user_attrs["ray_trial_id"]: t for t in optuna.load_study(study_name="s", storage=storage).trials}
    assert {k: t.state for k, t in trials.items()} == {"full": TrialState.COMPLETE, "stopped": TrialState.PRUNED,
                                                       "nan": TrialState.FAIL, "stopped_at_1": TrialState.PRUNED}
    assert trials["full"].value == 0.6 and trials["stopped"].value == 0.45 and trials["nan"].value is None
    assert trials["stopped"].intermediate_values == {1: 0.4, 2: 0.45}
    assert trials["stopped_at_1"].value == 0.35 and trials["stopped_at_1"].intermediate_values == {1: 0.35}


def test_the_searcher_pickles_without_the_storage_password(tmp_path):
    """Tune writes the searcher into the work folder (tuner.pkl, searcher-state-*.pkl) and Optuna's
    storage pickled its URL with the password. The pickle keeps it masked; unpickled in the process
    that opened the storage, or where PTV2_OPTUNA_STORAGE is that URL (the Ray head under Ray
    Client), the searcher works on: it tells the trial it holds."""
    import pickle
    import secrets
    import subprocess
    import sys
    import uuid

    from optuna.trial import TrialState
    from sqlalchemy.engine import make_url

    from optuna_studies.searcher import StudySearch
    from optuna_studies.study import delete_study, open_storage, prepare_study

    url = os.environ.get("PTV2_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("PTV2_TEST_POSTGRES_URL is not set (.ci/run sets it to the local PostgreSQL)")
    secret = f"pw-{secrets.token_hex(6)}"  # the test server trusts local connections: any password will do
    url = make_url(url).set(password=secret).render_as_string(hide_password=False)
    name = f"ptv2-test-{uuid.uuid4().hex[:10]}"
    space = parse_space({"prompt_len": [4, 8], "lr": {"low": 1e-3, "high": 1e-1}, "epochs": 1, "trials": 2})
    storage = open_storage(url)
    try:
        prepare_study(storage, name, space, resume=False)
        search = StudySearch(space, name, storage, "best_objective")
        assert search.suggest("a") is not None  # a live trial, as when Tune checkpoints mid-search
        search.save(str(tmp_path / "searcher-state.pkl"))
        blob = pickle.dumps(search)
        assert secret.encode() not in blob and secret.encode() not in (tmp_path / "searcher-state.pkl").read_bytes()
        assert b"***" in blob  # the masked URL is what it keeps

        copy = pickle.loads(blob)  # in the process that pickled it (Tune copies its searcher): the URL is known
        copy.on_trial_complete("a", result={"best_objective": 0.7, "epoch": 1, "training_iteration": 1})
        trial = optuna.load_study(study_name=name, storage=storage).trials[0]
        assert (trial.state, trial.value, trial.user_attrs["ray_trial_id"]) == (TrialState.COMPLETE, 0.7, "a")
        restored = StudySearch(space, name, storage, "best_objective")
        restored.restore(str(tmp_path / "searcher-state.pkl"))
        assert restored.suggest("b")["optuna_number"] == 1

        (tmp_path / "tuner.pkl").write_bytes(blob)  # as Tune's tuner.pkl holds it, or Ray Client ships it
        load = ("import pickle, sys\nfrom ptv2_core.errors import Ptv2Error\ntry:\n"
                f"    s = pickle.load(open({str(tmp_path / 'tuner.pkl')!r}, 'rb'))\n"
                "    print(s._ot_study.trials[0].state.name)\nexcept Ptv2Error as e:\n    print('error:', e)\n")
        env = {k: v for k, v in os.environ.items() if k != "PTV2_OPTUNA_STORAGE"}
        for extra, expected in (({}, "error: the study storage postgresql+psycopg2://"),
                                ({"PTV2_OPTUNA_STORAGE": url}, "COMPLETE")):
            out = subprocess.run([sys.executable, "-c", load], env=env | extra, capture_output=True, text=True)
            assert out.stdout.startswith(expected), (out.stdout, out.stderr[-2000:])
    finally:
        delete_study(url, name)


def test_a_trial_end_the_storage_refuses_for_a_moment_is_told_again(tmp_path):
    """Ray's OptunaSearch logs a failed tell as a warning and goes on: a trial that ended while the
    storage was busy stayed RUNNING in the study, and --resume ran it again. Here another connection
    holds the sqlite file locked past the driver's 5 s wait, then lets go."""
    import sqlite3
    import threading

    from optuna.trial import TrialState

    from optuna_studies.searcher import StudySearch
    from optuna_studies.study import open_storage, prepare_study

    space = parse_space({"prompt_len": [4, 8], "lr": {"low": 1e-3, "high": 1e-1}, "epochs": 1, "trials": 1})
    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    prepare_study(storage, "s", space, resume=False)
    search = StudySearch(space, "s", storage, "best_objective")
    assert search.suggest("a") is not None
    holder = sqlite3.connect(tmp_path / "optuna.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(6.0, holder.rollback)
    release.start()
    try:
        started = time.time()
        search.on_trial_complete("a", result={"best_objective": 0.7, "epoch": 1, "training_iteration": 1})
        took = time.time() - started
    finally:
        release.join()
        holder.close()
    trial = optuna.load_study(study_name="s", storage=storage).trials[0]
    assert (trial.state, trial.value) == (TrialState.COMPLETE, 0.7)
    assert took > 6  # told once the file was free: the first tell was refused


def test_a_resumed_search_does_not_draw_its_start_up_points_again(tmp_path):
    """A resumed search gets a new searcher; seeded as the first, its random start-up draws would
    repeat the configurations already run (seen: a resumed trec search re-ran trial 0's exact
    prompt length and learning rate). A new study still draws as the seed says."""
    from optuna_studies.searcher import StudySearch
    from optuna_studies.study import open_storage, prepare_study

    space = parse_space({"prompt_len": [4, 8, 16, 32], "lr": {"low": 1e-3, "high": 1e-1}, "epochs": 1, "trials": 6,
                         "sampler": {"n_startup_trials": 6, "seed": 0}})

    def run(search, ids):
        configs = []
        for trial_id in ids:
            config = search.suggest(trial_id)
            configs.append((config["prompt_len"], config["lr"]))
            search.on_trial_complete(trial_id, result={"best_objective": 0.5, "epoch": 1, "training_iteration": 1})
        return configs

    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    prepare_study(storage, "s", space, resume=False)
    first = run(StudySearch(space, "s", storage, "best_objective"), ["a", "b"])
    prepare_study(storage, "s", space, resume=True)
    resumed = run(StudySearch(space, "s", storage, "best_objective"), ["c", "d"])
    assert not set(resumed) & set(first), (first, resumed)  # all four differ: the lr is continuous

    storage2 = open_storage(f"sqlite:///{tmp_path}/optuna2.db")
    prepare_study(storage2, "s", space, resume=False)
    assert run(StudySearch(space, "s", storage2, "best_objective"), ["a", "b"]) == first  # a new study: as seeded


@pytest.mark.parametrize("mode", ["max", "min"])
def test_the_best_trial_breaks_a_tie_on_score_by_the_shorter_prompt(tmp_path, mode):
    from optuna_studies import records

    good, worse = (0.9, 0.8) if mode == "max" else (0.1, 0.2)
    better = 1.0 if mode == "max" else 0.0
    rows = [  # (number, prompt_len, score, has an adapter, status)
        (0, 32, good, True, "completed"), (1, 8, worse, True, "completed"), (2, 16, good, True, "completed"),
        (3, 4, good, False, "completed"), (4, 16, good, True, "completed"), (5, 4, float("nan"), True, "completed"),
        (6, 4, better, True, "pruned")]
    for number, length, score, has_adapter, status in rows:
        records.write_record(tmp_path, {"number": number, "ray_trial_id": f"t{number}", "prompt_len": length,
                                        "best_score": score, "status": status,
                                        "adapter": str(tmp_path / f"a{number}") if has_adapter else None})
    best = records.best_record(records.read_records(tmp_path), mode)
    # 0, 2 and 4 tie on the best score with an adapter (3 has none, 5 scored NaN, 6 was pruned: its score is
    # after fewer epochs, and Optuna's best_trial is a COMPLETE one): the shortest prompt wins, and of the
    # two at 16 positions the earlier trial
    assert (best["number"], best["prompt_len"]) == (2, 16)
    # with no completed trial with a score, the best pruned one
    only_pruned = [r for r in records.read_records(tmp_path) if r["number"] in (1, 3, 5, 6)]
    for r in only_pruned:
        r["status"] = "pruned" if r["number"] != 5 else "completed"
    assert records.best_record(only_pruned, mode)["number"] == 6


def test_a_record_a_crash_cut_short_is_left_out_and_named(tmp_path):
    """A record that is not valid JSON (cut short by a crash, garbled) made every read of the work
    folder a JSONDecodeError traceback (a --resume among them); it is left out, and named with why."""
    from optuna_studies import records

    assert records.read_records(tmp_path) == [] == records.unreadable_records(tmp_path)  # no trials/ yet
    adapter = records.adapter_dir(tmp_path, "a1")
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    kept = records.write_record(tmp_path, {"number": 0, "ray_trial_id": "a1", "status": "completed",
                                           "best_score": 0.5, "adapter": str(adapter)})
    cut = records.trials_dir(tmp_path) / "b2.json"
    cut.write_text(kept.read_text()[:30])
    (records.trials_dir(tmp_path) / "c3.json").write_text("[1, 2]")
    (records.trials_dir(tmp_path) / "d4.json").write_bytes(b"\xff\xfe{")
    assert [r["ray_trial_id"] for r in records.read_records(tmp_path)] == ["a1"]
    assert {p.name: why for p, why in records.unreadable_records(tmp_path)} == {
        "b2.json": "not valid JSON (a crash as it was written?)", "c3.json": "not a trial record (not a JSON object)",
        "d4.json": "not valid JSON (a crash as it was written?)"}


def test_a_resume_runs_again_the_ended_trials_the_work_folder_has_no_record_of(tmp_path):
    """The study is told a trial ended before the driver keeps its adapter and record: a driver killed
    between the two left a trial --resume counted as done, which no output had. tests/test_search_ray.py
    runs it through run_search; here the study's side: marked once, rerun once, and counted as
    interrupted by a search run again without --resume."""
    from optuna.trial import TrialState

    from optuna_studies.study import finished_count, lost_trials, open_storage, prepare_study, rerun_lost

    space = parse_space({"prompt_len": [4, 8], "lr": {"low": 1e-3, "high": 1e-1}, "trials": 3})
    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    study = prepare_study(storage, "s", space, resume=False).study
    dists = {"prompt_len": optuna.distributions.CategoricalDistribution([4, 8]),
             "lr": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True)}
    ended = {}
    for rid, state in (("kept", TrialState.COMPLETE), ("lost", TrialState.PRUNED), ("failed", TrialState.FAIL)):
        trial = study.ask(dists)
        trial.set_user_attr("ray_trial_id", rid)
        study.tell(trial, 0.5 if state == TrialState.COMPLETE else None, state=state)
        ended[rid] = trial.number
    assert finished_count(study) == 3
    # the failed trial has no adapter to lose: it is not run again for a missing record
    assert lost_trials(study, {"kept"}) == [ended["lost"]]
    assert rerun_lost(study, {"kept"}) == [ended["lost"]]
    assert rerun_lost(study, {"kept"}) == []  # marked: not enqueued twice
    assert finished_count(study) == 2
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert [t.user_attrs["ptv2_retry_of"] for t in waiting] == [ended["lost"]]
    assert waiting[0].system_attrs["fixed_params"] == study.trials[ended["lost"]].params
    state = prepare_study(storage, "s", space, resume=True)
    assert (state.finished, state.orphans) == (2, 1)
    # run again without --resume, a study whose only trial was lost says it was interrupted (--resume runs it)
    alone = prepare_study(storage, "alone", space, resume=False).study
    trial = alone.ask(dists)
    trial.set_user_attr("ray_trial_id", "gone")
    alone.tell(trial, 0.5)
    assert rerun_lost(alone, set()) == [trial.number]
    with pytest.raises(Ptv2Error, match="study 'alone' has 1 trial, none ended: .* --resume to run it again"):
        prepare_study(storage, "alone", space, resume=False)


def test_an_old_style_work_folder_is_taken_with_its_adapters_only_when_its_records_are_the_studys(tmp_path):
    """A --resume takes the work folder of a search interrupted under the old name, .<out>.search
    (tests/test_search_ray.py runs it through run_search): its records name their adapters by the
    old path, which the rename leaves behind, and a record of a trial numbered otherwise in the
    study is another study's."""
    from optuna_studies import records
    from optuna_studies.work import adopt_legacy, legacy_work_dir, work_dir

    out, url = tmp_path / "out", f"sqlite:///{tmp_path}/optuna.db"
    legacy, work = legacy_work_dir(out), work_dir(out, "s")
    assert legacy == tmp_path / ".out.search"
    assert adopt_legacy(work, out, "s", url, {"a1": 0}) is None  # none there: nothing to take
    for number, rid in ((0, "a1"), (1, "b2")):
        adapter = records.adapter_dir(legacy, rid)
        adapter.mkdir(parents=True)
        (adapter / "adapter_config.json").write_text("{}")
        records.write_record(legacy, {"number": number, "ray_trial_id": rid, "status": "completed", "best_score": 0.5,
                                      "adapter": str(adapter)})
    # b2 is trial 3 of this study, not trial 1: refused, nothing moved
    with pytest.raises(Ptv2Error, match=f"{legacy} .*holds 1 of 2 trial record.* \\(trials/b2.json\\)"):
        adopt_legacy(work, out, "s", url, {"a1": 0, "b2": 3})
    assert legacy.is_dir() and not work.exists()
    assert adopt_legacy(work, out, "s", url, {"a1": 0, "b2": 1, "c3": 2}) == legacy
    assert not legacy.exists()
    taken = records.read_records(work)
    assert [r["adapter"] for r in taken] == [str(records.adapter_dir(work, rid)) for rid in ("a1", "b2")]
    assert all((Path(r["adapter"]) / "adapter_config.json").is_file() for r in taken)


def test_trial_runs_left_running_end_as_their_trials_did_and_the_interrupted_ones_killed(tmp_path, monkeypatch):
    """A trial run left RUNNING is ended by a resume, a stopped search and (since) a finished one.
    Each was KILLED and tagged interrupted, also where the trial had ended (its record written) and
    only its run's end was lost to a failing MLflow store: those end as their trials did."""
    from mlflow.tracking import MlflowClient

    from optuna_studies import tracking

    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    parent = tracking.open_parent_run("ptv2-search", uri, "study", None, {}, {})
    runs = {name: tracking.start_trial_run(parent, name, {}, {"ptv2.status": "running"})
            for name in ("completed", "diverged", "interrupted")}
    trials = [{"mlflow_run_id": runs["completed"], "status": "completed", "best_score": 0.5, "failure": None},
              {"mlflow_run_id": runs["diverged"], "status": "diverged", "best_score": None, "failure": "diverged: nan"},
              {"mlflow_run_id": None, "status": "completed", "best_score": 0.4, "failure": None}]  # its run never opened
    assert tracking.end_stale_trial_runs(parent, trials) == 3
    client = MlflowClient(uri)
    ended = {name: client.get_run(run) for name, run in runs.items()}
    assert {name: (r.info.status, r.data.tags["ptv2.status"]) for name, r in ended.items()} == {
        "completed": ("FINISHED", "completed"), "diverged": ("FAILED", "diverged"), "interrupted": ("KILLED", "interrupted")}
    assert ended["diverged"].data.tags["ptv2.failure"] == "diverged: nan"
    assert tracking.end_stale_trial_runs(parent, trials) == 0  # none left RUNNING


def test_failure_summary_names_the_commonest_reasons_first():
    from optuna_studies.records import failure_summary

    recs = [{"status": "failed", "failure": "failed: out of memory"}] * 3 + [
        {"status": "diverged", "failure": "diverged: loss became nan"}, {"status": "pruned", "failure": None},
        {"status": "failed", "failure": "failed: " + "x" * 500}]
    text = failure_summary(recs)
    assert text.startswith("6 trials: 3 × failed: out of memory; 1 × ") and text.endswith("; 2 other reasons")
    assert len(text) < 400  # a long reason is cut
    assert failure_summary([]) == "no trial ran"
    assert failure_summary(recs[:1]) == "1 trial: 1 × failed: out of memory"  # it said "1 trial(s)"


def test_counts_in_search_lines_agree_with_their_number():
    """A search of one trial said "(1 trials, ...)" and "any of its 1 trials"."""
    from optuna_studies.search import stopped_message
    from ptv2_core.wording import count_of

    assert [count_of(n, "trial") for n in (0, 1, 2)] == ["0 trials", "1 trial", "2 trials"]
    assert "1 trials" not in stopped_message(0, 1) and "1 trial" in stopped_message(0, 1)


def test_overwriting_an_output_folder_replaces_the_search_files_only(tmp_path):
    """`ptv2 search --out . --overwrite` deleted everything in the folder (the whole folder was
    swapped for the new output): the user's own files went with it. Now only a search's own
    entries are replaced, `best.json` last; anything else stays."""
    from optuna_studies.output import write_output

    out = tmp_path / "out"
    (out / "src").mkdir(parents=True)
    (out / "src" / "main.py").write_text("print('mine')\n")
    (out / "thesis.tex").write_text("\\documentclass{article}\n")
    (out / "adapter").mkdir()
    (out / "adapter" / "stale.bin").write_text("old adapter")
    (out / "best.json").write_text('{"old": true}\n')
    (out / "length_lr.png").write_text("old plot")  # a previous output's entry this one lacks
    adapter = tmp_path / "new-adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    table = tmp_path / "trials.csv"
    table.write_text("trial,score\n")

    assert write_output(out, {"best": 1}, adapter, {"trials.csv": table}) == out.resolve()
    assert (out / "thesis.tex").read_text() == "\\documentclass{article}\n"
    assert (out / "src" / "main.py").read_text() == "print('mine')\n"
    assert json.loads((out / "best.json").read_text()) == {"best": 1}
    assert sorted(p.name for p in (out / "adapter").iterdir()) == ["adapter_config.json"]
    assert (out / "trials.csv").read_text() == "trial,score\n" and not (out / "length_lr.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no work folders left


def test_tunes_failed_copy_of_a_temporary_file_renamed_meanwhile_is_not_shown_and_other_failures_are():
    """Ray Tune copies its driver's folder to the storage path in a background thread while the
    searcher saves its state there as a temporary file renamed into place; a copy that listed the
    temporary file fails on it and Tune logged "Saving experiment state ... failed" with a traceback
    (seen under load as a search's last trial ended). That one is left out; any other is shown.
    The errors are raised by pyarrow's own copy, as Tune's storage calls it."""
    import logging

    import pyarrow.fs

    from optuna_studies.tuner import quiet_tunes_stop

    quiet_tunes_stop()
    shown: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            shown.append(record)

    log = logging.getLogger("ray.tune.execution.experiment_state")  # Tune's module logger
    handler = Keep()
    log.addHandler(handler)
    try:
        for missing in ("run-tmp-1/driver_artifacts/.0ffad188-5d94-4833-8c62-2cb9fb8a6e0b-tmp-searcher-state.pkl",
                        "run-tmp-1/driver_artifacts/searcher-state.pkl"):  # only the first is a temporary file
            try:  # a file gone between the listing and the copy: pyarrow's FileNotFoundError names it
                pyarrow.fs.copy_files(f"/nonexistent-ptv2/{missing}", "/tmp/nowhere-ptv2")
            except FileNotFoundError:
                log.error("Saving experiment state to storage at '/x/ray/run-1' failed with exception: ",
                          exc_info=True)
        try:
            raise PermissionError(13, "Permission denied", "/x/ray/run-1/.a-tmp-searcher-state.pkl")
        except PermissionError:
            log.error("Saving experiment state to storage at '/x/ray/run-1' failed with exception: ", exc_info=True)
    finally:
        log.removeHandler(handler)
    assert [type(r.exc_info[1]).__name__ for r in shown] == ["FileNotFoundError", "PermissionError"]
    assert "tmp-searcher-state" not in str(shown[0].exc_info[1])
