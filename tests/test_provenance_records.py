"""What the registry, a search's best adapter and the pipeline's final step record of the code, the
seeds, the rows and the pre-trained prompt behind an adapter (docs/reproducibility.md). Real
training of a tiny random BERT with MiniLM's tokenizer on real TREC rows (seconds)."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

ROWS = dict(max_train=48, max_eval=24)


def _config(model: str, **over):
    from ptv2_core.train import TrainConfig

    return TrainConfig(**(dict(task="trec", model=model, prompt_len=4, lr=3e-2, epochs=1, batch_size=16, device="cpu",
                               progress=False, seed=2, data_seed=5) | ROWS | over))


@pytest.fixture(scope="module")
def trained(tiny_model_dir, tmp_path_factory, one_torch_thread) -> tuple[Path, dict]:
    """An adapter as ``ptv2 train --out`` writes it, and its metrics.json."""
    from ptv2_core.adapter import save_adapter
    from ptv2_core.report import metrics_document
    from ptv2_core.train import train

    cfg = _config(tiny_model_dir)
    result = train(cfg)
    doc = metrics_document(result, cfg)
    out = tmp_path_factory.mktemp("trained") / "adapter"
    save_adapter(result.model, out, result.spec, cfg.model, result.base_fingerprint,
                 extra={"train_config": cfg.to_dict()}, files={"metrics.json": json.dumps(doc, indent=2) + "\n"})
    return out, doc


def _copy_with_config(src: Path, dest: Path, change) -> Path:
    shutil.copytree(src, dest)
    config = json.loads((dest / "adapter_config.json").read_text())
    change(config)
    (dest / "adapter_config.json").write_text(json.dumps(config, indent=2))
    return dest


def test_a_registered_version_names_the_code_that_trained_it_not_the_code_registering_it(trained, tmp_path):
    from components.registry.metadata import describe_adapter, registration_run_tags, version_description
    from optuna_studies.code_version import code_version

    adapter, _ = trained
    commit = "0123456789abcdef0123456789abcdef01234567"

    def older_code(config):
        config["provenance"] |= {"code_version": "0.0.9+g0123456789ab.dirty", "git_commit": commit + ".dirty",
                                 "git_diff_sha256": "sha256:" + "ab" * 32}

    info = describe_adapter(_copy_with_config(adapter, tmp_path / "older", older_code), "trec")
    t = info.tags
    assert t["code_version"] == "0.0.9+g0123456789ab.dirty"
    assert (t["git_commit"], t["git_diff_sha256"]) == (commit + ".dirty", "sha256:" + "ab" * 32)
    assert t["registered_code_version"] == code_version() != t["code_version"]
    text = version_description(info)
    assert "trained by code 0.0.9+g0123456789ab.dirty" in text and f"registered by {code_version()}" in text
    # the registration run is the registering code's run: its source commit and code version are that code's
    assert registration_run_tags(info)["ptv2.code_version"] == code_version()


def test_an_adapter_from_before_provenance_registers_and_says_its_code_is_unknown(trained, tmp_path):
    from components.registry.metadata import describe_adapter, version_description
    from optuna_studies.code_version import code_version

    adapter, _ = trained
    info = describe_adapter(_copy_with_config(adapter, tmp_path / "old", lambda c: c.pop("provenance")), "trec")
    t = info.tags
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert t["code_version"] == config["ptv2_version"] and "git_commit" not in t
    assert t["code_version_source"].startswith("ptv2_version")
    assert t["registered_code_version"] == code_version()
    assert "records no commit" in version_description(info)


def test_the_searchs_best_adapter_records_the_seeds_rows_and_runtime_train_does(trained, tiny_model_dir, tmp_path):
    """A trial trains through the objective (what a Tune trial runs); ``best_metrics`` scores its
    adapter: the seeds, the rows' hashes and where it trained are those of ``ptv2 train`` with the
    same settings."""
    from optuna_studies.best_metrics import best_metrics
    from optuna_studies.objective import objective

    _, train_doc = trained
    cfg = _config(tiny_model_dir)
    files: dict = {}
    out = objective(dataclasses.asdict(cfg) | {"metric": "dev_score", "mode": "max"},
                    lambda epoch, row, adapter: files.update(adapter or {}))
    assert out["status"] == "completed" and files
    folder = _write_files(files, tmp_path / "trial")
    # the trial's adapter records the rows its training drew (the core hands their hashes over as they load)
    search = json.loads(files["adapter_config.json"])["extra"]["search"]
    assert search["data_hashes"] == train_doc["data_hashes"]
    best = {"prompt_len": 4, "lr": 3e-2, "best_score": out["best_objective"], "number": 0, "best_epoch": 1}
    doc = best_metrics(folder, best, "trec", "study-x", ROWS["max_eval"])
    assert (doc["train_seed"], doc["data_seed"]) == (train_doc["train_seed"], train_doc["data_seed"]) == (2, 5)
    assert doc["data_hashes"] == train_doc["data_hashes"]
    assert doc["data_hashes"]["test"] == doc["test_data_hash"] == train_doc["test_data_hash"]
    assert doc["runtime"] == train_doc["runtime"]  # where the trial trained (here: this process's CPU)
    assert doc["scoring_runtime"]["device"] == "cpu"
    assert "init" not in doc and "init" not in json.loads(files["adapter_config.json"])["extra"]
    # best_metrics takes the trial's record as it is: the rows as the search ends may be others (a task
    # file edited meanwhile), and it loads no data for them
    recorded = {"train": "sha256:as-trained", "dev": "sha256:dev", "test": "sha256:test"}
    _copy_with_config(folder, tmp_path / "recorded", lambda c: c["extra"]["search"].update(data_hashes=recorded))
    assert best_metrics(tmp_path / "recorded", best, "trec", "study-x", ROWS["max_eval"])["data_hashes"] == recorded
    # a trial adapter of a search from before trials recorded them: no data_hashes, rather than today's rows
    _copy_with_config(folder, tmp_path / "older", lambda c: c["extra"]["search"].pop("data_hashes"))
    assert "data_hashes" not in best_metrics(tmp_path / "older", best, "trec", "study-x", ROWS["max_eval"])


def test_a_warm_started_trials_adapter_records_its_pre_trained_prompt(pretrained, tiny_model_dir, tmp_path):
    """A trial of ``ptv2 search --init DIR`` (the trial config's init) records the prompt folder and
    its weights' digest in its adapter's config, as ``ptv2 train --init`` does; the search's best
    adapter's metrics.json carries them too (as train's)."""
    from optuna_studies.best_metrics import best_metrics
    from optuna_studies.objective import objective

    pre, digest = pretrained
    cfg = _config(tiny_model_dir, seed=3, data_seed=None)  # the pre-training's split seed for trec
    files: dict = {}
    out = objective(dataclasses.asdict(cfg) | {"metric": "dev_score", "mode": "max", "init": str(pre)},
                    lambda epoch, row, adapter: files.update(adapter or {}))
    assert out["status"] == "completed", out
    extra = json.loads(files["adapter_config.json"])["extra"]
    assert (extra["init"], extra["init_sha256"]) == (str(pre), digest)
    best = {"prompt_len": 4, "lr": 3e-2, "best_score": out["best_objective"], "number": 0, "best_epoch": 1}
    doc = best_metrics(_write_files(files, tmp_path / "trial"), best, "trec", "study-x", ROWS["max_eval"])
    assert (doc["init"], doc["init_sha256"]) == (str(pre), digest)


def _write_files(files: dict, folder: Path) -> Path:
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data.encode() if isinstance(data, str) else data)
    return folder


@pytest.fixture(scope="module")
def pretrained(tiny_model_dir, tmp_path_factory) -> tuple[Path, str]:
    """A pre-trained prompt (``ptv2 pretrain``, seed 3) of the tiny model, and its weights' digest."""
    import hashlib

    from conftest import run_cli

    pre = tmp_path_factory.mktemp("pretrained") / "prompt"
    res = run_cli("pretrain", "--tasks", "trec,rt", "--model", tiny_model_dir, "--max-prompt-len", "4", "--lengths", "4",
                  "--epochs", "1", "--max-train", "32", "--max-eval", "16", "--batch-size", "16", "--device", "cpu",
                  "--seed", "3", "--no-track", "--quiet", "--out", str(pre))
    assert res.returncode == 0, res.stderr[-3000:]
    return pre, "sha256:" + hashlib.sha256((pre / "prompt.safetensors").read_bytes()).hexdigest()


