"""What is registered: each version of ptv2's registered models, from the registry's tags alone.

``ptv2 versions`` reads the registered models (their aliases) and their versions' tags: task type,
labels (``ptv2.labels``), prompt length, base model, the dev and test metrics, when it was created
and from which run. No artifact is downloaded: a version registered before the labels tags existed
shows no labels (None) rather than its adapter_config.json being fetched.

A store may hold other registered models too (a shared MLflow server): ptv2's are those with ptv2's
marker tag (``ptv2.registered_by``, on every model ``ptv2 register`` creates) or, registered before
the marker, tagged ``task`` or named with ptv2's prefix (``ptv2-``) AND holding a version with ptv2's
own tags (a ``ptv2.*`` tag, or ``prompt_len`` with ``base_model``): another team's model tagged
``task`` is not ptv2's. Two paged searches in all (registered models, then every version), not one
per registered model.

A score tag that is no finite number ('nan' from a diverged run, 'inf') is None: JSON has no NaN.
"""
from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict, dataclass, field

from components.registry import store
from components.registry.labels import LABEL_COUNT_TAG, LABELS_TAG, TRUNCATED_TAG
from components.registry.metadata import METRIC_TAGS
from components.registry.names import NAME_PREFIX, name_filter
from components.registry.register import MODEL_MARKER_TAG

PAGE = 1000  # versions per page of the version search


@dataclass(frozen=True)
class VersionRow:
    """One registered version as ``ptv2 versions --json`` prints it (these keys, in this order;
    None where the version's tags do not say). ``dev`` and ``test``: ``{metric: value}`` from its
    ``dev_*``/``test_*`` tags (None: not a finite number); ``metric``: the task's main one;
    ``created``: ISO 8601, UTC."""

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
    dev: dict[str, float | int | None] = field(default_factory=dict)
    test: dict[str, float | int | None] = field(default_factory=dict)
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
                found = _all(lambda token: c.search_model_versions(name_filter(name), max_results=PAGE,
                                                                   page_token=token), f"listing versions of '{name}'", uri)
            else:
                models = _all(lambda token: c.search_registered_models(page_token=token), "listing registered models", uri)
                found = _all(lambda token: c.search_model_versions(max_results=PAGE, page_token=token),
                             "listing model versions", uri)
            by_name: dict[str, list] = {}
            for v in found:
                by_name.setdefault(v.name, []).append(v)
            if task is None:
                models = [m for m in models if _is_ptv2(m, by_name.get(m.name, []))]
            rows = []
            for m in sorted(models, key=lambda m: m.name):
                rows += sorted((_row(m, v) for v in by_name.get(m.name, [])), key=lambda r: -r.version)
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


def _is_ptv2(model, versions: list) -> bool:
    tags = model.tags or {}
    if MODEL_MARKER_TAG in tags:
        return True
    return ("task" in tags or model.name.startswith(NAME_PREFIX)) and any(_ptv2_version(v) for v in versions)


def _ptv2_version(v) -> bool:
    """Tags only ``ptv2 register`` gives a version (a registered model's ``task`` tag is too common)."""
    t = v.tags or {}
    return any(k.startswith("ptv2.") for k in t) or ("prompt_len" in t and "base_model" in t)


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


def _metrics(tags: dict, split: str) -> dict[str, float | int | None]:
    out: dict[str, float | int | None] = {}
    for k, value in sorted(tags.items()):
        if k in METRIC_TAGS and k.startswith(f"{split}_"):
            try:  # a count (test_examples) stays an integer
                number = int(value) if value.lstrip("-").isdigit() else float(value)
            except ValueError:
                continue
            out[k[len(split) + 1:]] = number if math.isfinite(number) else None  # 'nan', 'inf': no JSON number
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

