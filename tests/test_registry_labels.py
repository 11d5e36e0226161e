"""A registered version says which labels it answers with and its task type, where a reviewer
(MLflow UI) and a client (the registry's REST API: the version's tags) look: its tags, its
description and its MLmodel metadata. They were only in the adapter_config.json artifact, and the
output schema says ``label: string`` (MLflow's schema has no enumerated type)."""
from __future__ import annotations

import json

import pytest

from components.registry.labels import LABEL_COUNT_TAG, LABELS_TAG, TRUNCATED_TAG, label_tags, labels_line
from components.registry.metadata import MAX_TAG
from ptv2_core.tasks import load_task
from test_registry_support import adapters_fixture


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """The registry tests' trec adapter (trained once per test process, shared with test_registry.py),
    registered in a fresh sqlite store (~6 s)."""
    from components.registry.register import register_adapter

    root = tmp_path_factory.mktemp("reglabels")
    adapter = adapters_fixture(tmp_path_factory)["bad"]
    with pytest.MonkeyPatch.context() as m:
        m.delenv("MLFLOW_TRACKING_URI", raising=False)
        m.setenv("PTV2_HOME", str(root / "home"))
        uri = f"sqlite:///{root / 'home' / 'mlflow.db'}"
        (root / "home").mkdir()
        v = register_adapter(adapter, "trec", name="ptv2-trec-labels", tracking_uri=uri)
        yield uri, v
    import mlflow

    mlflow.set_tracking_uri(None)


def test_the_version_tags_name_its_labels_task_type_prompt_len_and_base_model(registered):
    from mlflow import MlflowClient

    uri, v = registered
    labels = list(load_task("trec", max_train=1)[0].labels)
    mv = MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version(v.name, str(v.version))
    t = mv.tags
    assert json.loads(t[LABELS_TAG]) == labels and t[LABEL_COUNT_TAG] == str(len(labels)) == "6"
    assert TRUNCATED_TAG not in t
    assert (t["task_type"], t["prompt_len"], t["base_model"]) == ("sequence", "4", "minilm")
    # the version page's description names them too
    assert f"labels (6): {', '.join(labels)}." in mv.description


def test_the_registered_model_says_its_task_type(registered):
    """The model list's page shows the registered model's tags: the task alone said not whether its
    versions label texts or tag words."""
    from mlflow import MlflowClient

    uri, v = registered
    model = MlflowClient(tracking_uri=uri, registry_uri=uri).get_registered_model(v.name)
    assert model.tags == {"task": "trec", "task_type": "sequence", "ptv2.registered_by": "ptv2"}
    assert "sequence" in model.description


def test_the_mlmodel_metadata_holds_labels_task_type_metric_and_prompt_len(registered):
    import mlflow

    uri, v = registered
    mlflow.set_tracking_uri(uri)
    meta = mlflow.models.get_model_info(f"models:/{v.name}/{v.version}").metadata["ptv2"]
    assert meta["labels"] == list(load_task("trec", max_train=1)[0].labels)
    assert (meta["task_type"], meta["metric"], meta["prompt_len"], meta["base_model"]) == (
        "sequence", "accuracy", 4, "minilm")


def test_a_label_list_too_long_for_a_tag_keeps_the_first_that_fit_and_says_so():
    labels = [f"category-{i:04d}-é" for i in range(600)]  # ~12,600 characters of JSON
    tags = label_tags(labels, MAX_TAG)
    kept = json.loads(tags[LABELS_TAG])  # still a JSON list, not one cut mid-label
    assert len(tags[LABELS_TAG]) <= MAX_TAG and kept == labels[:len(kept)]
    assert len(_json_with(labels[:len(kept) + 1])) > MAX_TAG  # as many as fit
    assert tags[LABEL_COUNT_TAG] == "600"
    assert f"first {len(kept)} of 600 labels" in tags[TRUNCATED_TAG] and "MLmodel metadata" in tags[TRUNCATED_TAG]
    assert all(len(v) <= MAX_TAG for v in tags.values())
    short = label_tags(["neg", "pos"], MAX_TAG)
    assert short == {LABELS_TAG: '["neg", "pos"]', LABEL_COUNT_TAG: "2"}
    # the description names the first ones and how many more; a token task's are its tags
    line = labels_line(labels, "sequence")
    assert line.startswith("labels (600): category-0000-é, category-0001-é, ") and len(line) < 400
    assert line.endswith(f"… and {600 - line.count('category-')} more (tag {LABELS_TAG}, MLmodel metadata).")
    assert labels_line(["O", "B-PER", "I-PER"], "token") == "tags (3): O, B-PER, I-PER."


def _json_with(labels):
    return json.dumps(labels, ensure_ascii=False)
