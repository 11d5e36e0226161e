"""Reproducibility through the real command line: the same inputs and seed give the same adapter
files, and each adapter says what produced it (seed, data, code, libraries). A tiny random BERT
with MiniLM's tokenizer on real TREC rows (seconds)."""
from __future__ import annotations

import json
import os
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
import torch

from conftest import run_cli
from ptv2_core import __version__
from ptv2_core.tasks import load_task
from ptv2_core.tasks.splits import split_hash

ROWS = dict(max_train=48, max_eval=24)
# what may differ between two runs of the same training: how fast, and when, it ran
TIMING = {"train_examples_per_s", "started", "finished"}


def train(model: str, out: Path, *extra: str) -> Path:
    res = run_cli("train", "--model", model, "--task", "trec", "--prompt-len", "4", "--lr", "3e-2", "--epochs", "2",
                  "--batch-size", "16", "--max-train", str(ROWS["max_train"]), "--max-eval", str(ROWS["max_eval"]),
                  "--device", "cpu", "--out", str(out), "--quiet", *extra)
    assert res.returncode == 0, res.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tmp_path_factory, one_torch_thread) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {name: train(tiny_model_dir, root / name, *args)
            for name, args in {"a": ("--seed", "0"), "b": ("--seed", "0"), "other": ("--seed", "1"),
                               "data3": ("--seed", "0", "--data-seed", "3")}.items()}


def metrics(adapter: Path) -> dict:
    return json.loads((adapter / "metrics.json").read_text())


def test_same_seed_same_files_other_seed_other_weights(runs):
    a, b, other = runs["a"], runs["b"], runs["other"]
    assert (a / "adapter.safetensors").read_bytes() == (b / "adapter.safetensors").read_bytes()
    assert (a / "adapter_config.json").read_text() == (b / "adapter_config.json").read_text()
    drop = lambda doc: {k: v for k, v in doc.items() if k not in TIMING}  # noqa: E731
    assert drop(metrics(a)) == drop(metrics(b))
    assert (a / "adapter.safetensors").read_bytes() != (other / "adapter.safetensors").read_bytes()


def test_metrics_json_records_the_seeds_and_the_rows_trained_and_scored_on(runs):
    for name, seed, data_seed in (("a", 0, 0), ("other", 1, 1), ("data3", 0, 3)):
        doc = metrics(runs[name])
        assert (doc["train_seed"], doc["data_seed"]) == (seed, data_seed), name
        spec, data = load_task("trec", seed=data_seed, **ROWS)
        assert doc["data_hashes"] == {s: split_hash(spec, data[s]) for s in ("train", "dev", "test")}, name
        assert doc["test_data_hash"] == doc["data_hashes"]["test"]
    # --seed seeds the splits too, unless --data-seed holds them
    assert metrics(runs["a"])["data_hashes"]["train"] != metrics(runs["other"])["data_hashes"]["train"]
    assert metrics(runs["a"])["data_hashes"]["train"] != metrics(runs["data3"])["data_hashes"]["train"]


def test_metrics_json_records_where_it_ran(runs):
    doc = metrics(runs["a"])
    assert doc["runtime"] == {"device": "cpu", "torch_threads": 1}


def test_metrics_json_records_when_it_ran_and_the_adapter_config_does_not(runs):
    from datetime import datetime, timezone

    doc = metrics(runs["a"])
    started, finished = (datetime.fromisoformat(doc[k]) for k in ("started", "finished"))
    assert started.utcoffset() == timezone.utc.utcoffset(None) and started.microsecond == 0
    assert doc["started"].endswith("+00:00") and "." not in doc["finished"]
    assert started <= finished <= datetime.now(timezone.utc)
    config = (runs["a"] / "adapter_config.json").read_text()
    assert '"started"' not in config and '"finished"' not in config  # its bytes stay the same per seed


def test_adapter_config_records_the_code_and_library_versions(runs):
    config = json.loads((runs["a"] / "adapter_config.json").read_text())
    prov = config["provenance"]
    for name in ("torch", "transformers", "tokenizers", "safetensors", "datasets", "numpy"):
        assert prov["libraries"][name] == metadata.version(name), name
    assert prov["libraries"]["python"].count(".") == 2
    root = Path(__file__).resolve().parents[1]
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:  # a git checkout: the commit, and whether tracked files were changed
        assert prov["git_commit"].partition(".")[0] == head.stdout.strip()
        assert prov["code_version"].startswith(f"{__version__}+g{head.stdout.strip()[:12]}")
    else:
        assert prov["code_version"] == __version__


