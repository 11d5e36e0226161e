"""``ptv2 compile --step-gpus 1``: pre-training, the final adapter and promotion's scoring get an
accelerator, the CUDA image and PTV2_DEVICE=cuda in the compiled pipeline; without it (the default)
no step does, as before. Only the search's trials had GPUs (through Ray): the heaviest single step,
pre-training, ran on the CPU of a GPU cluster. Compile only: no step runs."""
from __future__ import annotations

import pytest
import yaml

from components.image import component_image
from conftest import run_cli
from pipelines.compile import compile_pipeline

GPU_EXECUTORS = {"exec-pretrain-prompt-op", "exec-final-train-op", "exec-promote-op"}


def _containers(path) -> dict[str, dict]:
    spec = next(yaml.safe_load_all(path.read_text()))
    return {name: e["container"] for name, e in spec["deploymentSpec"]["executors"].items()}


def _tolerations(path) -> dict[str, list]:
    """Each executor's tolerations, from the Kubernetes platform config."""
    platform = list(yaml.safe_load_all(path.read_text()))[1]["platforms"]["kubernetes"]["deploymentSpec"]
    return {name: e.get("tolerations", []) for name, e in platform["executors"].items()}


@pytest.fixture(scope="module")
def default_file(tmp_path_factory):
    return compile_pipeline(tmp_path_factory.mktemp("cpu") / "p.yaml")


@pytest.fixture(scope="module")
def gpu_file(tmp_path_factory):
    return compile_pipeline(tmp_path_factory.mktemp("gpu") / "p.yaml", step_gpus=1)


@pytest.fixture(scope="module")
def default(default_file) -> dict[str, dict]:
    return _containers(default_file)


@pytest.fixture(scope="module")
def gpu(gpu_file) -> dict[str, dict]:
    return _containers(gpu_file)


def test_by_default_no_step_asks_for_a_gpu(default):
    assert GPU_EXECUTORS <= set(default)
    for name, c in default.items():
        assert "accelerator" not in (c.get("resources") or {}), name
        assert c["image"] == component_image(), name
        assert "PTV2_DEVICE" not in {e["name"] for e in c.get("env") or ()}, name


def test_step_gpus_puts_pretraining_the_final_adapter_and_promotion_on_a_gpu(gpu):
    for name in GPU_EXECUTORS:
        c = gpu[name]
        acc = c["resources"]["accelerator"]
        assert (acc["resourceType"], acc["resourceCount"]) == ("nvidia.com/gpu", "1"), name
        assert c["image"] == component_image(cuda=True), name
        assert {"name": "PTV2_DEVICE", "value": "cuda"} in c["env"], name
        assert c["resources"]["memoryLimit"] > 0  # the pod's CPU and memory sizes stay
    for name in set(gpu) - GPU_EXECUTORS:  # the search's trials get theirs on Ray; the others need none
        assert "accelerator" not in (gpu[name].get("resources") or {}), name
        assert gpu[name]["image"] == component_image(), name


def test_the_gpu_steps_tolerate_the_gpu_nodes_taint(default_file, gpu_file):
    gpu_taint = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    assert not any(_tolerations(default_file).values())
    tolerations = _tolerations(gpu_file)
    assert {name for name, t in tolerations.items() if t} == GPU_EXECUTORS
    assert all(tolerations[name] == [gpu_taint] for name in GPU_EXECUTORS)


def test_the_accelerator_resource_is_the_one_given(tmp_path):
    res = run_cli("compile", "--out", str(tmp_path / "p.yaml"), "--step-gpus", "1",
                  "--accelerator", "nvidia.com/mig-1g.10gb")
    assert res.returncode == 0, res.stderr
    acc = _containers(tmp_path / "p.yaml")["exec-pretrain-prompt-op"]["resources"]["accelerator"]
    assert (acc["resourceType"], acc["resourceCount"]) == ("nvidia.com/mig-1g.10gb", "1")


@pytest.mark.parametrize("args, message", [
    (["--step-gpus", "2"], "--step-gpus must be 0 (no GPU) or 1 (a step trains on one GPU), got 2"),
    (["--step-gpus", "1", "--accelerator", "gpu"],
     "--accelerator 'gpu' is no Kubernetes resource name such as nvidia.com/gpu or nvidia.com/mig-1g.10gb"),
])
def test_a_bad_gpu_option_is_one_error_line_and_writes_nothing(tmp_path, args, message):
    res = run_cli("compile", "--out", str(tmp_path / "p.yaml"), *args)
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [f"error: {message}"], res.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_pinned_image_cannot_name_the_cuda_build(tmp_path, monkeypatch):
    monkeypatch.setenv("PTV2_IMAGE", "registry.example.com/ml/ptv2:1.0")
    res = run_cli("compile", "--out", str(tmp_path / "p.yaml"), "--step-gpus", "1")
    assert res.returncode == 2 and res.stderr.startswith("error: --step-gpus needs the CUDA image: PTV2_IMAGE="), \
        res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []


def test_a_step_trains_where_ptv2_device_says(monkeypatch):
    from components.step_device import step_device
    from ptv2_core.errors import Ptv2Error

    monkeypatch.delenv("PTV2_DEVICE", raising=False)
    assert step_device() == "auto"
    monkeypatch.setenv("PTV2_DEVICE", "cpu")
    assert step_device() == "cpu"
    monkeypatch.setenv("PTV2_DEVICE", "tpu")
    with pytest.raises(Ptv2Error, match="^PTV2_DEVICE: unknown device 'tpu'"):
        step_device()
