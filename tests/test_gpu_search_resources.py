"""What a search's trials reserve on Ray, checked before anything is written.

- A trial trains on one GPU: ``--gpus-per-trial 1.5`` (Ray holds a fraction above 1 invalid),
  ``2`` (the second GPU sat idle) or ``0.00001`` (below Ray's 0.0001 resolution) waited or wasted.
- A trial that reserves a GPU trains on ``cuda``, not ``auto``: ``auto`` fell back to the CPU
  where the worker's torch sees no GPU (a CPU-only torch on a GPU node), silently, with a GPU held.
- ``--gpus-per-trial 1`` with a local Ray on a machine whose torch sees no GPU is refused before
  Ray starts (it took a Ray start, seconds, to say so).
"""
from __future__ import annotations

import os
import shutil

import pytest
import torch

from ptv2_core.device import why_no_cuda
from ptv2_core.errors import Ptv2Error


def _plan(model: str, tmp_path, gpus: float):
    from optuna_studies.plan import plan_search

    return plan_search("trec", model, tmp_path / "out", trials=1, space=None, storage=f"sqlite:///{tmp_path}/o.db",
                       init=None, max_train=8, max_eval=8, epochs=None, concurrency=1, cpus_per_trial=1,
                       gpus_per_trial=gpus, overwrite=False, study_name=None, seed=0)


@pytest.mark.parametrize("gpus", [1.5, 2, 0.00001])
def test_gpus_per_trial_beyond_one_gpu_or_below_rays_resolution_is_refused(tiny_model_dir, tmp_path, gpus):
    with pytest.raises(Ptv2Error) as e:
        _plan(tiny_model_dir, tmp_path, gpus)
    assert str(e.value) == ("--gpus-per-trial must be 0, a share of one GPU (0.0001 to 1: trials share it) or 1: "
                            f"a trial trains on one GPU, got {gpus:g}")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(("gpus", "device"), [(0, "cpu"), (0.25, "cuda"), (1, "cuda")])
def test_a_trial_that_reserves_a_gpu_trains_on_cuda(tiny_model_dir, tmp_path, gpus, device):
    assert _plan(tiny_model_dir, tmp_path, gpus).constants["device"] == device


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_gpu_trial_where_torch_sees_none_fails_instead_of_training_on_the_cpu(tiny_model_dir, tmp_path):
    from optuna_studies.objective import train_config
    from ptv2_core.train import train

    plan = _plan(tiny_model_dir, tmp_path, 1)
    cfg = train_config(plan.constants | {"prompt_len": 4, "lr": 1e-2})
    with pytest.raises(Ptv2Error) as e:
        train(cfg)
    assert str(e.value) == "device 'cuda' asked for, but no CUDA GPU is available" + why_no_cuda()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_gpu_trial_on_a_local_ray_without_a_gpu_is_refused_before_ray_starts(tmp_path, monkeypatch, capsys):
    from search_ray_support import short_tmpdir

    from pipelines.cli import main

    raytmp = short_tmpdir("ptv2g")
    monkeypatch.setenv("RAY_TMPDIR", raytmp)
    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    try:
        with pytest.raises(SystemExit) as exc:
            main(["search", "--task", "trec", "--gpus-per-trial", "1", "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err.strip().splitlines()
        assert os.listdir(raytmp) == [], "a local Ray was started"
    finally:
        shutil.rmtree(raytmp, ignore_errors=True)
    assert exc.value.code == 2 and err == [
        "error: a trial needs 1 CPU and 1 GPU on one node, but torch sees no CUDA GPU on this machine for the local "
        f"Ray{why_no_cuda()}: set --gpus-per-trial 0, or --ray-address to run the trials on a cluster with GPUs"], err
    assert not (tmp_path / "out").exists()
    assert not [p for p in (tmp_path / "home").rglob("*")], "a study or MLflow store was created"


@pytest.mark.parametrize("gpus", [1.5, 2.0])
def test_the_pipelines_check_step_refuses_them_too(gpus):
    """A pipeline run's first step checks its parameters: gpus_per_trial 1.5 passed it, to fail (or wait
    for a node forever) in the search step after pre-training."""
    from components.params import check_params
    from pipelines.profiles import pipeline_defaults

    with pytest.raises(Ptv2Error) as e:
        check_params(pipeline_defaults() | {"gpus_per_trial": gpus}, files_here=True)
    assert str(e.value) == ("gpus_per_trial must be 0, a share of one GPU (0.0001 to 1: trials share it) or 1: "
                            f"a trial trains on one GPU, got {gpus:g}")
    assert check_params(pipeline_defaults() | {"gpus_per_trial": 0.5}, files_here=True)["gpus_per_trial"] == 0.5
