"""Step: the pipeline's promotion of the version its run registered.

A champion that cannot be compared fairly with it (another split seed after a second ``ptv2 run``
with another seed, or task data changed since) is no failure of the run: the champion is kept and
the version says why (``promotion.decision`` ``kept (not comparable)``, ``promotion.reason``), which
the run's summary shows. ``ptv2 promote --force --reason`` still moves ``champion`` when wanted.
Any other refusal fails the step. Scoring that runs out of memory names what a pipeline user can
change (the pipeline has no batch-size parameter): the step's memory, or promoting by hand.
"""
from __future__ import annotations

import datetime as dt
import getpass

NOT_COMPARABLE = "kept (not comparable)"
BATCH_SIZE = 64  # test rows scored at once (``promote``'s default); no pipeline parameter sets it


def batch_hint(name: str, version: str) -> str:
    """What an out-of-memory line tells the pipeline user (it reads "try a smaller " + this)."""
    by_hand = f"ptv2 promote --task {name}" + (f" --version {version}" if version else "") + " --batch-size 8"
    return (f"batch: the promote step scores {BATCH_SIZE} test rows at once and the pipeline has no parameter "
            f"for it; give the step more memory (STEP_RESOURCES['promote'] in pipelines/pipeline.py, then "
            f"`ptv2 compile`), or promote the registered version by hand in smaller batches: `{by_hand}`")


def promote_step(task: str, registered_name: str, version: str, margin: float, mlflow_uri: str,
                 max_eval: int) -> str:
    """``promoted`` or ``kept``; the decision and its reason are tags on the version."""
    from components.registry.promote import NotComparable, promote

    name = registered_name or task
    try:
        decision = promote(name, margin=float(margin), tracking_uri=mlflow_uri or None,
                           max_eval=int(max_eval) or None, version=int(version) if version else None,
                           batch_size=BATCH_SIZE, batch_option=batch_hint(name, version))
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
