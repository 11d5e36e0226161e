"""The pre-training step's MLflow run (experiment ``ptv2-pretrain``): its settings, every task's
dev score at every prompt length after each epoch, and the curves picture, so the shared prompt
is reviewed in MLflow beside the searches that start from it."""
from __future__ import annotations

import base64
import os
import re
import time
from pathlib import Path

from components.held_signals import HeldSignals

EXPERIMENT = "ptv2-pretrain"


def check_store(tracking_uri: str | None = None) -> str:
    """Refuse, before pre-training starts, a store the finished run could not be logged to: a URI
    MLflow cannot open, a tracking server that does not answer, a sqlite file in a missing folder,
    a ``PTV2_HOME`` that cannot be created. Writes nothing (the default store is created when the
    run is logged, so an interrupted or refused pre-training leaves no state folder behind).
    Returns the URI, its password masked, to name the store in messages."""
    from optuna_studies import settings
    from optuna_studies.study import mask_url
    from optuna_studies.tracking_setup import check_reachable

    given = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not given:  # the default sqlite file in PTV2_HOME, a folder made when the run is logged
        home = settings.check_home()
        return f"sqlite:///{home / 'mlflow.db'}"
    check_reachable(given)  # a sqlite file in a missing folder too
    return mask_url(given)


def _key(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-/ ]", "_", text)


def log_pretraining(prompt_dir: str | Path, tracking_uri: str | None = None, run_name: str | None = None) -> str:
    """One finished run for the pre-trained prompt in ``prompt_dir``. Returns its run id.
    A tracking server that stops answering fails within about a minute (``store.bounded_http``),
    the run it had started marked FAILED where the store still takes that."""
    from components.registry.store import bounded_http

    with bounded_http():
        return _log(Path(prompt_dir), tracking_uri, run_name)


def _log(prompt_dir: Path, tracking_uri: str | None, run_name: str | None) -> str:
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    from optuna_studies.tracking_setup import use_mlflow
    from ptv2_core.multitask import read_pretrained_config
    from ptv2_core.multitask.curves import CURVES

    cfg = read_pretrained_config(prompt_dir)
    names = [t["spec"]["name"] for t in cfg["tasks"]]
    if run_name is None:  # what the runs list tells one pre-training from another by (all were 'pretrain')
        lengths = cfg["lengths"]
        span = f"{lengths[0]}-{lengths[-1]}" if len(lengths) > 1 else str(lengths[0])
        run_name = (f"pretrain {','.join(names)} L{span} "
                    f"({Path(str(cfg['base_model']['name'])).name})")
    pre = cfg.get("pretrain_config", {})
    params = {"tasks": ",".join(names), "lengths": ",".join(map(str, cfg["lengths"])),
              "max_prompt_len": cfg["max_prompt_len"], "nested": cfg["nested"], "model": cfg["base_model"]["name"],
              "base_fingerprint": cfg["base_model"]["fingerprint"], "epochs_trained": cfg.get("epochs_trained")}
    params |= {k: pre[k] for k in ("lr", "epochs", "batch_size", "temperature", "max_train", "max_eval", "seed",
                                   "reparam", "bf16") if k in pre}
    # the pooling the heads use (the setting's default resolved per model family), the tasks as given (a task
    # YAML's path), the code and the machine: what a reviewer needs to tell two runs apart
    params |= {"pooling": ",".join(sorted({t["head"]["pooling"] for t in cfg["tasks"]})),
               "task_refs": ",".join(t["ref"] for t in cfg["tasks"]), "ptv2_version": cfg.get("ptv2_version")}
    params |= {k: cfg[k] for k in ("started", "finished") if k in cfg}
    if isinstance(cfg.get("trained_on"), dict):
        params["trained_on"] = f"{cfg['trained_on'].get('device')} ({'bf16' if cfg['trained_on'].get('bf16') else 'fp32'})"
    now = int(time.time() * 1000)
    metrics = []
    for row in cfg.get("history", []):
        step = int(row["epoch"])
        at = _ms(row.get("time")) or now  # when the epoch's scores were taken (a prompt before 2026-12-07: now)
        for task, by_len in row["dev"].items():
            metrics += [Metric(_key(f"dev_{task}_L{length}"), float(m["score"]), at, step) for length, m in by_len.items()]
        for key in ("train_loss", "dev_mean_score"):
            if isinstance(row.get(key), (int, float)):
                metrics.append(Metric(key, float(row[key]), at, step))
        for task, loss in (row.get("train_loss_by_task") or {}).items():
            metrics.append(Metric(_key(f"train_loss_{task}"), float(loss), at, step))
    exp_id = use_mlflow(EXPERIMENT, tracking_uri)
    client = MlflowClient()
    # the training's times; a prompt resumed from a checkpoint of before 2026-12-07 records no start: its first
    # scores' time is one, and without either the run's times are the logging's (an end before the start is none)
    history = cfg.get("history") or [{}]
    started = _ms(cfg.get("started")) or _ms(history[0].get("time"))
    held = HeldSignals()  # a Ctrl-C or SIGTERM as the run is created waits for the cleanup that marks it FAILED
    try:
        run_id = client.create_run(exp_id, run_name=run_name, start_time=started,
                                   tags={"ptv2.kind": "pretrain", "ptv2.tasks": ",".join(names)}
                                   | _source_tags(cfg)).info.run_id
    except BaseException:
        held.release()
        raise
    try:
        held.release()  # a signal that came meanwhile is raised here
        client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
        for i in range(0, len(metrics), 1000):  # MLflow's batch limit
            client.log_batch(run_id, metrics=metrics[i:i + 1000])
        for name in (CURVES, "prompt_config.json"):
            if (prompt_dir / name).is_file():
                client.log_artifact(run_id, str(prompt_dir / name))
    except BaseException:
        try:
            client.set_terminated(run_id, "FAILED")
        except Exception:  # noqa: BLE001 (the store that failed above: the first error is the one to report)
            pass
        raise
    client.set_terminated(run_id, "FINISHED", end_time=_ms(cfg.get("finished")) if started else None)
    return run_id