def test_the_seed_alone_sets_the_prompt_and_head_not_how_the_base_loads(tiny_model_dir, tmp_path, one_torch_thread):
    """A checkpoint without pooler weights (many sentence-transformers models) makes transformers
    draw its pooler from torch's global generator as it loads: the prompt, head and dropout drawn
    after it came out otherwise for the same seed (and could change with transformers' version).
    With mean pooling the pooler is never used: the same seed must give the same adapter."""
    import shutil

    from safetensors.torch import load_file, save_file

    from ptv2_core.train import TrainConfig, train as run_train

    no_pooler = tmp_path / "no-pooler"
    shutil.copytree(tiny_model_dir, no_pooler)
    weights = load_file(str(no_pooler / "model.safetensors"))
    assert any("pooler" in k for k in weights)
    save_file({k: v for k, v in weights.items() if "pooler" not in k}, str(no_pooler / "model.safetensors"),
              metadata={"format": "pt"})
    settings = dict(task="trec", prompt_len=4, lr=3e-2, epochs=1, batch_size=16, pooling="mean", progress=False,
                    device="cpu", seed=5, **ROWS)
    a = run_train(TrainConfig(model=tiny_model_dir, **settings)).model.trainable_state()
    b = run_train(TrainConfig(model=str(no_pooler), **settings)).model.trainable_state()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_an_installed_copy_inside_another_git_checkout_records_no_commit(tmp_path):
    """ptv2 installed into a virtual environment inside the user's own git checkout (a project's
    .venv) is not that checkout's code: its adapters must not record the project's commit."""
    import shutil
    import sys

    core = Path(__file__).resolve().parents[1] / "ptv2_core"
    project = tmp_path / "project"
    site = project / ".venv" / "lib" / "site-packages"
    (site / "ptv2_core").mkdir(parents=True)
    for name in ("__init__.py", "provenance.py"):
        shutil.copy(core / name, site / "ptv2_core" / name)
    git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@t"]
    (project / "README").write_text("a project\n")
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "README"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], check=True)
    out = subprocess.run([sys.executable, "-c", "from ptv2_core.provenance import provenance; print(provenance())"],
                         capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(site), "PATH": os.environ["PATH"]})
    assert out.returncode == 0, out.stderr
    assert "git_commit" not in out.stdout and "'code_version': '0.1.0'" in out.stdout, out.stdout


def _checkout_with_core(root: Path) -> list[str]:
    """A git checkout at ``root`` holding ptv2_core's version and provenance modules, committed;
    returns the git command prefix for it."""
    import shutil

    core = Path(__file__).resolve().parents[1] / "ptv2_core"
    (root / "ptv2_core").mkdir(parents=True)
    for name in ("__init__.py", "provenance.py"):
        shutil.copy(core / name, root / "ptv2_core" / name)
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "ptv2_core"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], check=True)
    return git


def _provenance_of(root: Path) -> dict:
    import ast
    import sys

    out = subprocess.run([sys.executable, "-c", "from ptv2_core.provenance import provenance; print(provenance())"],
                         capture_output=True, text=True, cwd=root.parent,
                         env={"PYTHONPATH": str(root), "PATH": os.environ["PATH"]})
    assert out.returncode == 0, out.stderr
    return ast.literal_eval(out.stdout)


def test_a_checkout_with_changes_records_which_changes(tmp_path):
    """A '.dirty' commit alone cannot tell the code apart from the commit with any other change:
    the changes' digest can (the same changes, the same digest)."""
    root = tmp_path / "ptv2"
    _checkout_with_core(root)
    clean = _provenance_of(root)
    assert not clean["git_commit"].endswith(".dirty") and "git_diff_sha256" not in clean
    init = root / "ptv2_core" / "__init__.py"
    init.write_text(init.read_text() + "# change one\n")
    one = _provenance_of(root)
    assert one["git_commit"] == clean["git_commit"] + ".dirty" and one["git_diff_sha256"].startswith("sha256:")
    assert _provenance_of(root)["git_diff_sha256"] == one["git_diff_sha256"]
    init.write_text(init.read_text() + "# change two\n")
    assert _provenance_of(root)["git_diff_sha256"] != one["git_diff_sha256"]


def test_reading_the_commit_leaves_the_checkouts_index_alone(tmp_path):
    """Every train process and trial worker reads the commit: a plain `git status` refreshes and
    rewrites `.git/index` (taking index.lock), which can fail a user's `git commit` or another
    trial's git call run at the same moment. The index stays untouched."""
    root = tmp_path / "ptv2"
    _checkout_with_core(root)
    init = root / "ptv2_core" / "__init__.py"
    later = init.stat().st_mtime_ns + 5_000_000_000  # stat data changed, content not: git would refresh it
    os.utime(init, ns=(later, later))
    index = root / ".git" / "index"
    before = (index.stat().st_mtime_ns, index.read_bytes())
    assert not _provenance_of(root)["git_commit"].endswith(".dirty")
    assert (index.stat().st_mtime_ns, index.read_bytes()) == before


def test_train_from_a_pretrained_prompt_records_which_prompt(tiny_model_dir, tmp_path, one_torch_thread):
    """``--init DIR`` was recorded as a path alone: a prompt pre-trained there again (``pretrain
    --overwrite``) left no way to tell which one an adapter started from. Its files' digest does."""
    import hashlib

    pre = tmp_path / "prompt"
    res = run_cli("pretrain", "--tasks", "trec,rt", "--model", tiny_model_dir, "--max-prompt-len", "4", "--lengths", "4",
                  "--epochs", "1", "--max-train", "32", "--max-eval", "16", "--batch-size", "16", "--device", "cpu",
                  "--no-track", "--quiet", "--out", str(pre))
    assert res.returncode == 0, res.stderr[-3000:]
    out = train(tiny_model_dir, tmp_path / "adapter", "--init", str(pre))
    digest = "sha256:" + hashlib.sha256((pre / "prompt.safetensors").read_bytes()).hexdigest()
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["extra"]["init"] == str(pre.resolve()) and config["extra"]["init_sha256"] == digest
    assert metrics(out)["init_sha256"] == digest
    (pre / "prompt.safetensors").unlink()  # taking the digest must not turn a broken folder into a traceback
    res = run_cli("train", "--model", tiny_model_dir, "--task", "trec", "--prompt-len", "4", "--max-train", "16",
                  "--max-eval", "8", "--epochs", "1", "--device", "cpu", "--quiet", "--init", str(pre),
                  "--out", str(tmp_path / "never"))
    assert res.returncode == 2 and res.stderr.startswith("error:") and "Traceback" not in res.stderr, res.stderr
    assert not (tmp_path / "never").exists()
