"""A joined Ray cluster that cannot hold a trial yet: the search asks its autoscaler for a node and
waits (``PTV2_RAY_SCALE_WAIT``), as KubeRay's GPU group starts at zero workers and the CPU group
may scale to zero when idle (k8s/base/raycluster.yaml). It used to refuse at once ("the Ray
cluster has 0 CPU"), so the autoscaler never saw a demand and such a cluster could not run a
search at all.

Real processes: a Ray head offering no CPU (as the KubeRay head does: ``num-cpus: "0"``), started
with `ray start`; the node the autoscaler would add is a `ray start --address` run while the
search waits.
"""
from __future__ import annotations

import os
import secrets
import subprocess
import threading

import pytest

from test_search import tiny_model  # noqa: F401  (module fixture: a tiny BERT model folder)
from search_ray_support import PTV2, RAY, free_port, kill_ray_using, short_tmpdir, write_space


@pytest.fixture
def cpu_less_head():
    """A head node with no CPU, token auth on: yields its address and the environment that joins it."""
    tmp = short_tmpdir("ptv2as")
    port = free_port()
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    try:
        subprocess.run([RAY, "start", "--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={tmp}",
                        "--num-cpus=0", "--object-store-memory=100000000", "--disable-usage-stats"],
                       env=env, check=True, capture_output=True, timeout=120)
        yield f"127.0.0.1:{port}", env
    finally:
        kill_ray_using(tmp)


def search_args(tmp_path, tiny_model: str) -> list[str]:
    return [PTV2, "search", "--task", "trec", "--model", tiny_model,
            "--space", str(write_space(tmp_path, trials=1, epochs=1)), "--max-train", "32", "--max-eval", "32",
            "--mlflow-uri", f"sqlite:///{tmp_path}/mlflow.db", "--storage", f"sqlite:///{tmp_path}/optuna.db",
            "--out", str(tmp_path / "out")]


def test_a_search_waits_for_a_node_to_join_and_fails_alone_when_none_does(cpu_less_head, tiny_model, tmp_path):
    address, env = cpu_less_head
    env = env | {"RAY_ADDRESS": address, "HF_HUB_OFFLINE": "1", "PTV2_HOME": str(tmp_path / "home")}

    # nothing joins within the wait: the same one error line as before, and nothing written
    res = subprocess.run(search_args(tmp_path, tiny_model), env=env | {"PTV2_RAY_SCALE_WAIT": "1"},
                         capture_output=True, text=True, timeout=300)
    err = res.stderr.strip().splitlines()
    assert res.returncode == 2 and err[-1].startswith("error: a trial needs 1 CPU and 0 GPU on one node, but the Ray "
                                                      "cluster has 0 CPU and 0 GPU, and no such node joined in 1 s"), \
        res.stderr
    assert "waiting up to 1 s" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "optuna.db").exists()

    # a node joins while the search waits (what the autoscaler does): the search goes on and finishes
    with open(tmp_path / "stdout.txt", "w") as stdout:  # stderr is read below, line by line, by one reader only
        proc = subprocess.Popen(search_args(tmp_path, tiny_model), env=env | {"PTV2_RAY_SCALE_WAIT": "240"},
                                stdout=stdout, stderr=subprocess.PIPE, text=True)
    lines, joined = [], []

    def read_and_add_a_node() -> None:
        for line in proc.stderr:
            lines.append(line)
            if "asked its autoscaler for a node" in line and not joined:
                joined.append(subprocess.run([RAY, "start", f"--address={address}", "--num-cpus=1",
                                              "--object-store-memory=100000000", "--disable-usage-stats"],
                                             env=env, capture_output=True, timeout=120).returncode)

    reader = threading.Thread(target=read_and_add_a_node)
    reader.start()
    try:
        proc.wait(timeout=400)
    finally:
        proc.kill()
        reader.join(timeout=60)
    text, out = "".join(lines), (tmp_path / "stdout.txt").read_text()
    assert joined == [0], text[-3000:]
    assert proc.returncode == 0, text[-3000:]
    assert "a node with 1 CPU and 0 GPU joined the Ray cluster" in text
    assert "best: prompt_len" in out
    assert (tmp_path / "out" / "adapter" / "adapter_config.json").is_file()


def test_a_bad_scale_wait_is_refused_before_ray_is_joined(tiny_model, tmp_path, monkeypatch):
    """PTV2_RAY_SCALE_WAIT was read only once the search had joined Ray (10-30 s in), and only when the
    cluster was short of a node. It is read first: here RAY_ADDRESS names a port nothing listens on,
    so a search that tried Ray before it would fail on the join instead (in this process: run_cli)."""
    from conftest import run_cli

    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("PTV2_RAY_SCALE_WAIT", "soon")
    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    res = run_cli(*search_args(tmp_path, tiny_model)[1:])
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        "error: PTV2_RAY_SCALE_WAIT must be a number of seconds >= 0, got 'soon'"], res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["space.yaml"]  # no output, no stores, no PTV2_HOME
