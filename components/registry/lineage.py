"""Which search made an adapter: the MLflow runs a registered version is tagged with.

A search writes, into its best adapter's ``metrics.json``, the id of the study's parent run
(``search_run_id``), of the best trial's own run (``trial_run_id``) and the store they are in
(``search_tracking_uri``, password masked). The pipeline's final step carries them on, for a
retrained adapter too (its configuration is that trial's). A search output written before the
adapter recorded them still has them in ``best.json`` beside ``adapter/``: read from there when
that file is the same search's (its study name and best trial number match the adapter's).
"""
from __future__ import annotations

import json
from pathlib import Path

# metrics.json field → registered version tag
FIELDS = {"search_run_id": "ptv2.search_run_id", "trial_run_id": "ptv2.trial_run_id",
          "search_tracking_uri": "ptv2.search_tracking_uri"}
BEST = "best.json"


def recorded(metrics: dict) -> dict[str, str]:
    """The lineage fields ``metrics`` (an adapter's metrics.json) holds, the empty ones left out."""
    return {k: str(metrics[k]) for k in FIELDS if metrics.get(k)}


def lineage_tags(adapter_dir: Path, metrics: dict) -> dict[str, str]:
    """The version tags naming the search runs that made the adapter in ``adapter_dir`` (whose
    metrics.json is ``metrics``); empty for an adapter of no search (``ptv2 train``)."""
    found = recorded(metrics) or _beside(Path(adapter_dir), metrics)
    return {FIELDS[k]: v for k, v in found.items()}


def _beside(adapter_dir: Path, metrics: dict) -> dict[str, str]:
    """The runs ``best.json`` of a search output names, for its own ``adapter/`` only. The file
    is not the adapter's: one that cannot be read, or is another search's, gives nothing."""
    path = adapter_dir.parent / BEST
    if adapter_dir.name != "adapter" or not path.is_file() or metrics.get("study") is None:
        return {}
    try:
        doc = json.loads(path.read_text())
        same = (doc["study"]["name"], doc["trial"]["number"]) == (metrics["study"], metrics.get("trial"))
        found = {"search_run_id": doc["mlflow"]["parent_run_id"], "trial_run_id": doc["trial"]["mlflow_run_id"],
                 "search_tracking_uri": doc["mlflow"]["tracking_uri"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return recorded(found) if same else {}
