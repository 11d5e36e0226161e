"""A device that cannot run here is refused when it is picked, in one line, before anything loads.
``torch.device`` takes many names ptv2 never runs on (``meta``, ``xpu`` ...): they passed, to fail
later in a traceback; so did ``mps`` off a Mac, and ``cuda:1`` on a one-GPU machine (CUDA's
"invalid device ordinal" at the first ``.to()``). A CPU-only torch (the default image's) asked for
``cuda`` now says so, the usual cause on a GPU node."""
from __future__ import annotations

import pytest
import torch

from conftest import run_cli
from ptv2_core.device import pick_device
from ptv2_core.errors import Ptv2Error

CHOICES = "(auto, cpu, cuda, cuda:1 ...)"


@pytest.mark.parametrize("name", ["meta", "xpu", "hpu", "lazy", "privateuseone"])
def test_device_types_ptv2_does_not_run_on_are_unknown(name):
    with pytest.raises(Ptv2Error) as e:
        pick_device(name)
    assert str(e.value) == f"unknown device '{name}' {CHOICES}"


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="needs a machine without MPS")
def test_mps_where_there_is_none_is_refused():
    with pytest.raises(Ptv2Error) as e:
        pick_device("mps", setting="PTV2_DEVICE")
    assert str(e.value) == "PTV2_DEVICE: device 'mps' asked for, but MPS (an Apple GPU) is not available here"


@pytest.mark.skipif(torch.version.cuda is not None, reason="needs a CPU-only build of torch")
def test_cuda_with_a_cpu_only_torch_says_so():
    with pytest.raises(Ptv2Error) as e:
        pick_device("cuda")
    assert str(e.value) == (f"device 'cuda' asked for, but no CUDA GPU is available (this torch, {torch.__version__}, "
                            "is a CPU-only build: install a CUDA build, e.g. the -cuda image, see docs/gpu.md)")


def test_a_gpu_index_past_the_visible_ones_is_refused(monkeypatch):
    """No GPU here: torch's answers for a machine with one visible GPU stand in for it (what CUDA
    itself does with ``cuda:1`` there, "invalid device ordinal", needs the GPU)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert pick_device("cuda:0") == torch.device("cuda:0") and pick_device("cuda") == torch.device("cuda")
    with pytest.raises(Ptv2Error) as e:
        pick_device("cuda:1")
    assert str(e.value) == ("device 'cuda:1' asked for, but this process sees 1 CUDA GPU: cuda:0 to cuda:0 "
                            "(CUDA_VISIBLE_DEVICES='3' numbers them from 0)")


def test_train_refuses_meta_in_one_line_before_anything_loads(tiny_model_dir, tmp_path):
    r = run_cli("train", "--task", "trec", "--model", tiny_model_dir, "--device", "meta",
                "--out", str(tmp_path / "out"))
    assert (r.returncode, r.stderr) == (2, f"error: unknown device 'meta' {CHOICES}\n"), r.stderr
    assert not (tmp_path / "out").exists()


def test_train_and_pretrain_take_no_bf16_and_record_it(tiny_model_dir, tmp_path):
    """The README's "--no-bf16 runs fp32" named an option neither `train` nor `pretrain` had: on a GPU
    before Ampere (T4, V100: bf16 only emulated) the bf16 autocast could not be turned off. Each
    records it: the adapter's train_config, the prompt's pretrain_config (true without the flag)."""
    import json

    out = tmp_path / "adapter"
    r = run_cli("train", "--task", "trec", "--model", tiny_model_dir, "--prompt-len", "2", "--epochs", "1",
                "--max-train", "8", "--max-eval", "8", "--quiet", "--no-bf16", "--device", "cpu", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "adapter_config.json").read_text())["extra"]["train_config"]["bf16"] is False
    out = tmp_path / "prompt"
    r = run_cli("pretrain", "--tasks", "trec", "--model", tiny_model_dir, "--lengths", "2", "--max-prompt-len", "2",
                "--epochs", "1", "--max-train", "8", "--max-eval", "8", "--quiet", "--no-bf16", "--device", "cpu",
                "--no-track", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "prompt_config.json").read_text())["pretrain_config"]["bf16"] is False
