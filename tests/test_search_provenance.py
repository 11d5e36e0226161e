"""A search's result says what produced it, as ``ptv2 train``'s does: ``best.json`` carries its best
adapter's provenance (code and libraries) and the adapter's metrics.json the seeds, the rows' hashes
and where the trial trained. One trial of a tiny random BERT on a local Ray (seconds)."""
from __future__ import annotations

import json

from search_ray_support import SMALL, local_ray, mlflow_uri, ptv2_home, trace_dir, write_space  # noqa: F401
from test_search import tiny_model  # noqa: F401  (module fixture: a tiny BERT model folder)


def test_best_json_and_the_best_adapter_record_what_produced_them(local_ray, tiny_model, tmp_path, mlflow_uri):
    from optuna_studies.search import run_search
    from ptv2_core.tasks import load_task
    from ptv2_core.tasks.splits import split_hash

    space = write_space(tmp_path, prompt_len=[2], trials=1, epochs=1)
    result = run_search("trec", tiny_model, tmp_path / "out", space=space, storage=f"sqlite:///{tmp_path}/optuna.db",
                        mlflow_uri=mlflow_uri, concurrency=1, seed=4, **SMALL)
    out = tmp_path / "out"
    best = json.loads((out / "best.json").read_text())
    config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    # the best adapter's own record, not the finishing code's
    assert best["provenance"] == config["provenance"] and best["provenance"]["code_version"].startswith("0.1.0")
    metrics = json.loads((out / "adapter" / "metrics.json").read_text())
    seed = config["extra"]["train_config"]["seed"]
    assert (metrics["train_seed"], metrics["data_seed"]) == (seed, seed) == (4, 4)
    spec, data = load_task("trec", seed=4, **SMALL)
    assert metrics["data_hashes"] == {name: split_hash(spec, data[name]) for name in ("train", "dev", "test")}
    # where the trial trained: a Ray worker given one CPU (optuna_studies.trainable)
    assert metrics["runtime"] == {"device": "cpu", "torch_threads": 1}
    assert result.test == metrics["test"]
