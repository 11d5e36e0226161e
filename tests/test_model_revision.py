"""`--model org/name@<revision>`: a hub model pinned to a commit, and the commit an adapter records.

Offline, through a real Hugging Face cache (``HF_HOME``): ``hub/models--org--tiny`` holds two
snapshots of a tiny BERT with different weights, ``refs/main`` pointing at one and the tag ``v2``
at the other, as huggingface_hub lays them out when it downloads. The commands run as separate
processes: huggingface_hub reads ``HF_HOME`` when it is imported.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import run_cli

PTV2 = [sys.executable, "-m", "pipelines.cli"]
SHA_A, SHA_B = "a1" * 20, "b2" * 20


@pytest.fixture(scope="module")
def hub_home(tmp_path_factory, minilm_path) -> Path:
    """An ``HF_HOME`` whose cache holds ``org/tiny`` at two commits: main → SHA_A, tag v2 → SHA_B."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    home = tmp_path_factory.mktemp("hf-home")
    repo = home / "hub" / "models--org--tiny"
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    for seed, sha in enumerate((SHA_A, SHA_B)):
        torch.manual_seed(seed)  # other weights at each commit: other fingerprints
        config = AutoConfig.for_model("bert", hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                      intermediate_size=37, vocab_size=30522, max_position_embeddings=256)
        AutoModel.from_config(config).save_pretrained(repo / "snapshots" / sha)
        tokenizer.save_pretrained(repo / "snapshots" / sha)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(SHA_A)
    (repo / "refs" / "v2").write_text(SHA_B)
    return home


def ptv2(home: Path, *args: str, **more_env: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HOME=str(home), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", **more_env)
    env.pop("HF_HUB_CACHE", None)
    return subprocess.run([*PTV2, *args], capture_output=True, text=True, env=env, timeout=600)


def train(home: Path, model: str, out: Path) -> dict:
    res = ptv2(home, "train", "--model", model, "--task", "trec", "--prompt-len", "2", "--epochs", "1",
               "--max-train", "8", "--max-eval", "8", "--out", str(out), "--quiet")
    assert res.returncode == 0, res.stderr
    return json.loads((out / "adapter_config.json").read_text())["base_model"]


def set_main(home: Path, sha: str) -> None:
    (home / "hub" / "models--org--tiny" / "refs" / "main").write_text(sha)


def test_a_pinned_adapter_loads_its_commit_after_main_moves(hub_home, tmp_path):
    set_main(hub_home, SHA_A)
    base = train(hub_home, f"org/tiny@{SHA_A}", tmp_path / "pinned")
    assert base["revision"] == SHA_A and base["name"] == f"org/tiny@{SHA_A}"
    set_main(hub_home, SHA_B)  # the hub's main moves on: another commit, other weights
    try:
        res = ptv2(hub_home, "eval", "--adapter", str(tmp_path / "pinned"), "--max-eval", "8")
        assert res.returncode == 0, res.stderr
        # without the pin the same adapter loads main's newest, whose fingerprint is another
        unpinned = tmp_path / "unpinned"
        unpinned.mkdir()
        for f in (tmp_path / "pinned").iterdir():
            (unpinned / f.name).write_bytes(f.read_bytes())
        doc = json.loads((unpinned / "adapter_config.json").read_text())
        doc["base_model"]["name"] = "org/tiny"
        del doc["base_model"]["revision"]
        (unpinned / "adapter_config.json").write_text(json.dumps(doc))
        res = ptv2(hub_home, "eval", "--adapter", str(unpinned), "--max-eval", "8")
        assert res.returncode == 2 and "refusing a different base model" in res.stderr, res.stderr
    finally:
        set_main(hub_home, SHA_A)


def test_an_unpinned_or_tagged_hub_model_records_the_commit_it_resolved_to(hub_home, tmp_path):
    set_main(hub_home, SHA_A)
    base = train(hub_home, "org/tiny", tmp_path / "main")
    assert base["revision"] == SHA_A and base["name"] == "org/tiny"
    tagged = train(hub_home, "org/tiny@v2", tmp_path / "tagged")
    assert tagged["revision"] == SHA_B and tagged["name"] == "org/tiny@v2"
    assert tagged["fingerprint"] != base["fingerprint"]  # the tag's commit, not main's
    # the tagged adapter loads at its commit, though its name says v2 and main says another
    res = ptv2(hub_home, "predict", "--adapter", str(tmp_path / "tagged"), "What is a fjord ?")
    assert res.returncode == 0 and res.stdout.strip(), res.stderr
    # registering builds the served model (its load_context loads the base) and tags the commit
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    res = ptv2(hub_home, "register", "--adapter", str(tmp_path / "tagged"), MLFLOW_TRACKING_URI=uri,
               PTV2_HOME=str(tmp_path / "home"))
    assert res.returncode == 0, res.stderr
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    [model] = client.search_registered_models()
    [version] = client.search_model_versions(f"name = '{model.name}'")
    assert version.tags["base_revision"] == SHA_B and version.tags["base_model"] == "org/tiny@v2"


@pytest.mark.parametrize("model, needle", [
    ("org/tiny@", "empty revision after '@'"),
    ("org/tiny@ ", "empty revision after '@'"),
    ("minilm@main", "'minilm' is a bundled alias"),
])
def test_a_bad_revision_is_one_error_line(tmp_path, model, needle):
    res = run_cli("train", "--model", model, "--task", "trec", "--out", str(tmp_path / "out"), "--quiet")
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert needle in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


def test_a_local_folder_named_with_an_at_sign_is_a_folder(tiny_model_dir, tmp_path, monkeypatch):
    """As for a ``hub:`` data set's reference: an existing path wins over a revision after '@'."""
    import shutil

    from ptv2_core.backbone import base_revision, load_backbone, split_model_ref
    from ptv2_core.errors import Ptv2Error

    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "tiny@v1"))
    backbone, _ = load_backbone(str(folder))
    assert base_revision(backbone) is None  # nothing to pin: the folder is the model
    monkeypatch.chdir(tmp_path)
    assert split_model_ref("tiny@v1") == ("tiny@v1", None)
    with pytest.raises(Ptv2Error, match="'tiny@v1' is a local folder"):  # a revision pins hub models only
        split_model_ref("tiny@v1@main")


def test_a_pre_trained_prompt_records_its_commit_and_is_evaluated_on_it(hub_home, tmp_path):
    set_main(hub_home, SHA_A)
    out = tmp_path / "prompt"
    res = ptv2(hub_home, "pretrain", "--tasks", "trec,rt", "--model", "org/tiny@v2", "--max-prompt-len", "4",
               "--lengths", "2,4", "--epochs", "1", "--max-train", "8", "--max-eval", "8", "--out", str(out),
               "--quiet", "--no-track")
    assert res.returncode == 0, res.stderr
    base = json.loads((out / "prompt_config.json").read_text())["base_model"]
    assert base["revision"] == SHA_B and base["name"] == "org/tiny@v2"
    (hub_home / "hub" / "models--org--tiny" / "refs" / "v2").write_text(SHA_A)  # the tag moved: the commit did not
    try:
        res = ptv2(hub_home, "eval", "--pretrained", str(out), "--max-eval", "8")
        assert res.returncode == 0, res.stderr
    finally:
        (hub_home / "hub" / "models--org--tiny" / "refs" / "v2").write_text(SHA_B)
