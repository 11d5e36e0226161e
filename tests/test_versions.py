"""``ptv2 versions``: what is registered, per task, from the command line (there was no way to list
it: only the MLflow UI). Real parts: the registry tests' trec adapter (trained once per test
process) registered in a fresh sqlite store, the ``ptv2`` entry point in this process."""
from __future__ import annotations

import json
import re

import pytest

from conftest import run_cli as ptv2  # the real command line, in this process
from test_registry_support import adapters_fixture

KEYS = ["model", "version", "aliases", "task", "task_type", "labels", "label_count", "labels_truncated", "prompt_len",
        "base_model", "metric", "dev", "test", "created", "run_id"]
TREC = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """ptv2-trec: version 1 registered by ptv2 (labels tags) and aliased @champion; version 2 as one
    registered before the labels tags existed (their tags left out), @challenger, whose files are
    nowhere (listing must not download them); and another team's model with no task tag (~6 s)."""
    from mlflow import MlflowClient

    from components.registry.labels import LABEL_COUNT_TAG, LABELS_TAG
    from components.registry.register import register_adapter

    root = tmp_path_factory.mktemp("versions")
    adapter = adapters_fixture(tmp_path_factory)["bad"]
    with pytest.MonkeyPatch.context() as m:
        m.delenv("MLFLOW_TRACKING_URI", raising=False)
        m.setenv("PTV2_HOME", str(root / "home"))
        (root / "home").mkdir()
        uri = f"sqlite:///{root / 'home' / 'mlflow.db'}"
        v1 = register_adapter(adapter, "trec", tracking_uri=uri)
        c = MlflowClient(tracking_uri=uri, registry_uri=uri)
        first = c.get_model_version(v1.name, "1")
        old_tags = {k: v for k, v in first.tags.items() if k not in (LABELS_TAG, LABEL_COUNT_TAG)}
        c.create_model_version(v1.name, f"file://{root}/gone/model", run_id=first.run_id, tags=old_tags)
        c.set_registered_model_alias(v1.name, "champion", "1")
        c.set_registered_model_alias(v1.name, "challenger", "2")
        c.create_registered_model("someone-elses-model")
        # another team's model on a shared server, tagged ``task`` like ptv2's but no ptv2 version tags
        c.create_registered_model("their-classifier", tags={"task": "sentiment"})
        c.create_model_version("their-classifier", f"file://{root}/theirs", tags={"task": "sentiment",
                                                                                 "dev_accuracy": "0.9"})
        # a ptv2 model registered before the marker tag (task tag, ptv2's version tags) whose scores
        # are not finite: a diverged run's dev score 'nan', a test score 'inf'
        c.create_registered_model("ptv2-odd", tags={"task": "odd", "task_type": "sequence"})
        c.create_model_version("ptv2-odd", f"file://{root}/gone/odd", run_id=first.run_id,
                               tags=old_tags | {"task": "odd", "dev_accuracy": "nan", "test_accuracy": "inf"})
        yield uri, first
    import mlflow

    mlflow.set_tracking_uri(None)


def test_the_table_shows_each_version_with_its_alias_labels_and_scores(registry):
    uri, first = registry
    r = ptv2("versions")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    lines = r.stdout.splitlines()
    assert all(x in lines[0] for x in ("model", "version", "aliases", "labels", "prompt len", "base model", "dev",
                                        "test", "created (UTC)", "run")), r.stdout
    v1 = next(x for x in lines if x.split()[:2] == ["ptv2-trec", "1"])
    v2 = next(x for x in lines if x.split()[:2] == ["ptv2-trec", "2"])
    assert lines.index(v2) < lines.index(v1)  # newest first
    assert "@champion" in v1 and "sequence" in v1 and "6: ABBR, DESC, ENTY, HUM, LOC, NUM" in v1 and "minilm" in v1
    assert f"{float(first.tags['test_accuracy']):.4f}" in v1 and first.run_id in v1 and " 4 " in v1
    # no labels tags: '-', and its (missing) files were not fetched ("6:" alone is in a time such as 16:55)
    assert "@challenger" in v2 and "6: ABBR" not in v2
    assert "someone-elses-model" not in r.stdout  # not ptv2's
    assert f"MLflow store: {uri}" in r.stdout


