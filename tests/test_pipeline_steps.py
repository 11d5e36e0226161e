"""The plain functions behind the pipeline's components, on real packaged data and MiniLM."""
from __future__ import annotations

import json

import pytest
import yaml

from components.data import prepare_data, prepared_name, task_yaml
from components.pretrain_step import flat_scores
from components.search_step import space_file
from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks import load_task


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("prep") / "data"
    manifest = prepare_data(["trec", "wnut16"], out, seed=3, max_train=48, max_eval=24)
    return out, manifest


def test_prepared_splits_are_the_task_splits(prepared):
    out, manifest = prepared
    assert set(manifest["tasks"]) == {"trec", "wnut16"}
    for task in ("trec", "wnut16"):
        spec_a, a = load_task(str(task_yaml(out, task)))
        spec_b, b = load_task(task, seed=3, max_train=48, max_eval=24)
        assert (spec_a.name, spec_a.type, spec_a.labels, spec_a.metric) == (spec_b.name, spec_b.type, spec_b.labels, spec_b.metric)
        for split in ("train", "dev", "test"):
            assert a[split].to_list() == b[split].to_list(), (task, split)
        assert manifest["tasks"][task]["rows"] == {"train": 48, "dev": 24, "test": 24}


def test_data_hash_is_stable_and_data_dependent(prepared, tmp_path):
    _, manifest = prepared
    again = prepare_data(["trec"], tmp_path / "again", seed=3, max_train=48, max_eval=24)
    other = prepare_data(["trec"], tmp_path / "other", seed=4, max_train=48, max_eval=24)
    assert again["tasks"]["trec"]["hash"] == manifest["tasks"]["trec"]["hash"]
    assert other["tasks"]["trec"]["hash"] != manifest["tasks"]["trec"]["hash"]


def test_prepare_bad_task_writes_nothing(tmp_path):
    with pytest.raises(Ptv2Error, match="unknown task 'nope'"):
        prepare_data(["trec", "nope"], tmp_path / "data")
    assert not (tmp_path / "data").exists()
    assert list(tmp_path.iterdir()) == []  # no staging folder left behind either
    ok = tmp_path / "ok"
    prepare_data(["trec"], ok, max_train=8, max_eval=8)
    with pytest.raises(Ptv2Error, match="not in the prepared data"):
        task_yaml(ok, "rt")


USER_TASK = "name: {name}\ntype: sequence\ndata:\n  train: rows.csv\n"


def user_task(folder, name: str = "my-intents"):
    folder.mkdir()
    rows = "".join(f"{w} {i},{'greet' if w in ('hi', 'hello') else 'bye'}\n" for i in range(6) for w in ("hi", "hello", "bye", "ciao"))
    (folder / "rows.csv").write_text("text,label\n" + rows)
    (folder / "task.yaml").write_text(USER_TASK.format(name=name))
    return str(folder / "task.yaml")


def test_steps_find_a_user_task_by_its_yaml_path(tmp_path):
    """The pipeline's per-task steps get the reference the user gave (a YAML path), the prepared
    folder names the task by its `name:`."""
    ref = user_task(tmp_path / "mine")
    manifest = prepare_data(["trec", ref], tmp_path / "data", max_train=8, max_eval=8)
    assert set(manifest["tasks"]) == {"trec", "my-intents"} and manifest["tasks"]["my-intents"]["ref"] == ref
    assert prepared_name(tmp_path / "data", ref) == prepared_name(tmp_path / "data", "my-intents") == "my-intents"
    assert task_yaml(tmp_path / "data", ref) == tmp_path / "data" / "my-intents" / "task.yaml"
    assert prepared_name(tmp_path / "data", "trec") == "trec"


def test_two_tasks_with_one_name_are_refused(tmp_path):
    a, b = user_task(tmp_path / "a"), user_task(tmp_path / "b")
    with pytest.raises(Ptv2Error, match=f"tasks '{a}' and '{b}' are both named 'my-intents'"):
        prepare_data([a, b], tmp_path / "data", max_train=8, max_eval=8)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("name", ["../../escaped", "/ABS/owned"])
