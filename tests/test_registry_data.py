"""Which data an adapter is registered and scored on: the test split it was trained beside (its
recorded hash), a readable metrics.json, and the task it names (no silent switch to a packaged
task of the same name). Real parts: a tiny BERT built from a config with MiniLM's tokenizer, TREC
rows in a user task YAML named like the packaged task, MLflow on a fresh sqlite store."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import run_cli
from ptv2_core.errors import Ptv2Error


LABELS = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]  # the packaged trec's, in its order


@pytest.fixture(scope="module")
def trec_rows():
    """Packaged TREC rows as (text, label) pairs: 300 for the task, 100 more to add later."""
    from ptv2_core.tasks import load_task

    spec, data = load_task("trec", seed=0)
    train = data["train"]
    return [(t, spec.labels[y]) for t, y in zip(train["text"][:400], train["label"][:400])]


def write_task(folder: Path, rows) -> Path:
    """A task YAML named 'trec' (the packaged task's name and labels) over ``rows``; dev and test
    are carved from them with the seed."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(folder / "rows.csv", index=False)
    (folder / "trec.yaml").write_text(f"name: trec\ntype: sequence\nlabels: {json.dumps(LABELS)}\n"
                                      "data:\n  train: rows.csv\n")
    return folder / "trec.yaml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir, trec_rows, one_torch_thread):
    """``ptv2 train`` on the user task: (task YAML, adapter folder)."""
    root = tmp_path_factory.mktemp("data-adapter")
    task = write_task(root / "task", trec_rows[:300])
    out = root / "adapter"
    r = run_cli("train", "--task", str(task), "--model", tiny_model_dir, "--prompt-len", "4", "--epochs", "1",
                "--batch-size", "32", "--device", "cpu", "--quiet", "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    return task, out


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty default store (sqlite under PTV2_HOME): a registration that is refused leaves no file."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def copy_with_task(tmp_path: Path, trained, rows) -> tuple[Path, Path]:
    """The trained adapter beside a copy of its task folder at the recorded path's twin: the adapter's
    config is pointed at the copy, so a test may change or remove it."""
    task, adapter = trained
    new_task = write_task(tmp_path / "task", rows)
    new_adapter = tmp_path / "adapter"
    shutil.copytree(adapter, new_adapter)
    cfg_path = new_adapter / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    assert cfg["extra"]["train_config"]["task"] == str(task)
    cfg["extra"]["train_config"]["task"] = str(new_task)
    cfg_path.write_text(json.dumps(cfg, indent=2))
    return new_task, new_adapter


def error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, stderr[-2000:]
    return lines[0]


def test_train_records_the_test_split_hash_in_metrics_json(trained):
    from ptv2_core.tasks import load_task
    from ptv2_core.tasks.splits import split_hash

    task, adapter = trained
    spec, data = load_task(str(task), seed=0)
    doc = json.loads((adapter / "metrics.json").read_text())
    assert doc["test_data_hash"] == split_hash(spec, data["test"])


def test_the_searchs_best_adapter_records_the_test_split_hash_too(trained):
    from optuna_studies.best_metrics import best_metrics
    from ptv2_core.tasks import load_task
    from ptv2_core.tasks.splits import split_hash

    task, adapter = trained
    doc = best_metrics(adapter, {"prompt_len": 4, "lr": 1e-2, "best_score": 0.5}, str(task), "s", None)
    spec, data = load_task(str(task), seed=0)
    assert doc["test_data_hash"] == split_hash(spec, data["test"])


def test_register_refuses_an_adapter_whose_task_data_changed_since_training(trained, trec_rows, tmp_path, home):
    # rows added to the CSV: the seeded carve moves some of the adapter's training rows into test
    task, adapter = copy_with_task(tmp_path, trained, trec_rows[:300])
    write_task(task.parent, trec_rows)
    r = run_cli("register", "--adapter", str(adapter))
    assert r.returncode == 2, r.stderr[-2000:]
    line = error_line(r.stderr)
    assert "changed since the adapter was trained" in line and "rows it trained on" in line and "retrain" in line
    assert "Traceback" not in r.stderr
    assert not (home / "mlflow.db").exists()  # refused before the store was opened: nothing registered


@pytest.mark.parametrize("key, value", [("seed", None), ("seed", "x"), ("seed", True), ("seed", 1.5),
                                        ("max_eval", "x"), ("max_eval", 0), ("max_eval", [3]),
                                        ("seed", float("inf")), ("seed", -1), ("test_data_hash", 3)])
def test_a_corrupt_seed_or_max_eval_in_metrics_json_is_one_error_line(trained, tmp_path, home, key, value):
    _, adapter = trained
    bad = tmp_path / "bad"
    shutil.copytree(adapter, bad)
    doc = json.loads((bad / "metrics.json").read_text())
    (bad / "metrics.json").write_text(json.dumps(doc | {key: value}))
    r = run_cli("register", "--adapter", str(bad), "--task", str(trained[0]))
    assert r.returncode == 2, r.stderr[-2000:]
    assert error_line(r.stderr).startswith(f"error: corrupt {bad / 'metrics.json'}: {key} ")
    assert not (home / "mlflow.db").exists()


@pytest.mark.parametrize("key, value, says", [
    ("max_eval", "x", "corrupt {config}: max_eval must be a whole number of at least 1, got 'x'"),
    ("seed", "x", "corrupt adapter config: its train_config's seed is no whole number: 'x'")])
def test_a_corrupt_value_in_the_adapters_config_is_one_error_line_naming_that_file(trained, tmp_path, home, key, value,
                                                                                   says):
    """Where metrics.json records no max_eval (or seed), register reads the training config's in
    adapter_config.json: a bad max_eval there was blamed on metrics.json, and a seed that is no
    number was a ValueError traceback."""
    _, adapter = trained
    bad = tmp_path / "bad"
    shutil.copytree(adapter, bad)
    metrics = json.loads((bad / "metrics.json").read_text())
    metrics.pop(key, None)
    (bad / "metrics.json").write_text(json.dumps(metrics))
    config = json.loads((bad / "adapter_config.json").read_text())
    train_cfg = config["extra"]["train_config"]
    train_cfg[key] = value
    train_cfg.pop("data_seed", None)
    (bad / "adapter_config.json").write_text(json.dumps(config))
    r = run_cli("register", "--adapter", str(bad), "--task", str(trained[0]))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert error_line(r.stderr) == "error: " + says.format(config=bad / "adapter_config.json")
    assert not (home / "mlflow.db").exists()


def test_a_pipeline_adapter_still_registers_when_its_max_eval_is_a_float(trained, tmp_path):
    from components.registry.metadata import describe_adapter

    _, adapter = trained
    ok = tmp_path / "ok"
    shutil.copytree(adapter, ok)
    doc = json.loads((ok / "metrics.json").read_text())
    (ok / "metrics.json").write_text(json.dumps(doc | {"seed": 0, "max_eval": 1000.0}))  # JSON from a pipeline
    assert describe_adapter(ok, str(trained[0])).max_eval == 1000


def test_own_task_falls_back_to_a_packaged_task_only_when_training_named_it(trained, tmp_path):
    from ptv2_core.adapter import own_task, read_adapter_config

    task, adapter = trained
    config = read_adapter_config(adapter)
    assert own_task(config) == str(task)
    gone = json.loads(json.dumps(config))
    gone["extra"]["train_config"]["task"] = str(tmp_path / "moved" / "trec.yaml")
    with pytest.raises(Ptv2Error, match=r"moved/trec\.yaml.*--task"):
        own_task(gone)  # named like the packaged trec, same labels: still not that data
    packaged = json.loads(json.dumps(config))
    packaged["extra"]["train_config"]["task"] = "trec"
    assert own_task(packaged) == "trec"
    # a pipeline's adapter names its prepared copy (gone in another pod) and, in metrics.json, the
    # reference the copy was prepared from: a packaged name there is that packaged task
    assert own_task(gone, {"task_source": "trec"}) == "trec"
    with pytest.raises(Ptv2Error, match="--task"):
        own_task(gone, {"task_source": str(tmp_path / "other.yaml")})


def test_register_without_task_refuses_when_the_recorded_task_file_is_gone(trained, trec_rows, tmp_path, home):
    task, adapter = copy_with_task(tmp_path, trained, trec_rows[:300])
    shutil.rmtree(task.parent)
    r = run_cli("register", "--adapter", str(adapter))
    assert r.returncode == 2, r.stderr[-2000:]
    line = error_line(r.stderr)
    assert str(task) in line and "--task" in line
    assert not (home / "mlflow.db").exists()


def test_an_older_adapter_without_a_hash_registers_with_a_warning_and_eval_model_keeps_to_its_task(
        trained, trec_rows, tmp_path, home):
    task, adapter = copy_with_task(tmp_path, trained, trec_rows[:300])
    doc = json.loads((adapter / "metrics.json").read_text())
    del doc["test_data_hash"]  # written before ptv2 train recorded it
    (adapter / "metrics.json").write_text(json.dumps(doc))
    r = run_cli("register", "--adapter", str(adapter))
    assert r.returncode == 0, r.stderr[-2000:]
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "records no test split hash" in warnings[0], r.stderr[-2000:]
    ok = run_cli("eval", "--model", "models:/ptv2-trec/1", "--device", "cpu")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert json.loads(ok.stdout)["task"] == "trec"
    # the version's task file moved away: not scored on the packaged trec of the same name and labels
    shutil.rmtree(task.parent)
    r = run_cli("eval", "--model", "models:/ptv2-trec/1", "--device", "cpu")
    assert r.returncode == 2, r.stderr[-2000:]
    line = error_line(r.stderr)
    assert str(task) in line and "--task" in line
    assert r.stdout == ""


def test_a_pipeline_step_records_what_its_prepared_task_was_made_from(tmp_path):
    from components.final_step import _provenance

    entry = {"ref": "trec", "yaml": "trec/task.yaml", "hash": "sha256:a", "split_hashes": {"test": "sha256:t"}}
    (tmp_path / "manifest.json").write_text(json.dumps({"seed": 0, "max_train": None, "max_eval": 50,
                                                        "tasks": {"trec": entry}}))
    doc = _provenance(tmp_path, "trec", None, "s")
    assert (doc["task_source"], doc["test_data_hash"], doc["seed"], doc["max_eval"]) == ("trec", "sha256:t", 0, 50)
    assert doc["subset"] == "stratified"  # how the cap drew the prepared rows: the registry must not think random
    (tmp_path / "manifest.json").write_text(json.dumps({"seed": 0, "max_train": None, "max_eval": None,
                                                        "tasks": {"trec": entry}}))
    assert "subset" not in _provenance(tmp_path, "trec", None, "s")  # no cap, no subset
