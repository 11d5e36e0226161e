"""Can the Ray cluster hold one trial? Now, or once its autoscaler has added a node.

A trial asks for ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs, on one node. A cluster
none of whose nodes can hold one would leave the search waiting forever, so it is refused before
the study, the MLflow run or the work folder exist. But a joined cluster may grow: KubeRay's autoscaler adds workers
when work waits for them (the GPU group starts at zero; k8s/base/raycluster.yaml), and nothing
waits yet when the search checks. So on a joined cluster that is short, the search asks the
autoscaler for one trial's resources (``ray.autoscaler.sdk.request_resources``, the documented
hint) and waits up to ``PTV2_RAY_SCALE_WAIT`` seconds (default 600; 0 refuses at once) for a
node to join, saying so; a cluster without an autoscaler then fails with the same one line.
A local Ray is what this machine has: short is refused at once.
"""
from __future__ import annotations

import os
import time
from typing import Callable

from ptv2_core.errors import Ptv2Error

SCALE_WAIT_ENV = "PTV2_RAY_SCALE_WAIT"
DEFAULT_SCALE_WAIT_S = 600.0
POLL_S = 2.0
MIN_GPU_SHARE = 0.0001  # Ray's resource resolution


def scale_wait() -> float:
    """Seconds to wait for an autoscaler (``PTV2_RAY_SCALE_WAIT``), or a Ptv2Error naming a bad value."""
    raw = os.environ.get(SCALE_WAIT_ENV, "").strip()
    if not raw:
        return DEFAULT_SCALE_WAIT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise Ptv2Error(f"{SCALE_WAIT_ENV} must be a number of seconds >= 0, got {raw!r}")
    return value


def _nodes() -> list[dict]:
    """The total resources of each live node (a trial runs on one node: the cluster's sum is not enough)."""
    import ray

    return [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]


def _fits(need: dict[str, float], resources: dict) -> bool:
    return all(resources.get(k, 0) >= v for k, v in need.items() if v)


def _largest(nodes: list[dict]) -> dict:
    return max(nodes, key=lambda r: (r.get("GPU", 0), r.get("CPU", 0)), default={})


def _describe(need: dict[str, float], nodes: list[dict]) -> str:
    big = _largest(nodes)
    where = "the Ray cluster has" if len(nodes) <= 1 else f"the largest of the Ray cluster's {len(nodes)} nodes has"
    return (f"a trial needs {need['CPU']:g} CPU and {need['GPU']:g} GPU on one node, but {where} "
            f"{big.get('CPU', 0):g} CPU and {big.get('GPU', 0):g} GPU")


def _ask_autoscaler(bundles: list[dict]) -> None:
    """``request_resources(bundles=...)`` run on the cluster (a zero-CPU task: it also works under
    Ray Client, and on a head that offers no CPU); ``[]`` withdraws the request. Best effort: a
    cluster without an autoscaler keeps the request unread."""
    import ray

    @ray.remote(num_cpus=0)
    def ask(bundles: list[dict]) -> None:
        from ray.autoscaler.sdk import request_resources

        request_resources(bundles=bundles)

    try:
        ray.get(ask.remote(bundles), timeout=60)
    except Exception:  # noqa: BLE001 (a hint only; the wait below decides)
        pass


def check_capacity(cpus_per_trial: float, gpus_per_trial: float, *, joined: bool,
                   say: Callable[[str], None] = lambda line: None) -> None:
    """Return once a node of the connected Ray cluster can hold one trial; else a Ptv2Error.
    ``joined``: a running cluster was joined (it may have an autoscaler), not a local Ray started
    for this search."""
    wait = scale_wait()  # a bad value is refused whether or not it is needed now
    need = {"CPU": float(cpus_per_trial), "GPU": float(gpus_per_trial)}
    nodes = _nodes()
    if any(_fits(need, n) for n in nodes):
        return
    if not joined or wait == 0:
        raise Ptv2Error(_describe(need, nodes))
    bundle = {k: v for k, v in need.items() if v}
    say(f"{_describe(need, nodes)} now: asked its autoscaler for a node, waiting up to {wait:g} s "
        f"({SCALE_WAIT_ENV} sets how long)")
    _ask_autoscaler([bundle])
    deadline = time.monotonic() + wait
    try:
        while True:
            nodes = _nodes()
            fit = next((n for n in nodes if _fits(need, n)), None)
            if fit is not None:
                say(f"a node with {fit.get('CPU', 0):g} CPU and {fit.get('GPU', 0):g} GPU joined the Ray cluster")
                return
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(POLL_S, left))
    finally:
        _ask_autoscaler([])  # the trials' own demand keeps what was added
    raise Ptv2Error(f"{_describe(need, nodes)}, and no such node joined in {wait:g} s: give it larger or more "
                    f"workers (or an autoscaler that can add them), lower --cpus-per-trial or --gpus-per-trial, or "
                    f"wait longer ({SCALE_WAIT_ENV})")


def check_gpus_per_trial(gpus: float, name: str = "--gpus-per-trial") -> None:
    """A trial trains on one GPU: 0 (CPU), a share of one (``0.5``: two trials on a GPU) or 1. More
    reserved GPUs the trial would leave idle; Ray holds a fraction above 1 (``1.5``) invalid, and its
    resolution is 0.0001: a trial asking for either waited for resources forever. ``name``: the
    option or pipeline parameter that gave ``gpus``."""
    if gpus > 1 or 0 < gpus < MIN_GPU_SHARE:
        raise Ptv2Error(f"{name} must be 0, a share of one GPU ({MIN_GPU_SHARE:g} to 1: trials share it) "
                        f"or 1: a trial trains on one GPU, got {gpus:g}")


def check_local_gpus(cpus_per_trial: float, gpus_per_trial: float,
                     names: tuple[str, str] = ("--gpus-per-trial 0", "--ray-address")) -> None:
    """A local Ray offers this machine's GPUs, and its trials run this torch: a trial that reserves
    a GPU where torch sees none is refused before Ray starts (it took a Ray start to say so, and on
    a GPU machine with a CPU-only torch the trials reserved GPUs and trained on the CPU). ``names``:
    what to set to run on the CPU, and the cluster's address, as the caller takes them (``ptv2
    search``'s flags; a pipeline's parameters)."""
    if gpus_per_trial <= 0:
        return
    import torch

    from ptv2_core.device import why_no_cuda

    if torch.cuda.device_count() == 0:
        raise Ptv2Error(f"a trial needs {cpus_per_trial:g} CPU and {gpus_per_trial:g} GPU on one node, but torch "
                        f"sees no CUDA GPU on this machine for the local Ray{why_no_cuda()}: set {names[0]}, "
                        f"or {names[1]} to run the trials on a cluster with GPUs")
