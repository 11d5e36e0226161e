"""Registry on the default store (sqlite file + local artifact folder under PTV2_HOME, nothing
to start): register, load by alias, predict (classification and NER), bad input, rollback,
two processes registering at once. Refusals run the real entry point in this process
(`conftest.run_cli`: a fresh interpreter costs seconds of imports); registering and predicting
through the command line stay a process (what a shell sees on stderr)."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import run_cli
from ptv2_core.errors import Ptv2Error
from test_registry_support import adapters_fixture, base_env, copy_adapter, error_line, ptv2, registry_state

TEXTS = ["What is the capital of France ?", "Who wrote Hamlet ?", "How many legs does a spider have ?"]


@pytest.fixture(scope="session")
def adapters(tmp_path_factory):
    return adapters_fixture(tmp_path_factory)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """PTV2_HOME of the default store; MLFLOW_TRACKING_URI unset, so the sqlite default is used."""
    home = tmp_path_factory.mktemp("registry-home")
    with pytest.MonkeyPatch.context() as m:
        m.delenv("MLFLOW_TRACKING_URI", raising=False)
        m.setenv("PTV2_HOME", str(home))
        yield home
    import mlflow

    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def store(home) -> str:
    from optuna_studies import settings

    uri = settings.mlflow_tracking_uri()
    assert uri == f"sqlite:///{home / 'mlflow.db'}"
    _client(uri).search_registered_models()  # create the tables once, before any concurrent writer
    return uri


def _client(uri):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_register_load_by_alias_predict_classification(adapters, home, store):
    import mlflow
    from components.registry.register import register_adapter
    from ptv2_core.adapter import load_adapter
    from ptv2_core.predict import predict

    v = register_adapter(adapters["good"], "trec", tags={"study": "trec-study"})  # no URI: the default store
    assert (v.name, v.version, v.aliases) == ("ptv2-trec", 1, ("challenger",))
    assert (home / "mlflow.db").is_file()

    mv = _client(store).get_model_version("ptv2-trec", "1")
    metrics = json.loads((adapters["good"] / "metrics.json").read_text())
    t = mv.tags
    assert (t["task"], t["prompt_len"], t["study"], t["base_model"]) == ("trec", "4", "trec-study", "minilm")
    assert float(t["lr"]) == pytest.approx(metrics["lr"])
    assert float(t["dev_accuracy"]) == pytest.approx(metrics["dev"]["accuracy"], abs=1e-5)
    assert float(t["test_accuracy"]) == pytest.approx(metrics["test"]["accuracy"], abs=1e-5)
    assert t["data_hash"].startswith("sha256:") and len(t["data_hash"]) == 71
    assert t["base_fingerprint"] == metrics["base_fingerprint"]
    cfg = json.loads((adapters["good"] / "adapter_config.json").read_text())
    assert t["base_tokenizer_fingerprint"] == cfg["base_model"]["tokenizer_fingerprint"]
    assert t["code_version"].startswith("0.1.0")
    assert not any(k.startswith("ptv2.search") or k == "ptv2.trial_run_id" for k in t)  # `ptv2 train`'s: no search
    assert t["subset"] == "stratified" and "metrics_subset" not in t  # trained with --max-eval, stratified

    # the artifact is the adapter by reference to its base: kilobytes, not the 88 MB MiniLM
    src = Path(mv.source.removeprefix("file://"))
    assert src.is_relative_to(home / "mlartifacts")
    sizes = {p.relative_to(src).as_posix(): p.stat().st_size for p in src.rglob("*") if p.is_file()}
    assert sum(sizes.values()) < 1_000_000, sizes
    assert {"MLmodel", "input_example.json", "artifacts/adapter/adapter.safetensors",
            "artifacts/adapter/adapter_config.json"} <= set(sizes)
    assert not any(k.endswith((".pkl", ".bin")) or k == "python_model.pkl" for k in sizes)  # nothing pickled

    mlflow.set_tracking_uri(store)
    model = mlflow.pyfunc.load_model("models:/ptv2-trec@challenger")
    sig = model.metadata.signature
    assert sig.inputs.input_names() == ["text"] and sig.outputs.input_names() == ["label", "score"]
    out = model.predict(pd.DataFrame({"text": TEXTS}))
    assert list(out.columns) == ["label", "score"] and len(out) == 3
    direct = predict(load_adapter(adapters["good"]), TEXTS)
    assert out["label"].tolist() == [r["label"] for r in direct]
    assert out["score"].tolist() == pytest.approx([r["score"] for r in direct], abs=1e-5)
    # nothing to classify: no label made up (the word "None" got one, as did "" and "   ")
    blank = model.predict(pd.DataFrame({"text": ["", "   ", None, TEXTS[0]]}))
    assert blank["label"].isna().tolist() == [True, True, True, False] and blank["score"].isna().sum() == 3
    assert blank["label"].tolist()[3] == direct[0]["label"]
    from components.registry.pyfunc_model import _texts

    assert _texts(pd.DataFrame({"text": pd.array(["a", pd.NA], dtype="string")})) == ["a", ""]  # not "<NA>"


def test_an_adapter_trained_before_the_subset_rule_was_recorded_says_its_metrics_came_from_a_random_subset(
        adapters, tmp_path):
    """`--max-eval` drew a random subset until 2026-12-06 and the adapter did not say so: its
    dev_*/test_* tags are from other rows than the stratified ones data_hash now covers."""
    import shutil

    from components.registry.metadata import describe_adapter

    old = tmp_path / "old"
    shutil.copytree(adapters["good"], old)
    config = json.loads((old / "adapter_config.json").read_text())
    assert config["extra"]["train_config"].pop("subset") == "stratified"
    (old / "adapter_config.json").write_text(json.dumps(config))
    assert describe_adapter(old, "trec").tags["metrics_subset"] == "random"
    assert "metrics_subset" not in describe_adapter(adapters["good"], "trec").tags


def test_ptv2_never_runs_the_code_stored_with_a_version_and_needs_its_digests(adapters, store, tmp_path):
    """MLflow's loader runs the model_code.py stored with a version: whoever can write to the
    artifact store could run code in `ptv2 predict/eval/promote --model`. ptv2 loads with its
    installed code, reading only data from the store; and a version whose MLmodel lost the
    adapter digests no longer loads whatever files lie beside it."""
    import yaml

    from components.registry.load import load_registered
    from components.registry.register import register_adapter

    v = register_adapter(adapters["good"], "trec", name="ptv2-trec-stored-code")
    src = Path(_client(store).get_model_version(v.name, str(v.version)).source.removeprefix("file://"))
    marker = tmp_path / "ran"
    (src / "model_code.py").write_text((src / "model_code.py").read_text()
                                       + f"\nopen({str(marker)!r}, 'w').write('stored code ran')\n")
    loaded = load_registered(f"models:/{v.name}/{v.version}")
    assert not marker.exists()
    assert loaded.model.predict(None, pd.DataFrame({"text": TEXTS}))["label"].tolist() == \
        [r["label"] for r in __import__("ptv2_core.predict", fromlist=["predict"]).predict(loaded.adapter, TEXTS)]

    meta = yaml.safe_load((src / "MLmodel").read_text())
    del meta["flavors"]["python_function"]["config"]
    (src / "MLmodel").write_text(yaml.safe_dump(meta))
    with pytest.raises(Ptv2Error, match="records no SHA-256 of adapter.safetensors and adapter_config.json"):
        load_registered(f"models:/{v.name}/{v.version}")
    assert not marker.exists()


def test_plain_mlflow_predict_of_a_dict_of_texts_labels_each_text(adapters, store):
    """``model.predict({"text": [a, b, c]})`` gave ONE row: MLflow makes a dict whose values are lists
    of strings a one-row frame (the list in its ``text`` cell), and the model labelled the list's repr
    ``"['a', 'b', 'c']"``. Each text gets its row now; a list among other rows is refused, not labelled."""
    import mlflow
    from components.registry.register import register_adapter

    v = register_adapter(adapters["good"], "trec", name="ptv2-trec-dict-input")
    mlflow.set_tracking_uri(store)
    model = mlflow.pyfunc.load_model(f"models:/{v.name}/{v.version}")
    frame = model.predict(pd.DataFrame({"text": TEXTS}))
    for given, rows in (({"text": TEXTS}, [0, 1, 2]), ({"text": [TEXTS[1]]}, [1]), ({"text": TEXTS[2]}, [2])):
        out = model.predict(given)
        assert out["label"].tolist() == frame["label"][rows].tolist(), given
        assert out["score"].tolist() == pytest.approx(frame["score"][rows].tolist(), abs=1e-5), given
    with pytest.raises(Exception, match="a text must be a string, not a list"):
        model.predict(pd.DataFrame({"text": [TEXTS[:2], TEXTS[2]]}))


def test_register_and_predict_ner_through_the_cli(adapters, home, store):
    env = base_env(PTV2_HOME=str(home))
    # no --task: the task the adapter was trained on
    r = ptv2("register", "--adapter", str(adapters["ner"]), "--tag", "study=ner-study", env=env)
    assert r.returncode == 0, r.stderr
    assert "registered ptv2-wnut16 version 1 (aliases: challenger)" in r.stdout
    # stdout is the result alone; the long stages are said on stderr as they start
    assert r.stdout.splitlines() == ["registered ptv2-wnut16 version 1 (aliases: challenger); load it with "
                                     "models:/ptv2-wnut16@challenger"]
    assert r.stderr.splitlines() == [
        "building the model from the adapter on base model 'minilm' and checking it loads back and predicts …",
        f"opening the MLflow store at {store} …", "registering a new version of 'ptv2-wnut16' …"], r.stderr
    assert "Downloading artifacts" not in r.stderr  # MLflow's bar while save_model copied the adapter's files
    assert "INFO mlflow" not in r.stderr, r.stderr  # e.g. "Validating input example against model signature"
    text = "Going to see Taylor Swift in New York tonight"
    r = ptv2("predict", "--model", "models:/ptv2-wnut16@challenger", "--json", text, env=env)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 1 and rows[0]["tokens"] == text.split()
    labels = set(json.loads((adapters["ner"] / "adapter_config.json").read_text())["task"]["labels"])
    assert len(rows[0]["tags"]) == len(rows[0]["scores"]) == 9 and set(rows[0]["tags"]) <= labels
    assert all(0 < s <= 1 for s in rows[0]["scores"])
    assert _client(store).get_model_version("ptv2-wnut16", "1").tags["task_type"] == "token"

    # the registered version scores as its adapter folder does (eval --model, as predict --model)
    # (in this process: the module's PTV2_HOME is the same store)
    from conftest import run_cli

    device_before = os.environ.get("PTV2_DEVICE")
    by_model = run_cli("eval", "--model", "models:/ptv2-wnut16@challenger", "--max-eval", "16")
    by_folder = run_cli("eval", "--adapter", str(adapters["ner"]), "--max-eval", "16")
    assert by_model.returncode == by_folder.returncode == 0, by_model.stderr + by_folder.stderr
    scored = json.loads(by_model.stdout)
    assert scored == json.loads(by_folder.stdout) and {"dev", "test"} <= set(scored), scored
    r = run_cli("eval", "--model", "models:/ptv2-wnut16@champion")
    assert r.returncode == 2 and "has no alias 'champion' (aliases: challenger)" in error_line(r.stderr)
    assert os.environ.get("PTV2_DEVICE") == device_before  # loading a registered version left the environment as it was

    # --device auto leaves the choice to PTV2_DEVICE, as serving does; an explicit --device wins
    # (this machine has no CUDA, so a PTV2_DEVICE of cuda that is obeyed is an error)
    if not torch.cuda.is_available():
        os.environ["PTV2_DEVICE"] = "cuda"
        try:
            obeyed = run_cli("eval", "--model", "models:/ptv2-wnut16@challenger", "--max-eval", "4")
            overridden = run_cli("eval", "--model", "models:/ptv2-wnut16@challenger", "--max-eval", "4",
                                 "--device", "cpu")
        finally:
            if device_before is None:
                os.environ.pop("PTV2_DEVICE")
            else:
                os.environ["PTV2_DEVICE"] = device_before
        assert obeyed.returncode == 2 and "cuda" in error_line(obeyed.stderr), obeyed.stderr
        assert overridden.returncode == 0, overridden.stderr


def test_bad_input_is_an_error_and_leaves_the_registry_unchanged(adapters, home, store, tmp_path):
    from components.registry.register import register_adapter

    before = {n: registry_state(store, n) for n in ("ptv2-trec", "ptv2-wnut16")}
    runs_before = len(_client(store).search_runs([e.experiment_id for e in _client(store).search_experiments()]))

    r = run_cli("register", "--task", "nope", "--adapter", str(adapters["good"]))  # PTV2_HOME: the module's home
    assert r.returncode == 2 and error_line(r.stderr).startswith("error: unknown task 'nope'")
    with pytest.raises(Ptv2Error, match="trained for task 'wnut16', not 'trec'"):
        register_adapter(adapters["ner"], "trec")
    other_base = copy_adapter(adapters["good"], tmp_path / "fp", base_model={"fingerprint": "sha256:" + "0" * 64})
    with pytest.raises(Ptv2Error, match="fingerprint"):
        register_adapter(other_base, "trec")
    unknown_model = copy_adapter(adapters["good"], tmp_path / "unknown", base_model={"name": "no-such-model-xyz"})
    with pytest.raises(Ptv2Error, match="no-such-model-xyz"):
        register_adapter(unknown_model, "trec")
    corrupt = copy_adapter(adapters["good"], tmp_path / "corrupt")
    (corrupt / "adapter.safetensors").write_bytes((corrupt / "adapter.safetensors").read_bytes()[:100])
    with pytest.raises(Ptv2Error, match="corrupt"):
        register_adapter(corrupt, "trec")
    with pytest.raises(Ptv2Error, match="invalid registered model name"):
        register_adapter(adapters["good"], "trec", name="a/b")
    with pytest.raises(Ptv2Error, match=r"tags \['data_hash'\] are set by ptv2"):
        register_adapter(adapters["good"], "trec", tags={"data_hash": "forged"})
    # a promotion's record, ptv2's own keys and the metrics are computed: forged, they would pass for them
    # (test_span_f1 too, though this sequence adapter has none: ptv2 writes it for token tasks)
    for key in ("promotion.decision", "promotion.champion_version", "ptv2.search_run_id", "ptv2.registration_id",
                "test_span_f1", "dev_loss", "test_examples", "metrics_subset"):
        with pytest.raises(Ptv2Error, match=f"tags \\['{key}'\\] are set by ptv2"):
            register_adapter(adapters["good"], "trec", tags={key: "promoted"})
    # a user's own tag that merely starts like a metric is the user's (it is not logged as a metric either)
    from components.registry.metadata import describe_adapter

    assert describe_adapter(adapters["good"], "trec", {"test_suite": "nightly"}).tags["test_suite"] == "nightly"
    with pytest.raises(Ptv2Error) as e:  # as `ptv2 register --tag promotion.decision=promoted --tag ...` says it
        register_adapter(adapters["good"], "trec", tags={"promotion.decision": "promoted",
                                                         "promotion.champion_version": "0"})
    assert str(e.value) == ("tags ['promotion.champion_version', 'promotion.decision'] are set by ptv2 (keys "
                            "starting with promotion. or ptv2., the dev_/test_ metrics and the other computed ones) "
                            "and cannot be given")
    # MLflow refused these only after a run had been made for them: each left a FAILED run behind
    for key in ("k" * 251, "two\nlines", "a/../b", "a//b", "./x", "a/", "."):
        with pytest.raises(Ptv2Error, match="is not one MLflow takes"):
            register_adapter(adapters["good"], "trec", tags={key: "v"})

    assert {n: registry_state(store, n) for n in before} == before
    assert len(_client(store).search_runs([e.experiment_id for e in _client(store).search_experiments()])) == runs_before


def test_an_unknown_run_id_is_refused_before_the_model_is_built(adapters, store):
    """A mistyped `--run-id` was reported as the store failing ("MLflow store at ... failed: Run with
    id=... not found"), and only after the model had been built and loaded (~15 s)."""
    from components.registry.register import register_adapter
    from optuna_studies.urls import mask_url

    steps, before = [], registry_state(store, "ptv2-trec")
    with pytest.raises(Ptv2Error, match=f"^no MLflow run '{'0' * 32}' in {mask_url(store)}$"):
        register_adapter(adapters["good"], "trec", run_id="0" * 32, tracking_uri=store, on_step=steps.append)
    with pytest.raises(Ptv2Error, match=f"^no MLflow run 'not-a-run' in {mask_url(store)}$"):
        register_adapter(adapters["good"], "trec", run_id="not-a-run", tracking_uri=store, on_step=steps.append)
    assert steps == [] and registry_state(store, "ptv2-trec") == before


def test_a_sqlite_store_in_a_folder_that_does_not_exist_is_refused_not_made(adapters, tmp_path, monkeypatch):
    """`MLFLOW_TRACKING_URI=sqlite:////typo/dir/x.db ptv2 register` had MLflow make the folder and a
    new, empty registry there, the version registered in it. Refused as pretrain, search and promote
    refuse it (test_bad_input.py), before the model is built, writing nothing."""
    from conftest import run_cli

    typo = tmp_path / "typo" / "dir"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{typo / 'x.db'}")
    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    r = run_cli("register", "--task", "trec", "--adapter", str(adapters["good"]))
    assert (r.returncode, r.stderr) == (2, f"error: MLflow store sqlite:///{typo / 'x.db'}: its folder '{typo}' does "
                                           "not exist (create it, or point MLFLOW_TRACKING_URI at another store)\n")
    assert list(tmp_path.iterdir()) == []


def test_failure_after_the_version_exists_is_rolled_back(adapters, store, tmp_path):
    from mlflow.exceptions import MlflowException

    from components.registry.register import register_adapter

    def fail_at(step):
        if step == "created":
            raise RuntimeError("simulated failure after create_model_version")

    # the first version of a new model: the version and the registered model are removed again
    with pytest.raises(Ptv2Error, match="registry left as it was: .*simulated failure"):
        register_adapter(adapters["bad"], "trec", name="ptv2-rollback", on_step=fail_at)
    with pytest.raises(MlflowException, match="not found"):
        _client(store).get_registered_model("ptv2-rollback")
    runs = _client(store).search_runs([_client(store).get_experiment_by_name("ptv2-registry").experiment_id],
                                      order_by=["attributes.start_time DESC"], max_results=1)
    assert runs[0].info.status == "FAILED"

    # a later version: deleted again, the alias stays on the previous one
    v1 = register_adapter(adapters["bad"], "trec", name="ptv2-rollback")
    with pytest.raises(Ptv2Error, match="registry left as it was"):
        register_adapter(adapters["bad"], "trec", name="ptv2-rollback", on_step=fail_at)
    assert registry_state(store, "ptv2-rollback") == ({"challenger": v1.version}, [v1.version])

    # into a run of the caller's (--run-id): the run is left as it was, without the model files
    c = _client(store)
    run_id = c.create_run(c.create_experiment("ptv2-rollback-runs", artifact_location=(tmp_path / "runs").as_uri())).info.run_id
    c.log_text(run_id, "kept", "notes.txt")
    for at in ("logged", "created"):
        with pytest.raises(Ptv2Error, match="registry left as it was|no version was created"):
            register_adapter(adapters["bad"], "trec", name="ptv2-rollback", run_id=run_id,
                             on_step=lambda step, at=at: (_ for _ in ()).throw(RuntimeError("simulated")) if step == at else None)
        assert [a.path for a in c.list_artifacts(run_id)] == ["notes.txt"], at
        assert c.get_run(run_id).info.status == "RUNNING"
    assert registry_state(store, "ptv2-rollback") == ({"challenger": v1.version}, [v1.version])
    kept = register_adapter(adapters["bad"], "trec", name="ptv2-rollback", run_id=run_id)
    assert sorted(a.path for a in c.list_artifacts(run_id))[0].startswith("model-")
    assert registry_state(store, "ptv2-rollback") == ({"challenger": kept.version}, [v1.version, kept.version])


def test_registered_version_with_corrupt_artifact_or_changed_base_fails_to_load(adapters, home, store, tmp_path):
    from transformers import AutoModel, AutoTokenizer

    from components.registry.load import load_registered
    from components.registry.register import register_adapter
    from ptv2_core.backbone import resolve_model_name

    # a version whose base model is a folder that later changes under it
    base = tmp_path / "base"
    src = resolve_model_name("minilm")
    AutoModel.from_pretrained(src).save_pretrained(base)
    AutoTokenizer.from_pretrained(src).save_pretrained(base)
    moved = copy_adapter(adapters["good"], tmp_path / "on-folder", base_model={"name": str(base)})
    v = register_adapter(moved, "trec", name="ptv2-trec-folder-base")
    model = AutoModel.from_pretrained(base)
    with __import__("torch").no_grad():
        model.embeddings.word_embeddings.weight[0, 0] += 1.0
    model.save_pretrained(base)
    before = registry_state(store, v.name)
    r = run_cli("predict", "--model", f"models:/{v.name}@challenger", "When ?")
    assert r.returncode == 2 and "refusing a different base model" in error_line(r.stderr)
    assert registry_state(store, v.name) == before

    # a version whose stored adapter file was damaged
    mv = _client(store).get_model_version(v.name, str(v.version))
    weights = Path(mv.source.removeprefix("file://")) / "artifacts" / "adapter" / "adapter.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)  # same size, different bytes
    with pytest.raises(Ptv2Error, match="corrupt model artifact"):
        load_registered(f"models:/{v.name}/{v.version}")
    with pytest.raises(Ptv2Error, match="has no alias 'champion'"):
        load_registered(f"models:/{v.name}@champion")
    with pytest.raises(Ptv2Error, match="no version 7"):
        load_registered(f"models:/{v.name}/7")
    with pytest.raises(Ptv2Error, match="not models:/NAME@ALIAS"):
        load_registered(v.name)
    assert registry_state(store, v.name) == before


def test_two_processes_registering_at_once_get_distinct_versions(adapters, store):
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=__import__("test_registry_support").register_after_barrier,
                         args=(str(adapters["good"]), "trec", "ptv2-race", store, barrier, out)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert [r[0] for r in results] == ["ok", "ok"], results
    assert sorted(r[1] for r in results) == [1, 2]
    aliases, versions = registry_state(store, "ptv2-race")
    assert versions == [1, 2] and aliases == {"challenger": 2}
    # the process that created version 2 reports the alias on it; version 1 ends without one
    assert {r[1]: r[2] for r in results}[2] == ("challenger",)


def test_the_run_summary_shows_the_version_its_own_run_registered(adapters, store):
    """Two `ptv2 run` at once both showed the newest version, the other run's for one of them; the
    register step tags its version with the pipeline run, and the summary picks that one."""
    from components.registry.register import register_adapter
    from pipelines.local_run import registry_summary

    for run in ("ptv2-prompt-search-run-a", "ptv2-prompt-search-run-b"):
        register_adapter(adapters["good"], "trec", name_prefix="summary-", tracking_uri=store, tags={"pipeline_run": run})
    params = {"tasks": ["trec"], "registered_model_prefix": "summary-", "mlflow_uri": store}
    (a,), (b,) = (registry_summary(params, run) for run in ("ptv2-prompt-search-run-a", "ptv2-prompt-search-run-b"))
    assert (a["model"], str(a["version"]), str(b["version"])) == ("summary-trec", "1", "2")
    assert registry_summary(params, "some-other-run")[0]["version"] == "-"
    assert str(registry_summary(params)[0]["version"]) == "2"  # no run named: the newest


def test_a_name_mlflow_filters_cannot_quote_is_refused_before_anything_is_written(adapters, home, store):
    """`--name "team's-trec"` made a run and version 1, then listing the versions failed ("Invalid
    clause(s) in filter string": MLflow strips a filter's quotes, never unescapes them), and the
    cleanup, which lists them too, left the version without its alias and the run RUNNING."""
    from components.registry.register import register_adapter
    from pipelines.local_run import registry_summary

    client = _client(store)
    runs = lambda: len(client.search_runs([e.experiment_id for e in client.search_experiments()]))  # noqa: E731
    models, runs_before = {m.name for m in client.search_registered_models()}, runs()
    r = run_cli("register", "--adapter", str(adapters["good"]), "--name", "team's-trec")
    assert r.returncode == 2 and error_line(r.stderr).startswith(
        "error: invalid registered model name \"team's-trec\": it holds \"'\""), r.stderr
    for bad, kwargs in (('"', {"name": 'a"b'}), ("\\", {"name": "a\\b"}), ("'", {"name_prefix": "o'"})):
        with pytest.raises(Ptv2Error, match=f"it holds {bad!r}".replace("\\", "\\\\")):
            register_adapter(adapters["good"], "trec", **kwargs)
    # the run summary lists a prefix's versions with the same filter
    with pytest.raises(Ptv2Error, match="invalid registered model name \"o'trec\": it holds \"'\""):
        registry_summary({"tasks": ["trec"], "registered_model_prefix": "o'", "mlflow_uri": store})
    assert {m.name for m in client.search_registered_models()} == models and runs() == runs_before


def test_a_name_plain_mlflow_cannot_load_by_uri_is_refused_before_anything_is_written(adapters, home, store):
    """`--name 'q?x'` registered, and `ptv2 predict --model 'models:/q?x@challenger'` worked, but
    the URI it printed did not load in MLflow (`mlflow.pyfunc.load_model`, `mlflow models serve`):
    MLflow reads everything after '?' as a query ("Logged model with ID 'q' not found"), and drops
    tabs and line breaks ("Registered Model with name=tabx not found")."""
    import string

    from mlflow.store.artifact.utils.models import _parse_model_uri

    from components.registry.names import check_name, default_name
    from components.registry.register import register_adapter

    client = _client(store)
    models = {m.name for m in client.search_registered_models()}
    r = run_cli("register", "--adapter", str(adapters["good"]), "--name", "q?x")
    assert r.returncode == 2 and error_line(r.stderr).startswith(
        "error: invalid registered model name 'q?x': it holds '?'"), r.stderr
    for bad in ("\t", "\n", "\r", "\x00", "\x7f"):
        with pytest.raises(Ptv2Error, match="invalid registered model name .* a control or other non-printing character"):
            register_adapter(adapters["good"], "trec", name=f"a{bad}b")
    assert {m.name for m in client.search_registered_models()} == models
    assert default_name("what?") == "ptv2-what-"  # a task name may hold '?': its default model name does not
    # every name ptv2 lets through comes back whole from MLflow's URI parser
    for c in string.printable + "\xa0ü":
        name = f"a{c}b"
        try:
            check_name(name)
        except Ptv2Error:
            continue
        assert _parse_model_uri(f"models:/{name}@challenger").name == name, repr(name)
        assert _parse_model_uri(f"models:/{name}/1").name == name, repr(name)


def test_a_hub_tasks_model_registered_under_its_data_sets_name_still_takes_its_adapters(store):
    """Before 2026-12-06 a hub task was named by its data set (``user/data``), and its registered
    model tagged so; the task is ``user-data`` now (its adapters read as that). Registering a new
    version there was refused as another task's model, and promote called the two versions models
    of different tasks."""
    from components.registry.promote import not_comparable
    from components.registry.register import _check_registered_model

    client = _client(store)
    client.create_registered_model("ptv2-user-data", tags={"task": "user/data"})
    assert _check_registered_model(client, store, "ptv2-user-data", "user-data") is True
    with pytest.raises(Ptv2Error, match="holds adapters for task 'user/data', not 'other-data'"):
        _check_registered_model(client, store, "ptv2-user-data", "other-data")
    # any stored name a task may no longer have is read as its adapters are (``.hidden`` → ``hidden``)
    client.create_registered_model("ptv2-hidden", tags={"task": ".hidden"})
    assert _check_registered_model(client, store, "ptv2-hidden", "hidden") is True
    dot = client.create_model_version("ptv2-hidden", "file:///nonexistent/v1", tags={"task": ".hidden"})
    plain = client.create_model_version("ptv2-hidden", "file:///nonexistent/v2", tags={"task": "hidden"})
    assert not_comparable("ptv2-hidden", plain, dot, "hidden") is None

    old = client.create_model_version("ptv2-user-data", "file:///nonexistent/v1", tags={"task": "user/data"})
    new = client.create_model_version("ptv2-user-data", "file:///nonexistent/v2", tags={"task": "user-data"})
    other = client.create_model_version("ptv2-user-data", "file:///nonexistent/v3", tags={"task": "other-data"})
    assert not_comparable("ptv2-user-data", new, old, "hub:user/data") is None
    assert "models of different tasks" in not_comparable("ptv2-user-data", other, old, "hub:user/data")


class _SigintAfterCreateRun:
    """A real MlflowClient whose ``create_run`` gets a SIGINT the moment the store has written the run
    (Ctrl-C as `registering a new version` shows)."""

    def __init__(self, client):
        self._client = client

    def __getattr__(self, name):
        return getattr(self._client, name)

    def create_run(self, *args, **kwargs):
        import signal

        run = self._client.create_run(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)
        return run


def test_ctrl_c_as_the_registration_run_is_created_marks_it_failed(adapters, store, monkeypatch, python_sigint):
    from ptv2_core.errors import Ptv2Interrupted
    from components.registry import register, store as store_module

    real = store_module.client
    monkeypatch.setattr(register.store, "client", lambda uri: _SigintAfterCreateRun(real(uri)))
    with pytest.raises((Ptv2Interrupted, KeyboardInterrupt)) as e:  # a bare KeyboardInterrupt: the bug
        register.register_adapter(adapters["bad"], "trec", name="ptv2-sigint-run")
    assert isinstance(e.value, Ptv2Interrupted) and str(e.value) == "interrupted; no version was created", repr(e.value)
    c = _client(store)
    runs = c.search_runs([c.get_experiment_by_name("ptv2-registry").experiment_id],
                         filter_string="tags.`ptv2.registered_model` = 'ptv2-sigint-run'")
    assert [r.info.status for r in runs] == ["FAILED"]
    assert not c.search_model_versions("name = 'ptv2-sigint-run'")


def test_ctrl_c_after_the_version_exists_says_the_registry_is_left_as_it_was(adapters, store):
    from ptv2_core.errors import Ptv2Interrupted
    from components.registry.register import register_adapter

    def interrupt_at(step):
        if step == "created":
            raise KeyboardInterrupt

    v1 = register_adapter(adapters["bad"], "trec", name="ptv2-sigint-version")
    with pytest.raises((Ptv2Interrupted, KeyboardInterrupt)) as e:
        register_adapter(adapters["bad"], "trec", name="ptv2-sigint-version", on_step=interrupt_at)
    assert isinstance(e.value, Ptv2Interrupted) and str(e.value) == "interrupted; registry left as it was", repr(e.value)
    assert registry_state(store, "ptv2-sigint-version") == ({"challenger": v1.version}, [v1.version])


def test_ctrl_c_before_the_store_is_written_says_no_version_was_created(adapters, store):
    """Ctrl-C while the model was built and loaded back (the first ~15 s of `ptv2 register`) ended
    with a bare `error: interrupted`: the docs' "no version was created" came only later."""
    from ptv2_core.errors import Ptv2Interrupted
    from components.registry.register import register_adapter

    def interrupt_at(step):
        if step == "validated":
            raise KeyboardInterrupt

    with pytest.raises((Ptv2Interrupted, KeyboardInterrupt)) as e:
        register_adapter(adapters["bad"], "trec", name="ptv2-sigint-build", on_step=interrupt_at)
    assert isinstance(e.value, Ptv2Interrupted) and str(e.value) == "interrupted; no version was created", repr(e.value)
    assert registry_state(store, "ptv2-sigint-build") == ({}, [])


def test_a_name_holding_another_tasks_adapters_is_refused_before_the_model_is_built(adapters, store):
    """The docs say a name is input refused before the model is built, as one error line; a name whose
    registered model holds another task's adapters was refused only after the build and load-back
    (~15 s), behind two progress lines."""
    from components.registry.register import register_adapter

    register_adapter(adapters["bad"], "trec", name="ptv2-held-by-trec")
    said, steps = [], []
    with pytest.raises(Ptv2Error, match="registered model 'ptv2-held-by-trec' holds adapters for task 'trec', "
                                        "not 'wnut16'"):
        register_adapter(adapters["ner"], "wnut16", name="ptv2-held-by-trec", echo=said.append, on_step=steps.append)
    assert (said, steps) == ([], [])
    assert registry_state(store, "ptv2-held-by-trec") == ({"challenger": 1}, [1])