def _ms(iso) -> int | None:
    """An ISO time the prompt recorded, as MLflow's milliseconds (None: not recorded, or not a time)."""
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(iso).timestamp() * 1000)
    except (TypeError, ValueError):
        return None


def _source_tags(cfg: dict) -> dict[str, str]:
    """The code that made the prompt, as a search's runs tag it: ``ptv2.code_version`` and the bare commit
    as ``mlflow.source.git.commit`` (the UI's "Source"). From the prompt (the code that trained it), not
    from the code logging it now; a prompt made before 2026-12-07 records none."""
    made_by = cfg.get("provenance") or {}
    tags = {"ptv2.code_version": str(made_by["code_version"])} if made_by.get("code_version") else {}
    commit = str(made_by.get("git_commit") or "").partition(".")[0]
    return tags | ({"mlflow.source.git.commit": commit} if commit else {})


def _record(prompt_dir: Path) -> tuple[str, list[dict]]:
    """``(digest of prompt_config.json, the runs recorded for that prompt)``: a record left by
    another prompt in the same folder (replaced by hand) records none."""
    import json

    from ptv2_core.errors import Ptv2Error
    from ptv2_core.multitask.pretrained import LOGGED, config_digest

    digest = config_digest(prompt_dir)
    path = prompt_dir / LOGGED
    if not path.is_file():
        return digest, []
    try:
        doc = json.loads(path.read_text())
        runs = doc["runs"] if doc["prompt_config_sha256"] == digest else []
        ok = all(isinstance(r["store"], str) and isinstance(r["run_id"], str) for r in runs)
    except (ValueError, KeyError, TypeError):  # not JSON, or not a record's shape
        ok = False
    if not ok:
        raise Ptv2Error(f"'{path}' is not a record of logged runs: remove it (the prompt's run is then "
                        "logged again)")
    return digest, runs


def store_key(store: str) -> str:
    """``store`` (as :func:`check_store` names it) as one store is recorded, however its URL is
    written: a bare ``postgresql://`` with its driver (``check_tracking_uri``), a sqlite file by its
    absolute path (a relative ``sqlite:///mlflow.db`` names another store in another folder)."""
    from optuna_studies.schema_race import sqlite_file
    from optuna_studies.tracking_setup import check_tracking_uri
    from optuna_studies.urls import mask_url
    from ptv2_core.errors import Ptv2Error

    try:
        uri = check_tracking_uri(store)
    except Ptv2Error:  # not a URI MLflow opens (a record written by hand): as it is
        return store
    db = sqlite_file(uri)
    return f"sqlite:///{db}" if db is not None else mask_url(uri)  # a password never recorded


def logged_run(prompt_dir: str | Path, store: str) -> str | None:
    """The id of the run of the finished prompt in ``prompt_dir`` logged to ``store`` (as
    :func:`check_store` names it), as recorded in the folder; None when none is recorded."""
    _, runs = _record(Path(prompt_dir))
    key = store_key(store)
    return next((r["run_id"] for r in runs if store_key(r["store"]) == key), None)


def record_logged(prompt_dir: str | Path, store: str, run_id: str) -> None:
    """Record in ``prompt_dir`` (``logged_runs.json``, one atomic write) that its prompt's run is
    ``run_id`` in ``store``, so that the same command again does not log it twice."""
    import json

    from ptv2_core.adapter import write_atomic_dir
    from ptv2_core.errors import Ptv2Error
    from ptv2_core.multitask.pretrained import LOGGED

    prompt_dir = Path(prompt_dir)
    digest, runs = _record(prompt_dir)
    key = store_key(store)
    runs = [r for r in runs if store_key(r["store"]) != key] + [{"store": key, "experiment": EXPERIMENT, "run_id": run_id}]
    text = json.dumps({"prompt_config_sha256": digest, "runs": runs}, indent=2) + "\n"
    try:
        write_atomic_dir(prompt_dir, {LOGGED: text})
    except (OSError, Ptv2Error) as e:  # write_atomic_dir's Ptv2Error carries the OSError
        cause = e.__cause__ if isinstance(e.__cause__, OSError) else e
        raise Ptv2Error(f"the prompt's run is logged (MLflow run {run_id}), but recording that in "
                        f"'{prompt_dir / LOGGED}' failed: {getattr(cause, 'strerror', None) or cause}; the same "
                        "command again would log it a second time") from None


def curves_html(prompt_dir: str | Path) -> str:
    """A small HTML page with the curves picture inline (the Kubeflow UI shows HTML outputs)."""
    from ptv2_core.multitask.curves import CURVES

    png = (Path(prompt_dir) / CURVES).read_bytes()
    return ("<html><body><h3>Pre-training: dev score per epoch at each prompt length</h3>"
            f'<img alt="dev curves" src="data:image/png;base64,{base64.b64encode(png).decode()}"></body></html>\n')
