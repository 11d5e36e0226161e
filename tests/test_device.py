"""Where the device comes from is named when it is wrong: `--device` says what the user typed;
PTV2_DEVICE (read when a registered version loads: `ptv2 predict/eval --model`, `mlflow models
serve`, `mlflow.pyfunc.load_model`) was reported as a bare `unknown device 'bogus'`, with nothing
pointing at the environment variable that held it."""
from __future__ import annotations

import os

import pytest
import torch

from conftest import run_cli
from ptv2_core.device import pick_device, why_no_cuda
from ptv2_core.errors import Ptv2Error

CHOICES = "(auto, cpu, cuda, cuda:1 ...)"


def test_an_unknown_device_names_the_setting_that_gave_it_and_the_choices():
    with pytest.raises(Ptv2Error) as e:
        pick_device("bogus")
    assert str(e.value) == f"unknown device 'bogus' {CHOICES}"
    with pytest.raises(Ptv2Error) as e:
        pick_device("bogus", setting="PTV2_DEVICE")
    assert str(e.value) == f"PTV2_DEVICE: unknown device 'bogus' {CHOICES}"
    assert pick_device("cpu", setting="PTV2_DEVICE") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_names_the_setting():
    with pytest.raises(Ptv2Error) as e:
        pick_device("cuda:1", setting="PTV2_DEVICE")
    assert str(e.value) == "PTV2_DEVICE: device 'cuda:1' asked for, but no CUDA GPU is available" + why_no_cuda()


@pytest.fixture
def bogus_env(monkeypatch, tmp_path):
    monkeypatch.setenv("PTV2_DEVICE", "bogus")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")  # an empty store


@pytest.mark.parametrize("command", [["predict", "--model", "models:/ptv2-trec@champion", "hi"],
                                     ["eval", "--model", "models:/ptv2-trec@champion"]])
def test_a_bad_ptv2_device_is_named_before_anything_loads(bogus_env, tmp_path, command):
    r = run_cli(*command)
    assert (r.returncode, r.stderr) == (2, f"error: PTV2_DEVICE: unknown device 'bogus' {CHOICES}\n"), r.stderr
    assert os.environ["PTV2_DEVICE"] == "bogus"  # left as it was
    assert not (tmp_path / "mlflow.db").exists()  # no store was opened


@pytest.mark.parametrize("command", [["predict", "--model", "models:/ptv2-trec@champion", "hi"],
                                     ["eval", "--model", "models:/ptv2-trec@champion"]])
def test_an_explicit_device_wins_over_ptv2_device_and_its_error_is_not_blamed_on_it(bogus_env, tmp_path, command):
    r = run_cli(*command, "--device", "nonsense")
    assert (r.returncode, r.stderr) == (2, f"error: unknown device 'nonsense' {CHOICES}\n"), r.stderr
    r = run_cli(*command, "--device", "cpu")  # PTV2_DEVICE is not read: the empty store is what fails
    assert r.returncode == 2 and "PTV2_DEVICE" not in r.stderr and "no MLflow store" in r.stderr, r.stderr


def test_the_pyfunc_model_names_ptv2_device_when_mlflow_loads_it(monkeypatch, tmp_path):
    """`mlflow models serve` and `mlflow.pyfunc.load_model` call load_context: a bad PTV2_DEVICE in
    the server's environment is told as such, before the artifacts are read."""
    from mlflow.pyfunc import PythonModelContext

    from components.registry.pyfunc_model import ARTIFACT_KEY, Ptv2PyfuncModel

    monkeypatch.setenv("PTV2_DEVICE", "bogus")
    context = PythonModelContext(artifacts={ARTIFACT_KEY: str(tmp_path)}, model_config={})
    with pytest.raises(Ptv2Error) as e:
        Ptv2PyfuncModel().load_context(context)
    assert str(e.value) == f"PTV2_DEVICE: unknown device 'bogus' {CHOICES}"
