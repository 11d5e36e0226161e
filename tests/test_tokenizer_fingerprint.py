"""The base model check covers the tokenizer too: the same weights beside other tokenizer files
(another vocabulary, other lower-casing) give other ids, so an adapter (or a pre-trained prompt)
recording its tokenizer's fingerprint refuses them; one saved before that was recorded loads."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ptv2_core.errors import Ptv2Error
from test_search import tiny_model  # noqa: F401  (module fixture: a tiny BERT model folder)


@pytest.fixture(scope="module")
def tiny_base(tiny_model) -> Path:
    """test_search's tiny random BERT with MiniLM's WordPiece tokenizer, as a Path."""
    return Path(tiny_model)


@pytest.fixture(scope="module")
def adapter(tiny_base, tmp_path_factory) -> Path:
    """An (untrained) adapter on the tiny base: only its files matter here."""
    from ptv2_core.adapter import save_adapter
    from ptv2_core.backbone import load_backbone
    from ptv2_core.build import build_model
    from ptv2_core.tasks import load_task

    spec, _ = load_task("trec", max_train=1, max_eval=1)
    backbone, _ = load_backbone(str(tiny_base))
    model = build_model(backbone, spec, 4, max_length=spec.max_length)
    return save_adapter(model, tmp_path_factory.mktemp("a") / "adapter", spec, str(tiny_base))


def base_copy(tiny_base: Path, dst: Path) -> Path:
    shutil.copytree(tiny_base, dst)
    return dst


def adapter_on(adapter: Path, base: Path, dst: Path, drop_tokenizer_fp: bool = False) -> Path:
    """A copy of ``adapter`` naming ``base`` (same weights) as its base model."""
    shutil.copytree(adapter, dst)
    cfg = json.loads((dst / "adapter_config.json").read_text())
    cfg["base_model"]["name"] = str(base)
    if drop_tokenizer_fp:
        del cfg["base_model"]["tokenizer_fingerprint"]
    (dst / "adapter_config.json").write_text(json.dumps(cfg))
    return dst


def recorded(adapter_dir: Path) -> str:
    return json.loads((adapter_dir / "adapter_config.json").read_text())["base_model"]["tokenizer_fingerprint"]


def test_the_digest_survives_save_load_and_use(adapter, tiny_base, tmp_path, minilm_path):
    from transformers import AutoTokenizer

    from ptv2_core.adapter import load_adapter
    from ptv2_core.backbone import tokenizer_fingerprint
    from ptv2_core.tasks.encode import encode_texts

    digest = recorded(adapter)
    assert digest.startswith("sha256:") and len(digest) == 71
    # the packaged MiniLM's tokenizer and its copy in the tiny base tokenize alike: one digest
    assert tokenizer_fingerprint(AutoTokenizer.from_pretrained(minilm_path)) == digest
    tok = AutoTokenizer.from_pretrained(tiny_base)
    tok.save_pretrained(tmp_path / "again")
    assert tokenizer_fingerprint(AutoTokenizer.from_pretrained(tmp_path / "again")) == digest
    loaded = load_adapter(adapter)  # the recorded base, checked
    assert loaded.config["base_model"]["tokenizer_fingerprint"] == digest
    # tokenizing sets truncation/padding on the backend: not part of the digest
    encode_texts(loaded.tokenizer, ["Who wrote Hamlet?", "a b"], max_length=7)
    assert tokenizer_fingerprint(loaded.tokenizer) == digest


def test_a_base_whose_tokenizer_lower_cases_no_more_is_refused(adapter, tiny_base, tmp_path):
    from transformers import AutoTokenizer

    from ptv2_core.adapter import load_adapter
    from ptv2_core.backbone import tokenizer_fingerprint

    base = base_copy(tiny_base, tmp_path / "base")
    cfg = json.loads((base / "tokenizer_config.json").read_text())
    cfg["do_lower_case"] = False
    (base / "tokenizer_config.json").write_text(json.dumps(cfg))
    moved = adapter_on(adapter, base, tmp_path / "adapter")
    with pytest.raises(Ptv2Error) as e:
        load_adapter(moved)
    now = tokenizer_fingerprint(AutoTokenizer.from_pretrained(base))
    assert now != recorded(adapter)
    assert str(e.value) == (f"adapter '{moved}' was trained with a tokenizer of fingerprint {recorded(adapter)}, but "
                            f"the tokenizer of base model '{base}' has {now}: the base's tokenizer files changed "
                            "(vocabulary, lower-casing or special tokens), so its ids would not be the ones the "
                            "prompt learned; restore them, or train again on this base")


def test_a_base_whose_vocabulary_changed_is_refused(adapter, tiny_base, tmp_path):
    from ptv2_core.adapter import load_adapter

    base = base_copy(tiny_base, tmp_path / "base")
    doc = json.loads((base / "tokenizer.json").read_text())
    vocab = doc["model"]["vocab"]
    vocab["hallo"] = vocab.pop("hello")  # one token renamed, the same id
    (base / "tokenizer.json").write_text(json.dumps(doc))
    with pytest.raises(Ptv2Error, match="tokenizer files changed"):
        load_adapter(adapter_on(adapter, base, tmp_path / "adapter"))


def test_an_adapter_without_the_field_still_loads(adapter, tiny_base, tmp_path):
    """Saved before the tokenizer was recorded: loads as before, even on a changed tokenizer."""
    from ptv2_core.adapter import load_adapter

    base = base_copy(tiny_base, tmp_path / "base")
    cfg = json.loads((base / "tokenizer_config.json").read_text())
    cfg["do_lower_case"] = False
    (base / "tokenizer_config.json").write_text(json.dumps(cfg))
    old = adapter_on(adapter, base, tmp_path / "adapter", drop_tokenizer_fp=True)
    loaded = load_adapter(old)
    assert "tokenizer_fingerprint" not in loaded.config["base_model"] and loaded.spec.name == "trec"


def test_a_pretrained_prompt_checks_the_tokenizer_it_records():
    from ptv2_core.multitask.pretrained import check_base

    fp, tok = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    config = {"base_model": {"name": "minilm", "fingerprint": fp, "tokenizer_fingerprint": tok}}
    check_base(config, fp, "p", tok)
    with pytest.raises(Ptv2Error, match="pre-trained prompt 'p' was trained with a tokenizer of fingerprint "
                                        f"{tok}.*{'3' * 64}"):
        check_base(config, fp, "p", "sha256:" + "3" * 64)
    del config["base_model"]["tokenizer_fingerprint"]  # pre-trained before it was recorded
    check_base(config, fp, "p", "sha256:" + "3" * 64)