def test_a_task_name_cannot_put_the_prepared_splits_outside_the_output(tmp_path, name):
    """`name: ../../x` (or an absolute path) in a task YAML wrote train/dev/test.parquet outside
    the output folder (`ptv2 run --tasks my.yaml`)."""
    ref = user_task(tmp_path / "mine", name.replace("/ABS", str(tmp_path)))
    with pytest.raises(Ptv2Error, match="cannot name a folder"):
        prepare_data([ref], tmp_path / "a" / "b" / "data", max_train=8, max_eval=8)
    assert sorted(p.name for p in tmp_path.rglob("*.parquet")) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "mine"]


def test_a_hub_task_from_a_local_folder_is_prepared_inside_the_output(tmp_path):
    """A ``hub:`` task is named by its data set (``user/data``, a local folder's path): its
    prepared folder was that path, outside the output for an absolute one."""
    src = tmp_path / "src" / "intents"
    src.mkdir(parents=True)
    (src / "train.csv").write_text("text,label\n" + "".join(f"w{i},{'ab'[i % 2]}\n" for i in range(40)))
    out = tmp_path / "data"
    manifest = prepare_data([f"hub:{src}"], out, max_train=8, max_eval=8)
    (name,) = manifest["tasks"]
    assert "/" not in name and (out / name / "train.parquet").is_file()
    assert prepared_name(out, f"hub:{src}") == name and task_yaml(out, name).is_relative_to(out)
    assert sorted(p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*.parquet")) == ["data"] * 3


def test_registered_names_of_tasks():
    from components.registry.names import default_name
    from ptv2_core.tasks import task_name

    assert default_name("trec") == default_name("ptv2-trec") == "ptv2-trec"
    assert default_name("wnut16", "team-") == "team-wnut16"
    assert default_name(task_name("hub:someone/intents:en")) == "ptv2-someone-intents"  # no '/' in a model name
    assert task_name("trec") == "trec"


def test_space_file_applies_pipeline_choices(tmp_path):
    path = space_file("trec", tmp_path, lengths=[8, 2], lr_range=(1e-3, 2e-2), trials=3, epochs=2)
    doc = yaml.safe_load(path.read_text())
    assert doc["prompt_len"] == [2, 8] and doc["trials"] == 3 and doc["epochs"] == 2
    assert doc["lr"] == {"low": 1e-3, "high": 2e-2, "log": True}
    assert all(e["prompt_len"] in (2, 8) for e in doc.get("enqueue", []))
    from optuna_studies.space import load_space

    assert load_space("trec", path).prompt_lens == (2, 8)  # the search accepts it
    hub = space_file("someone/intents", tmp_path, lengths=[4], lr_range=(1e-3, 2e-2), trials=3, epochs=2)
    assert hub.parent == tmp_path and load_space("someone/intents", hub).prompt_lens == (4,)  # '/' is no folder


def test_pretrain_step_skips_its_work_when_the_prompt_is_not_used(prepared, tmp_path, capsys):
    """use_pretrained_prompt false: no later step starts from the prompt, and the step pre-trained it
    in full anyway (the most expensive step of a run). The component itself, run in-process with real
    kfp artifacts: nothing trained or logged, a marker that no loader takes for a prompt, in seconds
    (50 epochs of real pre-training take minutes)."""
    import time

    from kfp.dsl import HTML, Dataset, Metrics, Model

    from components.kfp_components import pretrain_prompt_op
    from ptv2_core.multitask import read_pretrained_config

    out, _ = prepared
    prompt, metrics, plots = Model(uri=str(tmp_path / "prompt")), Metrics(uri=str(tmp_path / "metrics")), \
        HTML(uri=str(tmp_path / "plots.html"))
    t0 = time.perf_counter()
    pretrain_prompt_op.python_func(data=Dataset(uri=str(out)), tasks=["trec", "wnut16"], model="minilm",
                                   lengths=[4, 8], epochs=50, lr=1e-2, seed=3,
                                   mlflow_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", use_pretrained=False,
                                   prompt=prompt, metrics=metrics, plots=plots)
    assert time.perf_counter() - t0 < 20
    assert [p.name for p in (tmp_path / "prompt").iterdir()] == ["no_prompt.json"]
    marker = json.loads((tmp_path / "prompt" / "no_prompt.json").read_text())
    assert marker["format"] == "ptv2-no-prompt" and "use_pretrained_prompt is false" in marker["reason"]
    with pytest.raises(Ptv2Error, match="no pre-trained prompt at .*prompt_config.json is missing"):
        read_pretrained_config(tmp_path / "prompt")  # what --init and the search's init read
    assert not (tmp_path / "mlflow.db").exists()  # no pre-training run logged
    # the model (pinned by the first step) travels on in the prompt's metadata even when skipped: the
    # search and final steps read it there (kfp.local hands a ParallelFor the loop item for a step output)
    assert prompt.metadata == {"skipped": True, "lengths": [], "mlflow_run_id": "", "model": "minilm"}
    assert metrics.metadata == {}
    assert "pre-training skipped" in (tmp_path / "plots.html").read_text()
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("ptv2 ▸")]
    assert lines == ["ptv2 ▸ pretrain: skipped (use_pretrained_prompt is false: no step starts from a "
                     "pre-trained prompt)"]


