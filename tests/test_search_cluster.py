"""Search on a real multi-node Ray: clusters of `ray start` processes on this machine, joined by
address and through Ray Client, with and without a shared folder.
"""
from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess

import optuna
import pytest
import yaml

from search_ray_support import (  # noqa: F401  (fixtures are used by name)
    PTV2, write_space, OPTUNA_STATE, markers, ptv2_home, mlflow_uri, mlflow_runs, free_port, ray_cluster,
)
from test_search import tiny_model  # noqa: F401  (module fixture: a tiny BERT model folder)


@pytest.fixture
def two_host_cluster():
    """As two_node_cluster, but the worker node registers as another machine: 127.0.0.2."""
    yield from ray_cluster(("--node-ip-address=127.0.0.2",))


def test_a_cluster_on_two_hosts_needs_a_shared_folder(two_host_cluster, tiny_model, tmp_path):
    """Nodes on another machine: refused before anything is written, unless a shared folder
    holds the work and the trials' file inputs; with one, `ptv2 search` joins the two-node cluster
    through RAY_ADDRESS (with its auth token) and a trial runs on each host."""
    address, env = two_host_cluster
    trace, mlflow_db = tmp_path / "trace", tmp_path / "mlflow.db"
    env = env | {"RAY_ADDRESS": address, "PTV2_SEARCH_TRACE_DIR": str(trace), "HF_HUB_OFFLINE": "1",
                 "PTV2_HOME": str(tmp_path / "home")}

    def search(model: str, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([PTV2, "search", "--task", "trec", "--model", model, "--space",
                               str(write_space(tmp_path)), "--max-train", "48", "--max-eval", "48", "--concurrency",
                               "2", "--mlflow-uri", f"sqlite:///{mlflow_db}", "--out", str(tmp_path / "out"), *extra],
                              env=env, capture_output=True, text=True, timeout=400)

    refused = search(tiny_model)
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1, refused.stderr[-3000:]
    assert lines[0].startswith("error:") and "127.0.0.2" in lines[0] and "--shared-dir" in lines[0]
    # nothing written: no output, no work folder, no study, no MLflow run
    assert {p.name for p in tmp_path.iterdir()} <= {"space.yaml", "home"}
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").iterdir())
    shared = tmp_path / "shared"
    model = shutil.copytree(tiny_model, shared / "model")
    out = search(str(model), "--shared-dir", str(shared))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "best: prompt_len" in out.stdout
    ran = markers(trace)
    assert len(ran) == 2 and len({m["node"] for m in ran}) == 2, ran
    assert (tmp_path / "out" / "adapter" / "adapter_config.json").is_file()
    assert list((shared / "ptv2-searches").iterdir()) == []  # the work folder was there, and is cleaned up


@pytest.fixture(scope="module")
def two_node_cluster():
    """A head and a worker node that also serve Ray Client: yields the GCS address, the ray://
    address and the environment (with the cluster's auth token)."""
    port = free_port()
    for address, env in ray_cluster(client_port=port):
        yield address, f"ray://127.0.0.1:{port}", env


def test_a_trial_larger_than_every_node_is_refused(two_node_cluster, tiny_model, tmp_path):
    """2 CPUs in all, 1 per node: a trial of 2 CPUs fits no node (Tune would wait for ever); no wait for an
    autoscaler. (A search joining a two-node cluster through RAY_ADDRESS, its auth token and one trial per
    node: test_a_cluster_on_two_hosts_needs_a_shared_folder; through Ray Client: test_search_through_ray_client.)"""
    address, _, env = two_node_cluster
    env = env | {"RAY_ADDRESS": address, "HF_HUB_OFFLINE": "1", "PTV2_HOME": str(tmp_path / "home"),
                 "PTV2_RAY_SCALE_WAIT": "0"}
    big = subprocess.run([PTV2, "search", "--task", "trec", "--model", tiny_model, "--cpus-per-trial", "2",
                          "--out", str(tmp_path / "big")], env=env, capture_output=True, text=True, timeout=300)
    assert big.returncode == 2 and big.stderr.strip().splitlines()[-1] == (
        "error: a trial needs 2 CPU and 0 GPU on one node, but the largest of the Ray cluster's 2 nodes has 1 CPU "
        "and 0 GPU"), big.stderr


def test_search_through_ray_client(two_node_cluster, tiny_model, tmp_path, mlflow_uri):
    """`ptv2 search --ray-address ray://…`, as from a laptop or a pipeline pod to a KubeRay head:
    the trials' progress lines still reach the user, and records, MLflow runs and the study agree
    on every trial's Optuna number and state."""
    _, address, env = two_node_cluster
    trace, storage = tmp_path / "trace", f"sqlite:///{tmp_path}/optuna.db"
    env = env | {"PTV2_SEARCH_TRACE_DIR": str(trace), "HF_HUB_OFFLINE": "1", "PTV2_HOME": str(tmp_path / "home")}
    out = subprocess.run([PTV2, "search", "--task", "trec", "--model", tiny_model, "--space", str(write_space(tmp_path)),
                          "--max-train", "48", "--max-eval", "48", "--concurrency", "2", "--ray-address", address,
                          "--storage", storage, "--mlflow-uri", mlflow_uri, "--out", str(tmp_path / "out")],
                         env=env, capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "best: prompt_len" in out.stdout and (tmp_path / "out" / "adapter" / "adapter_config.json").is_file()
    lines = out.stderr.splitlines()
    started = [line.split()[1] for line in lines if re.fullmatch(r"trial \d+ started \(.*\)", line)]
    ended = dict(line.split()[::2][:2] for line in lines if re.match(r"\[\d/2\] trial \d+ \(", line))
    assert sorted(started) == ["0", "1"] and ended.keys() == {"[1/2]", "[2/2]"}, out.stderr[-3000:]
    assert sorted(ended.values()) == ["0", "1"], out.stderr[-3000:]
    ran = markers(trace)
    assert len(ran) == 2 and len({m["node"] for m in ran}) == 2, ran

    with open(tmp_path / "out" / "trials.csv") as f:
        trials = list(csv.DictReader(f))
    best = json.loads((tmp_path / "out" / "best.json").read_text())
    study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
    assert {t.user_attrs["ray_trial_id"]: (t.number, t.state) for t in study.trials} == {
        r["ray_trial_id"]: (int(r["number"]), OPTUNA_STATE[r["status"]]) for r in trials}
    _, _, children = mlflow_runs(mlflow_uri, best["mlflow"]["parent_run_id"])
    assert sorted(c.info.run_name.split(" ")[0] for c in children) == ["trial-0", "trial-1"]
