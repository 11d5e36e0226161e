"""How metrics read in pictures and tables: "span F1", not the key ``span_f1`` (one place for the
pre-training curves and the search's plots)."""
from __future__ import annotations

NAMES = {"accuracy": "accuracy", "macro_f1": "macro F1", "span_f1": "span F1", "precision": "precision",
         "recall": "recall", "score": "score", "loss": "loss"}


def metric_name(key: str) -> str:
    """A metric key as people read it (an unknown key with its underscores as spaces)."""
    return NAMES.get(key, key.replace("_", " "))


def objective_name(objective: str, task_metric: str = "") -> str:
    """What a search optimises, named by the task's metric: ``dev_score`` (the task's primary
    metric on dev) with ``task_metric`` "accuracy" reads "dev accuracy"; ``dev_macro_f1`` "dev macro
    F1"; ``train_loss`` "train loss"; ``dev_score`` with the task's metric unknown "dev score"."""
    split, _, key = objective.partition("_")
    if not key:
        return metric_name(objective)
    if key == "score" and task_metric:
        key = task_metric
    return f"{split} {metric_name(key)}"
