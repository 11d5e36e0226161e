"""Pointing MLflow at the configured store (the one place that does it)."""
from __future__ import annotations

from optuna_studies import settings


def use_mlflow(experiment: str, tracking_uri: str | None = None) -> str:
    """Set the tracking URI and the active experiment (created with the configured artifact
    root when new). Returns the experiment id."""
    import mlflow

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri(tracking_uri))
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
