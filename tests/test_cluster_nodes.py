"""A joined Ray cluster whose nodes cannot run the search's trials as it would record them: a node that
does not mount the shared folder, or runs another torch (optuna_studies/node_check.py).

The cluster test runs a real two-host cluster of `ray start` processes (about 30 s); its worker
lives in a mount namespace of its own where the shared folder is an empty tmpfs (as a pod without
the volume), so it needs root and `unshare`. The rest are fast.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from optuna_studies.node_check import node_facts, problems
from search_ray_support import PTV2, ray_cluster, write_space  # noqa: F401
from test_search import tiny_model  # noqa: F401  (module fixture: a tiny BERT model folder)

HERE = {"versions": {"ptv2": "0.1.0", "python": "3.11.9", "torch": "2.13.0", "transformers": "5.24.0"}}


def test_a_node_with_the_same_versions_that_sees_the_folder_passes(tmp_path):
    marker = tmp_path / "m"
    marker.write_text("x")
    facts = node_facts(str(marker))
    assert facts["sees"] and facts["writes"]
    assert problems(node_facts(None), facts, tmp_path) == []


def test_a_build_label_is_not_skew():
    """A CPU driver (torch 2.13.0+cpu) may serve GPU workers (2.13.0+cu128): node_facts drops the label."""
    assert "+" not in node_facts(None)["versions"]["torch"]


def test_problems_name_the_folder_and_each_version_that_differs(tmp_path):
    node = {"versions": HERE["versions"] | {"torch": "2.12.0", "ptv2": "0.0.9"}, "sees": False, "writes": True}
    assert problems(HERE, node, tmp_path) == [
        f"does not see --shared-dir '{tmp_path}' (a file this process wrote there is missing)",
        "runs ptv2 0.0.9 (here 0.1.0), torch 2.12.0 (here 2.13.0)"]
    assert problems(HERE, {"error": "ModuleNotFoundError: No module named 'optuna_studies'"}, None) == [
        "could not run ptv2's node check (ModuleNotFoundError: No module named 'optuna_studies')"]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare (mount namespace)")
def test_a_node_without_the_shared_folder_or_with_another_torch_is_refused_before_anything_is_written(
        tiny_model, tmp_path):
    """Before, such a node failed each trial it got at its first checkpoint, after an epoch, with Ray's
    traceback (reported as a lost worker and retried); a node with another torch trained silently."""
    shared = tmp_path / "shared"
    shared.mkdir()
    fake = tmp_path / "fake-site" / "torch-9.9.9.dist-info"  # what importlib.metadata reads first on the worker
    fake.mkdir(parents=True)
    (fake / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 9.9.9\n")
    hide = ("unshare", "-m", "--propagation", "private", "sh", "-c", f"mount -t tmpfs none {shared} && exec \"$@\"", "sh")
    worker_env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(fake.parent), os.environ.get("PYTHONPATH")])),
                  "HOME": str(tmp_path / "worker-home")}  # a node with a home of its own
    (tmp_path / "worker-home").mkdir()
    cluster = ray_cluster(("--node-ip-address=127.0.0.2",), worker_prefix=hide, worker_env=worker_env)
    address, env = next(cluster)
    try:
        model = shutil.copytree(tiny_model, shared / "model")
        out = subprocess.run(
            [PTV2, "search", "--task", "trec", "--model", str(model), "--space", str(write_space(tmp_path)),
             "--max-train", "48", "--max-eval", "48", "--concurrency", "2", "--shared-dir", str(shared),
             "--mlflow-uri", f"sqlite:///{tmp_path}/mlflow.db", "--out", str(tmp_path / "out")],
            env=env | {"RAY_ADDRESS": address, "HF_HUB_OFFLINE": "1", "PTV2_HOME": str(tmp_path / "home")},
            capture_output=True, text=True, timeout=300)
    finally:
        cluster.close()
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr[-3000:]
    assert lines[0] == (
        f"error: the Ray cluster at '{address}' cannot run this search's trials: node 127.0.0.2 does not see "
        f"--shared-dir '{shared}' (a file this process wrote there is missing), runs torch 9.9.9 (here 2.13.0): "
        "mount the shared folder at the same path on every Ray node; run one image (the same ptv2 and libraries) "
        "on every Ray node and here"), lines[0]
    # nothing written: no output, study, MLflow store or work folder; the probe's file is gone
    assert {p.name for p in tmp_path.iterdir()} <= {"fake-site", "shared", "space.yaml", "worker-home", "home"}
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").iterdir())
    assert sorted(p.name for p in shared.iterdir()) == ["model"]