def test_the_final_step_records_which_pre_trained_prompt_it_started_from(trained, pretrained, tiny_model_dir,
                                                                        tmp_path):
    """The pipeline's final adapter named its pre-trained prompt by path alone: a prompt trained there
    again left no way to tell which one it started from. The digest of its weights does, retrained
    (metrics.json and adapter_config.json) or the search's adapter as it is (metrics.json)."""
    from components.data import prepare_data
    from components.final_step import final_train, reuse_search_adapter

    prepared = tmp_path / "data"
    prepare_data(["trec"], prepared, seed=3, **ROWS)
    pre, digest = pretrained

    doc = final_train(prepared, "trec", {"prompt_len": 4, "lr": 3e-2, "batch_size": 16}, tmp_path / "final",
                      model=tiny_model_dir, epochs=1, init_dir=pre, seed=3)
    assert (doc["init"], doc["init_sha256"]) == (str(pre), digest)
    assert json.loads((tmp_path / "final" / "metrics.json").read_text())["init_sha256"] == digest
    extra = json.loads((tmp_path / "final" / "adapter_config.json").read_text())["extra"]
    assert (extra["init"], extra["init_sha256"]) == (str(pre), digest)

    adapter, _ = trained
    doc = reuse_search_adapter(prepared, "trec", adapter, tmp_path / "reused", init_dir=pre)
    assert (doc["init"], doc["init_sha256"]) == (str(pre), digest)
    doc = reuse_search_adapter(prepared, "trec", adapter, tmp_path / "none")
    assert doc["init"] == "" and "init_sha256" not in doc


def test_every_record_of_a_pre_trained_prompt_names_its_folder_absolute(tmp_path, monkeypatch):
    """``ptv2 train --init``, a search's trials and the pipeline's final step record a prompt alike: its
    folder as an absolute path (the final step kept a relative one as given) and its weights' digest."""
    import hashlib

    from components.final_step import started_from
    from ptv2_core.multitask.pretrained import WEIGHTS

    (tmp_path / "prompt").mkdir()
    (tmp_path / "prompt" / WEIGHTS).write_bytes(b"weights")
    monkeypatch.chdir(tmp_path)
    digest = "sha256:" + hashlib.sha256(b"weights").hexdigest()
    assert started_from("prompt") == {"init": str(tmp_path.resolve() / "prompt"), "init_sha256": digest}
    assert started_from(None) == {"init": ""}
    (tmp_path / "prompt" / WEIGHTS).unlink()  # unreadable weights: no digest (loading them says why)
    assert started_from("prompt") == {"init": str(tmp_path.resolve() / "prompt")}
