"""The Ray Tune function trainable: the objective, with each epoch sent on as a Tune result.

The adapter travels as a Tune checkpoint, reported only when the objective improved, so a
trial's latest checkpoint is its best adapter (``CheckpointConfig(num_to_keep=1)`` keeps it).
A restarted trial (after its worker died) trains again from the start.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

# Set it to a folder to get one small file per trial execution (trial id, pid, params): what
# tests count to prove a trial ran once, or ran again after its worker was killed.
TRACE_ENV = "PTV2_SEARCH_TRACE_DIR"


def tune_trainable(config: dict[str, Any]) -> None:
    """Run ``objective(config)`` inside a Tune trial."""
    import torch
    from ray import tune

    from optuna_studies.objective import objective

    cpus = int(tune.get_context().get_trial_resources().required_resources.get("CPU", 1) or 1)
    torch.set_num_threads(max(1, cpus))
    _trace(tune.get_context().get_trial_id(), config)

    def report(epoch: int, metrics: dict[str, Any], adapter: dict[str, bytes | str] | None) -> None:
        metrics = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
        if adapter is None:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory(prefix="ptv2-adapter-") as d:
            for name, data in adapter.items():
                (Path(d) / name).write_bytes(data.encode() if isinstance(data, str) else data)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))

    objective(config, report)


def _trace(trial_id: str, config: dict[str, Any]) -> None:
    folder = os.environ.get(TRACE_ENV)
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    import ray

    doc = {"trial_id": trial_id, "pid": os.getpid(), "node": ray.get_runtime_context().get_node_id(),
           "time": time.time(), "prompt_len": config.get("prompt_len"), "lr": config.get("lr")}
    tmp = Path(folder) / f".{uuid.uuid4().hex}.tmp"
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, Path(folder) / f"{trial_id}.{os.getpid()}.{uuid.uuid4().hex[:8]}.json")