def test_json_is_one_array_with_stable_keys_and_the_labels(registry):
    uri, first = registry
    r = ptv2("versions", "--task", "trec", "--json")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    rows = json.loads(r.stdout)
    assert [list(x) for x in rows] == [KEYS, KEYS] and [x["version"] for x in rows] == [2, 1]
    new, old = rows[1], rows[0]
    assert (new["aliases"], new["labels"], new["label_count"], new["labels_truncated"]) == (["champion"], TREC, 6, False)
    assert (new["model"], new["task"], new["task_type"], new["prompt_len"], new["base_model"], new["metric"]) == (
        "ptv2-trec", "trec", "sequence", 4, "minilm", "accuracy")
    assert new["test"]["accuracy"] == float(first.tags["test_accuracy"]) and "accuracy" in new["dev"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", new["created"]) and new["run_id"] == first.run_id
    assert (old["aliases"], old["labels"], old["label_count"], old["task_type"]) == (["challenger"], None, None,
                                                                                     "sequence")


def test_an_unknown_task_is_one_error_line(registry):
    uri, _ = registry
    r = ptv2("versions", "--task", "nope")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"error: no registered model 'ptv2-nope' for 'nope' in {uri} (register one with `ptv2 register`)\n"


def test_an_empty_registry_says_so(registry, tmp_path):
    """A store holding no ptv2 model (another team's only): a line on stderr, exit 0; --json: []."""
    import shutil

    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    shutil.copy(registry[0].removeprefix("sqlite:///"), tmp_path / "mlflow.db")  # no new schema (~6 s)
    for name in ("ptv2-trec", "ptv2-odd"):
        MlflowClient(tracking_uri=uri, registry_uri=uri).delete_registered_model(name)
    r = ptv2("versions", "--mlflow-uri", uri)
    assert (r.returncode, r.stdout) == (0, "")
    assert r.stderr == f"no ptv2 registered models in {uri} (register one with `ptv2 register`)\n"
    r = ptv2("versions", "--mlflow-uri", uri, "--json")
    assert (r.returncode, json.loads(r.stdout)) == (0, [])


@pytest.mark.parametrize("uri, said", [
    ("http://ops:s3cret@127.0.0.1:{port}", "listing registered models failed against the MLflow store at "
                                           "http://ops:***@127.0.0.1:{port}: server unreachable (connection refused"),
    ("postgresql://ops:s3cret@127.0.0.1:{port}/db", "cannot open the MLflow store postgresql+psycopg2://ops:***@127.0.0.1:"
                                                    "{port}/db: connection to server at"),
    ("sqlite:///{tmp}/no/such/folder/mlflow.db", "MLflow store sqlite:///{tmp}/no/such/folder/mlflow.db: its folder "
                                                 "'{tmp}/no/such/folder' does not exist")])
def test_an_unreachable_or_bad_store_is_one_error_line_without_the_password(uri, said, tmp_path, monkeypatch):
    from test_registry_support import free_port

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # refused at once, not after ~7 s of backoff
    port = free_port()
    r = ptv2("versions", "--mlflow-uri", uri.format(port=port, tmp=tmp_path))
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.startswith("error: " + said.format(port=port, tmp=tmp_path)), r.stderr
    assert r.stderr.count("\n") == 1 and "s3cret" not in r.stderr, r.stderr


def test_another_teams_model_tagged_task_is_not_listed_but_an_old_ptv2_model_is(registry):
    """A shared store: ``task`` alone does not make a model ptv2's; ptv2's marker tag, or (registered
    before it) ptv2's own version tags do."""
    from mlflow import MlflowClient

    from components.registry.register import MODEL_MARKER_TAG

    uri, first = registry
    r = ptv2("versions")
    assert r.returncode == 0 and "their-classifier" not in r.stdout and "ptv2-odd" in r.stdout, r.stdout
    tags = MlflowClient(tracking_uri=uri, registry_uri=uri).get_registered_model(first.name).tags
    assert tags.get(MODEL_MARKER_TAG) == "ptv2"


def test_non_finite_scores_are_null_in_json_and_a_dash_in_the_table(registry):
    r = ptv2("versions", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout, parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))
    odd = next(x for x in rows if x["model"] == "ptv2-odd")
    assert (odd["dev"]["accuracy"], odd["test"]["accuracy"]) == (None, None) and odd["dev"]["loss"] > 0
    cells = next(x for x in ptv2("versions").stdout.splitlines() if x.split()[:1] == ["ptv2-odd"]).split()
    at = cells.index("accuracy")
    assert cells[at + 1:at + 3] == ["-", "-"] and not {"nan", "inf"} & {c.lower() for c in cells}, cells


def test_one_paged_search_lists_every_version(registry, monkeypatch):
    """One version search for all models, not one per registered model; paged (1 version a page), the same rows."""
    from mlflow import MlflowClient

    from components.registry import listing

    calls = []
    real = MlflowClient.search_model_versions
    monkeypatch.setattr(MlflowClient, "search_model_versions", lambda self, *a, **k: calls.append(k) or real(self, *a, **k))
    before = ptv2("versions", "--json").stdout
    assert len(calls) == 1
    monkeypatch.setattr(listing, "PAGE", 1)
    assert ptv2("versions", "--json").stdout == before and len(calls) >= 1 + 4  # 4 versions in the store
