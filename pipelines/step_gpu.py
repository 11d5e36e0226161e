"""A GPU for the pipeline steps that train or score in their own pod, chosen when compiling.

Only the search's trials get GPUs otherwise (through Ray). ``ptv2 compile --step-gpus 1`` gives
pre-training, the final adapter (retrained when ``final_epochs`` > 0, then scored on test) and
promotion's scoring an accelerator (``set_accelerator_type``/``set_accelerator_limit``), the CUDA
image (``<repository>-cuda``, ``components.image``) and ``PTV2_DEVICE=cuda``, so a pod that lands
without a usable GPU fails in one line instead of training on the CPU while holding one.

A compile-time choice, not a run parameter: kfp 2.17 compiles a parameter into the accelerator
fields, but only a Kubeflow backend that resolves it there (recent ones) runs such a pipeline, and
the image cannot follow a run parameter without an extra step. Compiled without it (the default),
the pipeline has no accelerator, the CPU image and no ``PTV2_DEVICE``: exactly as before.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from ptv2_core.errors import Ptv2Error

GPU_STEPS = ("pretrain", "final", "promote")  # STEP_RESOURCES keys (pipelines/pipeline.py)
DEFAULT_ACCELERATOR = "nvidia.com/gpu"
GPU_TAINT = "nvidia.com/gpu"  # the taint GPU nodes carry (NVIDIA's GPU operator, GKE, EKS), also on MIG nodes
# a Kubernetes extended resource name: <domain>/<name> (nvidia.com/gpu, nvidia.com/mig-1g.10gb)
_RESOURCE = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?/[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")


@dataclass(frozen=True)
class StepGpu:
    count: int
    accelerator: str
    image: str


_CURRENT: ContextVar[StepGpu | None] = ContextVar("ptv2_step_gpu", default=None)


def check_step_gpus(count: int, accelerator: str) -> None:
    """0 or 1 GPU (a step trains on one device: a second would sit idle) of a resource name."""
    if count not in (0, 1):
        raise Ptv2Error(f"--step-gpus must be 0 (no GPU) or 1 (a step trains on one GPU), got {count}")
    if not _RESOURCE.fullmatch(accelerator):
        raise Ptv2Error(f"--accelerator '{accelerator}' is no Kubernetes resource name such as {DEFAULT_ACCELERATOR} "
                        "or nvidia.com/mig-1g.10gb")


def step_gpu_choice(count: int, accelerator: str = DEFAULT_ACCELERATOR) -> StepGpu | None:
    """``--step-gpus``/``--accelerator`` checked, with the CUDA image they need (None: no GPU).
    Standard library and the image module only: ``ptv2 submit`` calls it before probing its endpoint."""
    from components.image import component_image

    check_step_gpus(count, accelerator)
    if not count:
        return None
    try:
        image = component_image(cuda=True)
    except ValueError as e:  # a pinned PTV2_IMAGE names one build, not its CUDA twin
        raise Ptv2Error(f"--step-gpus needs the CUDA image: {e}") from None
    return StepGpu(count, accelerator, image)


@contextmanager
def step_gpus(count: int, accelerator: str = DEFAULT_ACCELERATOR) -> Iterator[None]:
    """While open, a compile of the pipeline gives ``GPU_STEPS`` ``count`` GPUs (0: none)."""
    gpu = step_gpu_choice(count, accelerator)
    if gpu is None:
        yield
        return
    token = _CURRENT.set(gpu)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def on_gpu(task, step: str) -> None:
    """Give ``task`` its GPU, the CUDA image and ``PTV2_DEVICE=cuda`` when this compile asks for one,
    and the toleration of GPU nodes' usual ``nvidia.com/gpu`` taint (as the Ray GPU group's, in
    k8s/base/raycluster.yaml: without it a tainted GPU node refuses the pod, which stays Pending)."""
    gpu = _CURRENT.get()
    if gpu is None or step not in GPU_STEPS:
        return
    from kfp import kubernetes

    task.set_accelerator_type(gpu.accelerator).set_accelerator_limit(gpu.count)
    kubernetes.add_toleration(task, key=GPU_TAINT, operator="Exists", effect="NoSchedule")
    task.set_container_image(gpu.image)
    task.set_env_variable("PTV2_DEVICE", "cuda")
