"""Can the Ray cluster hold one trial? Now, or once its autoscaler has added a node.

A trial asks for ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs. A cluster that can never
hold one would leave the search waiting forever, so it is refused before the study, the MLflow
run or the work folder exist. But a joined cluster may grow: KubeRay's autoscaler adds workers
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


def _short(need: dict[str, float], resources: dict) -> bool:
    return any(resources.get(k, 0) < v for k, v in need.items() if v)


def _describe(need: dict[str, float], resources: dict) -> str:
    return (f"a trial needs {need['CPU']:g} CPU and {need['GPU']:g} GPU, but the Ray cluster has "
            f"{resources.get('CPU', 0):g} CPU and {resources.get('GPU', 0):g} GPU")


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


def check_capacity(cpus_per_trial: float, gpus_per_trial: float, resources: dict, *, joined: bool,
                   say: Callable[[str], None] = lambda line: None) -> dict:
    """Return the cluster's resources once they hold one trial; else a Ptv2Error. ``joined``: a
    running cluster was joined (it may have an autoscaler), not a local Ray started for this search."""
    wait = scale_wait()  # a bad value is refused whether or not it is needed now
    need = {"CPU": float(cpus_per_trial), "GPU": float(gpus_per_trial)}
    if not _short(need, resources):
        return resources
    if not joined or wait == 0:
        raise Ptv2Error(_describe(need, resources))
    import ray

    bundle = {k: v for k, v in need.items() if v}
    say(f"{_describe(need, resources)} now: asked its autoscaler for a node, waiting up to {wait:g} s "
        f"({SCALE_WAIT_ENV} sets how long)")
    _ask_autoscaler([bundle])
    deadline = time.monotonic() + wait
    try:
        while True:
            resources = ray.cluster_resources()
            if not _short(need, resources):
                say(f"the Ray cluster has {resources.get('CPU', 0):g} CPU and {resources.get('GPU', 0):g} GPU now")
                return resources
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(POLL_S, left))
    finally:
        _ask_autoscaler([])  # the trials' own demand keeps what was added
    raise Ptv2Error(f"{_describe(need, resources)}, and no node joined in {wait:g} s: give it more workers "
                    f"(or an autoscaler that can add them), lower --cpus-per-trial or --gpus-per-trial, or wait "
                    f"longer ({SCALE_WAIT_ENV})")
