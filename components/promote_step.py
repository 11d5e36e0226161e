"""Step: the pipeline's promotion of the version its run registered.

A champion that cannot be compared fairly with it (another split seed after a second ``ptv2 run``
with another seed, or task data changed since) is no failure of the run: the champion is kept and
the version says why (``promotion.decision`` ``kept (not comparable)``, ``promotion.reason``), which
the run's summary shows. ``ptv2 promote --force --reason`` still moves ``champion`` when wanted.
Any other refusal fails the step.
"""
from __future__ import annotations

import datetime as dt
import getpass

NOT_COMPARABLE = "kept (not comparable)"


def promote_step(task: str, registered_name: str, version: str, margin: float, mlflow_uri: str,
                 max_eval: int) -> str:
    """``promoted`` or ``kept``; the decision and its reason are tags on the version."""
    from components.registry.promote import NotComparable, promote

    try:
        decision = promote(registered_name or task, margin=float(margin), tracking_uri=mlflow_uri or None,
                           max_eval=int(max_eval) or None, version=int(version) if version else None)
    except NotComparable as e:
        _record_kept(e, mlflow_uri or None, float(margin))
        print(f"ptv2 ▸ {e.name} v{e.challenger}: {NOT_COMPARABLE}: {e.problem}", flush=True)
        return "kept"
    return "promoted" if decision.promoted else "kept"


def _record_kept(e, mlflow_uri: str | None, margin: float) -> None:
    """The refusal's audit tags on the challenger only (the champion's record is its own promotion's),
    ``promotion.decision`` last, as ``promote`` writes its own."""
    from components.registry import store

    uri = store.tracking_uri(mlflow_uri)
    try:
        by = getpass.getuser()
    except Exception:  # noqa: BLE001  (no user name in a container: the record still stands)
        by = "unknown"
    tags = {
        "promotion.reason": e.problem[:4000],
        "promotion.forced": "false",
        "promotion.challenger_version": str(e.challenger),
        "promotion.champion_version": str(e.champion),
        "promotion.margin_points": str(margin),
        "promotion.at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "promotion.by": by,
        "promotion.decision": NOT_COMPARABLE,
    }
    with store.bounded_http():
        c = store.reading_client(uri)
        for k, v in tags.items():
            store.retry(lambda: c.set_model_version_tag(e.name, str(e.challenger), k, v),
                        f"tagging {e.name} version {e.challenger}", uri)