def test_flat_scores_for_kfp_metrics():
    assert flat_scores({"trec": {"4": {"score": 0.5, "loss": 1.0}}}) == {"dev_trec_4_score": 0.5, "dev_trec_4_loss": 1.0}


LINEAGE = {"search_run_id": "0f" * 16, "trial_run_id": "1e" * 16, "search_tracking_uri": "sqlite:////srv/mlflow.db"}


def _search_adapter(prepared, folder):
    """An adapter as a search hands it over: one trial's training on the prepared splits, scored
    by the search's own ``best_metrics`` (its metrics.json knows nothing of the manifest)."""
    from optuna_studies.best_metrics import best_metrics
    from ptv2_core.adapter import save_adapter
    from ptv2_core.train import TrainConfig, train

    out, _ = prepared
    cfg = TrainConfig(task=str(task_yaml(out, "trec")), model="minilm", prompt_len=4, lr=1e-2, epochs=1, seed=3,
                      progress=False)
    result = train(cfg)
    save_adapter(result.model, folder, result.spec, "minilm", result.base_fingerprint,
                 extra={"train_config": cfg.to_dict()})
    best = {"prompt_len": 4, "lr": 1e-2, "best_score": result.dev["score"], "number": 7, "best_epoch": 1}
    doc = best_metrics(folder, best, cfg.task, "study-x", None)
    (folder / "metrics.json").write_text(json.dumps(doc))
    return doc


@pytest.mark.slow
def test_final_step_registers_the_search_adapter_as_it_is(prepared, tmp_path):
    """final_epochs 0 (the pipeline's default): the search already trained this configuration on
    these splits with this seed and scored it; the step copies it and adds what the registry needs."""
    from components.final_step import final_adapter
    from components.registry.metadata import describe_adapter

    out, manifest = prepared
    searched = tmp_path / "searched"
    search_doc = _search_adapter(prepared, searched) | LINEAGE  # the runs a search records (optuna_studies.search)
    (searched / "metrics.json").write_text(json.dumps(search_doc))
    doc = final_adapter(out, "trec", searched, {"prompt_len": 4, "lr": 1e-2}, tmp_path / "final", study="s1")
    final = tmp_path / "final"
    for name in ("adapter.safetensors", "adapter_config.json"):
        assert (final / name).read_bytes() == (searched / name).read_bytes(), name
    saved = json.loads((final / "metrics.json").read_text())
    assert saved == doc and saved["source"] == "search" and saved["retrained_epochs"] == 0
    assert (saved["dev"], saved["test"], saved["trial"]) == (search_doc["dev"], search_doc["test"], 7)
    # what the registry needs to rebuild the prepared test split from the task's name
    assert (saved["seed"], saved["max_eval"], saved["study"]) == (3, 24, "s1")
    info = describe_adapter(final, "trec")
    assert saved["test_data_hash"] == info.tags["data_hash"] == manifest["tasks"]["trec"]["split_hashes"]["test"]
    # the prepared rows are today's stratified subset: the trial trained on them uncapped (its train_config
    # records no `subset`), and the version was tagged `metrics_subset: random` as if trained before 2026-12-06
    assert saved["subset"] == info.tags["subset"] == "stratified" and "metrics_subset" not in info.tags
    assert info.tags["test_score"] == f"{search_doc['test']['score']:.6g}"
    assert {k: info.tags.get(f"ptv2.{k}") for k in LINEAGE} == LINEAGE  # the version links to the search's runs


