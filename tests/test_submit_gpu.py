"""``ptv2 submit --step-gpus 1``: the run kfp's client uploads has pre-training, the final adapter
and promotion on a GPU, as ``ptv2 compile --step-gpus 1`` writes it. submit always sent the default
pipeline (no step GPU): the GPU steps needed a compiled file uploaded by hand. A bad value is one
error line before any request, as every other input submit checks. The API is the local HTTP
stand-in of tests/test_submit.py."""
from __future__ import annotations

import pytest

from components.image import component_image
from test_gpu_pipeline import GPU_EXECUTORS
from test_submit import PipelinesApi, gateway, one_error, submit, token_gate  # noqa: F401 (gateway: a fixture)

RUNS = "/pipeline/apis/v2beta1/runs"


@pytest.fixture
def api():
    server = PipelinesApi()
    yield server
    server.shutdown()
    server.server_close()


def _executors(api) -> dict[str, dict]:
    spec = api.posted[RUNS]["pipeline_spec"]
    return {name: e["container"] for name, e in spec["pipeline_spec"]["deploymentSpec"]["executors"].items()}


def _accelerator(container: dict):
    acc = (container.get("resources") or {}).get("accelerator")
    return acc and (acc["resourceType"], acc["resourceCount"])


def test_step_gpus_puts_the_three_steps_of_the_submitted_run_on_a_gpu(api):
    res = submit(api.url, {"PTV2_KFP_TOKEN": "t"}, "--step-gpus", "1", "--accelerator", "nvidia.com/mig-1g.10gb")
    assert res.returncode == 0, res.stderr
    executors = _executors(api)
    assert GPU_EXECUTORS <= set(executors)
    for name, c in executors.items():
        on_gpu = name in GPU_EXECUTORS
        assert _accelerator(c) == (("nvidia.com/mig-1g.10gb", "1") if on_gpu else None), name
        assert c["image"] == component_image(cuda=on_gpu), name
        assert ({"name": "PTV2_DEVICE", "value": "cuda"} in (c.get("env") or ())) is on_gpu, name
    platform = api.posted[RUNS]["pipeline_spec"]["platform_spec"]["platforms"]["kubernetes"]["deploymentSpec"]
    tolerating = {name for name, e in platform["executors"].items() if e.get("tolerations")}
    assert tolerating == GPU_EXECUTORS, tolerating  # the GPU nodes' taint, as the compiled file has
    api.posted.clear()
    res = submit(api.url, {"PTV2_KFP_TOKEN": "t"})  # the default: no step on a GPU, as before
    assert res.returncode == 0, res.stderr
    assert not any(_accelerator(c) for c in _executors(api).values())


@pytest.mark.parametrize("args, message", [
    (["--step-gpus", "2"], "--step-gpus must be 0 (no GPU) or 1 (a step trains on one GPU), got 2"),
    (["--step-gpus", "1", "--accelerator", "gpu"],
     "--accelerator 'gpu' is no Kubernetes resource name such as nvidia.com/gpu or nvidia.com/mig-1g.10gb"),
])
def test_a_bad_gpu_option_is_refused_before_any_request(gateway, args, message):  # noqa: F811
    gw = gateway(token_gate)
    assert one_error(submit(gw.url, {"PTV2_KFP_TOKEN": "t"}, *args)) == f"error: {message}"
    assert gw.seen == []


def test_a_pinned_image_with_step_gpus_is_refused_before_any_request(gateway, monkeypatch):  # noqa: F811
    monkeypatch.setenv("PTV2_IMAGE", "registry.example.com/ml/ptv2:1.0")
    gw = gateway(token_gate)
    line = one_error(submit(gw.url, {"PTV2_KFP_TOKEN": "t"}, "--step-gpus", "1"))
    assert line.startswith("error: --step-gpus needs the CUDA image: PTV2_IMAGE="), line
    assert gw.seen == []
