"""A Hugging Face cache (``HF_HOME``) holding a hub model at two commits, for the tests of hub
model revisions (tests/test_model_revision.py) and the whole pipeline run (tests/test_pipeline_run.py,
which runs on ``org/tiny`` from it and moves its main mid-run).

``hub/models--org--tiny`` holds two snapshots of a tiny BERT (MiniLM's tokenizer) with different
weights, ``refs/main`` pointing at one (SHA_A) and the tag ``v2`` at the other (SHA_B), as
huggingface_hub lays them out when it downloads. Import ``hub_home`` into a test module to use it
(a fixture is found by name in the module that uses it); a test that moves main (``set_main``)
moves it back to SHA_A when it is done. ``point_at`` makes it this process's cache.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

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


def set_main(home: Path, sha: str) -> None:
    """The hub's main moves to ``sha``, as a push to the model's repository and a download would move it."""
    (home / "hub" / "models--org--tiny" / "refs" / "main").write_text(sha)


def point_at(mp: pytest.MonkeyPatch, home: Path) -> None:
    """This process reads ``home`` as its Hugging Face cache, offline, as ``HF_HOME=home HF_HUB_OFFLINE=1``
    would at its start: huggingface_hub's constants (read from the environment as it was imported;
    resolve_revision, hf_hub_download and transformers' cached_files read ``HF_HUB_CACHE`` there at each
    call), and the environment, for what reads it later (ptv2's offline check, a child process)."""
    from huggingface_hub import constants

    mp.setattr(constants, "HF_HOME", str(home))
    mp.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    mp.setattr(constants, "HF_HUB_OFFLINE", True)
    mp.setenv("HF_HOME", str(home))
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.delenv("HF_HUB_CACHE", raising=False)
