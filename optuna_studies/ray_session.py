"""Ray for a search: join the cluster at ``RAY_ADDRESS`` (or an explicit address), reuse a Ray
this process already started, or start a small local one and stop it afterwards."""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from ptv2_core.errors import Ptv2Error
from optuna_studies import settings

# A local Ray takes a 7 GiB object store from /dev/shm unless told otherwise; trials exchange
# only metrics and small adapters.
LOCAL_OBJECT_STORE_BYTES = 200 * 1024**2
# Environment the trial workers need (a cluster's workers do not inherit the driver's).
WORKER_ENV = ("HF_HUB_OFFLINE", "HF_HOME", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "PTV2_SEARCH_TRACE_DIR")


def worker_env() -> dict[str, str]:
    """The driver's settings that trial workers must share."""
    env = {k: os.environ[k] for k in WORKER_ENV if k in os.environ}
    return env | {"TOKENIZERS_PARALLELISM": "false"}


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None) -> Iterator[dict]:
    """Yield the cluster's resources with Ray connected.

    ``address`` (else ``RAY_ADDRESS``) joins a running cluster; otherwise a local Ray starts
    with ``num_cpus``/``num_gpus`` (default: all) and stops on exit. A Ray this process
    already runs is used as it is and left running.
    """
    import ray

    if ray.is_initialized():
        yield ray.cluster_resources()
        return
    target = settings.ray_address(address)
    common = dict(include_dashboard=False, log_to_driver=False, configure_logging=False,
                  runtime_env={"env_vars": worker_env()})
    try:
        if target:
            ray.init(address=target, **common)
        else:
            ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus,
                     object_store_memory=LOCAL_OBJECT_STORE_BYTES, **common)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"the Ray cluster at '{target}'" if target else "a local Ray"
        raise Ptv2Error(f"cannot start or join {where}: {str(e).splitlines()[0]}") from None
    try:
        yield ray.cluster_resources()
    finally:
        ray.shutdown()
