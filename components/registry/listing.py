"""What is registered: each version of ptv2's registered models, from the registry's tags alone.

``ptv2 versions`` reads the registered models (their aliases) and their versions' tags: task type,
labels (``ptv2.labels``), prompt length, base model, the dev and test metrics, when it was created
and from which run. No artifact is downloaded: a version registered before the labels tags existed
shows no labels (None) rather than its adapter_config.json being fetched.

A store may hold other registered models too (a shared MLflow server): ptv2's are those tagged
``task`` (every model ``ptv2 register`` creates) or named with ptv2's prefix (``ptv2-``).
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field

from components.registry import store
from components.registry.labels import LABEL_COUNT_TAG, LABELS_TAG, TRUNCATED_TAG
from components.registry.metadata import METRIC_TAGS
from components.registry.names import NAME_PREFIX, name_filter


@dataclass(frozen=True)
class VersionRow:
    """One registered version as ``ptv2 versions --json`` prints it (these keys, in this order;
    None where the version's tags do not say). ``dev`` and ``test``: ``{metric: value}`` from its
    ``dev_*``/``test_*`` tags; ``metric``: the task's main one; ``created``: ISO 8601, UTC."""

    model: str
    version: int
    aliases: list[str]
    task: str | None
    task_type: str | None
    labels: list[str] | None
    label_count: int | None
    labels_truncated: bool
    prompt_len: int | None
    base_model: str | None
    metric: str | None
    dev: dict[str, float | int] = field(default_factory=dict)
    test: dict[str, float | int] = field(default_factory=dict)
    created: str | None = None
    run_id: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def list_versions(task: str | None = None, tracking_uri: str | None = None) -> tuple[str, list[VersionRow]]:
    """``(store URI, rows)``: every version of ``task``'s registered model (a task, or a registered
    model name, as ``ptv2 promote --task`` takes it), or of every ptv2 model in the store; by model
    name, newest version first. Ptv2Error for a bad or unreachable store and an unknown task."""
    from mlflow.exceptions import MlflowException

    from components.registry.promote import resolve_name

    uri = store.tracking_uri(tracking_uri)
    with store.bounded_http():
        c = store.reading_client(uri)
        try:
            if task is not None:
                name = resolve_name(c, uri, task)
                models = [store.retry(lambda: c.get_registered_model(name), f"reading registered model '{name}'", uri)]
            else:
                models = sorted((m for m in _all(lambda token: c.search_registered_models(page_token=token),
                                                 "listing registered models", uri) if _is_ptv2(m)),
                                key=lambda m: m.name)
            rows = []
            for m in models:
                found = _all(lambda token: c.search_model_versions(name_filter(m.name), page_token=token),
                             f"listing versions of '{m.name}'", uri)
                rows += sorted((_row(m, v) for v in found), key=lambda r: -r.version)
        except MlflowException as e:  # an answer retry() does not retry (a refused filter): the store's
            raise store.unreachable(uri, e) from None
    return uri, rows


def _all(search, what: str, uri: str) -> list:
    """Every page of a paged MLflow search."""
    items, token = [], None
    while True:
        page = store.retry(lambda: search(token), what, uri)
        items += list(page)
        token = getattr(page, "token", None)
        if not token:
            return items


def _is_ptv2(model) -> bool:
    return "task" in (model.tags or {}) or model.name.startswith(NAME_PREFIX)


def _row(model, v) -> VersionRow:
    t = v.tags or {}
    by_version: dict[str, list[str]] = {}
    for alias, number in (model.aliases or {}).items():
        by_version.setdefault(str(number), []).append(alias)
    labels = _json_list(t.get(LABELS_TAG))
    return VersionRow(
        model=model.name, version=int(v.version), aliases=sorted(by_version.get(str(v.version), [])),
        task=t.get("task") or (model.tags or {}).get("task"),
        task_type=t.get("task_type") or (model.tags or {}).get("task_type"),
        labels=labels, label_count=_int(t.get(LABEL_COUNT_TAG)) if labels is not None else None,
        labels_truncated=labels is not None and TRUNCATED_TAG in t,
        prompt_len=_int(t.get("prompt_len")), base_model=t.get("base_model") or None, metric=t.get("metric") or None,
        dev=_metrics(t, "dev"), test=_metrics(t, "test"), created=_iso(v.creation_timestamp), run_id=v.run_id or None)


def _metrics(tags: dict, split: str) -> dict[str, float | int]:
    out = {}
    for k, value in sorted(tags.items()):
        if k in METRIC_TAGS and k.startswith(f"{split}_"):
            try:  # a count (test_examples) stays an integer
                out[k[len(split) + 1:]] = int(value) if value.lstrip("-").isdigit() else float(value)
            except ValueError:
                pass
    return out


def _json_list(text: str | None) -> list[str] | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return [str(x) for x in value] if isinstance(value, list) else None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text not in (None, "") else None
    except ValueError:
        return None


def _iso(ms: int | None) -> str | None:
    if not ms:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