def test_final_step_refuses_negative_epochs_and_a_search_adapter_without_scores(prepared, tmp_path):
    from components.final_step import final_adapter

    out, _ = prepared
    with pytest.raises(Ptv2Error, match="final_epochs must be 0"):
        final_adapter(out, "trec", tmp_path, {"prompt_len": 4, "lr": 1e-2}, tmp_path / "a", final_epochs=-1)
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "metrics.json").write_text('{"dev": {"score": 0.5}}')
    with pytest.raises(Ptv2Error, match="lacks dev and test metrics"):
        final_adapter(out, "trec", tmp_path / "s", {}, tmp_path / "a")
    with pytest.raises(Ptv2Error, match="no readable metrics.json"):
        final_adapter(out, "trec", tmp_path / "nothing", {}, tmp_path / "a")
    assert not (tmp_path / "a").exists()


@pytest.mark.slow
def test_final_train_writes_adapter_with_metrics(prepared, tmp_path, capsys):
    from components.final_step import final_adapter
    from ptv2_core.adapter import load_adapter

    out, manifest = prepared
    # best.json's best_config: the search's constants and fixed settings beside the length and lr
    best = {"prompt_len": 4, "lr": 1e-2, "reparam": True, "reparam_hidden": 16, "batch_size": 8, "best_epoch": 2,
            "task": "elsewhere.yaml", "model": "other", "seed": 99, "epochs": 7, "init": None, "max_train": None}
    searched = tmp_path / "searched"  # the search's adapter: only its record of the search's runs is read
    searched.mkdir()
    (searched / "metrics.json").write_text(json.dumps(LINEAGE))
    doc = final_adapter(out, "trec", searched, best, tmp_path / "adapter", final_epochs=1, seed=3, study="s1")
    assert "ptv2 ▸ trec: retraining, epoch 1/1: train loss" in capsys.readouterr().out  # a step's progress line
    assert {p.name for p in (tmp_path / "adapter").iterdir()} == {"adapter.safetensors", "adapter_config.json", "metrics.json"}
    saved = json.loads((tmp_path / "adapter" / "metrics.json").read_text())
    assert saved["data_hash"] == manifest["tasks"]["trec"]["hash"] and saved["study"] == "s1"
    # the test split's hash is the one the registry tags as data_hash (same rows, same function)
    from components.registry.metadata import describe_adapter

    info = describe_adapter(tmp_path / "adapter", "trec")
    assert saved["test_data_hash"] == info.tags["data_hash"] == manifest["tasks"]["trec"]["split_hashes"]["test"]
    assert saved["subset"] == info.tags["subset"] == "stratified" and "metrics_subset" not in info.tags
    assert saved["prompt_len"] == 4 and saved["test"]["score"] == doc["test"]["score"]
    # the retrained adapter links to the search whose best configuration it is
    assert {k: info.tags.get(f"ptv2.{k}") for k in LINEAGE} == LINEAGE
    assert (saved["source"], saved["retrained_epochs"]) == ("retrain", 1)
    # seed and max_eval let the registry rebuild exactly this test split from the task name
    assert (saved["seed"], saved["max_eval"]) == (3, 24)
    loaded = load_adapter(tmp_path / "adapter")
    assert loaded.model.prompt_config.prompt_len == 4 and loaded.spec.name == "trec"
    # the search's fixed settings are retrained too; the step's own ones (task, model, epochs, seed) win
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())["extra"]["train_config"]
    assert (config["reparam"], config["reparam_hidden"], config["batch_size"]) == (True, 16, 8)
    assert (config["model"], config["epochs"], config["seed"]) == ("minilm", 1, 3)
    from components.data import task_yaml

    assert config["task"] == str(task_yaml(out, "trec"))
    assert loaded.model.prompt_config.reparam
