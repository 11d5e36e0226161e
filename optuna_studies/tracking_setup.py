"""Pointing MLflow at the configured store (the one place that does it)."""
from __future__ import annotations

from optuna_studies import settings
from optuna_studies.schema_race import open_once


def use_mlflow(experiment: str, tracking_uri: str | None = None) -> str:
    """Set the tracking URI and the active experiment (created with the configured artifact
    root when new). Returns the experiment id."""
    import mlflow

    uri = settings.mlflow_tracking_uri(tracking_uri)
    open_local_store(uri)
    mlflow.set_tracking_uri(uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        try:
            exp_id = mlflow.create_experiment(experiment, artifact_location=settings.artifact_root(tracking_uri=tracking_uri))
        except mlflow.exceptions.MlflowException:  # created meanwhile by a concurrent process
            exp_id = mlflow.get_experiment_by_name(experiment).experiment_id
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def open_local_store(uri: str) -> None:
    """Create the schema of a database-backed MLflow store this process opens itself (sqlite,
    PostgreSQL), if new; processes creating it at once open it again until one has
    (``optuna_studies/schema_race.py``). A tracking server migrates its own database."""
    if not settings.is_local_store(uri) or uri.startswith("file:"):
        return
    from mlflow import MlflowClient

    open_once(uri, lambda: MlflowClient(uri).search_experiments(max_results=1))


def check_reachable(tracking_uri: str | None = None, timeout: float = 5.0) -> None:
    """Refuse a tracking server that does not answer, before a study or a run is opened: MLflow's
    own client would retry with backoff for minutes and leave a study behind. Only a server
    (http/https) is probed, at its ``/health`` endpoint; any HTTP answer counts as reachable
    (an auth proxy's 401 is the client's next error to report, not an outage)."""
    import urllib.error
    import urllib.request

    from ptv2_core.errors import Ptv2Error

    uri = settings.mlflow_tracking_uri(tracking_uri)
    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout).close()  # noqa: S310 (http(s) only)
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise Ptv2Error(f"MLflow tracking server {uri} does not answer ({reason}): start it, or point "
                        "--mlflow-uri / MLFLOW_TRACKING_URI at one that runs") from None
