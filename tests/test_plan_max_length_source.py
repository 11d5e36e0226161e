"""A search plan's max length over the model's positions names where that length was set: the
search space (``fixed: {max_length}``), the task file, or a packaged or hub task's own; the
error named the search space even where the length was the task's."""
from __future__ import annotations

import pytest
import yaml

from ptv2_core.errors import Ptv2Error


@pytest.fixture(scope="module")
def short_model(tmp_path_factory, minilm_path) -> str:
    """A tiny BERT of 64 positions: shorter than every task's max length."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("short")
    tok = BertTokenizerFast.from_pretrained(minilm_path)
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=37, max_position_embeddings=64)).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def _plan_error(task: str, model: str, tmp_path, monkeypatch, fixed: dict | None = None) -> str:
    from optuna_studies.plan import plan_search

    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"prompt_len": [4, 8], "lr": {"low": 1e-3, "high": 1e-2}}
                                    | ({"fixed": fixed} if fixed else {})))
    with pytest.raises(Ptv2Error) as e:
        plan_search(task, model, tmp_path / "out", trials=2, space=space, storage=f"sqlite:///{tmp_path}/o.db",
                    init=None, max_train=8, max_eval=8, epochs=None, concurrency=1, cpus_per_trial=1,
                    gpus_per_trial=0, overwrite=False, study_name=None, seed=0)
    assert not (tmp_path / "out").exists() and not (tmp_path / "o.db").exists()
    return str(e.value)


TOO_LONG = "max length {} is too long for this model: it has 64 positions; lower it to at most 64"


def test_a_packaged_tasks_own_max_length_is_named_as_the_tasks(short_model, tmp_path, monkeypatch):
    from optuna_studies.plan import task_max_length

    n = task_max_length("trec")
    msg = _plan_error("trec", short_model, tmp_path, monkeypatch)
    assert msg.startswith(f"packaged task 'trec' (its max_length {n}): {TOO_LONG.format(n)}"), msg


def test_a_hub_tasks_default_is_named_as_the_tasks(short_model, tmp_path, monkeypatch):
    msg = _plan_error("hub:ptv2-no-such-user/no-such-data", short_model, tmp_path, monkeypatch)
    assert msg.startswith("hub task 'hub:ptv2-no-such-user/no-such-data' (its max_length, the default, 128): "
                          + TOO_LONG.format(128)), msg


def test_a_task_files_max_length_is_named_as_that_file(short_model, tmp_path, monkeypatch):
    (tmp_path / "train.csv").write_text("text,label\n" + "".join(f"hi {i},a\nbye {i},b\n" for i in range(10)))
    task = tmp_path / "task.yaml"
    task.write_text("name: t\ntype: sequence\nmax_length: 100\ndata: {train: train.csv}\n")
    msg = _plan_error(str(task), short_model, tmp_path, monkeypatch)
    assert msg.startswith(f"task file {task} (its max_length: 100): {TOO_LONG.format(100)}"), msg


def test_a_fixed_max_length_is_named_as_the_search_spaces(short_model, tmp_path, monkeypatch):
    msg = _plan_error("trec", short_model, tmp_path, monkeypatch, fixed={"max_length": 100})
    assert msg.startswith(f"search space {tmp_path / 'space.yaml'}: {TOO_LONG.format(100)}"), msg
