"""The pre-training step's MLflow run (experiment ``ptv2-pretrain``): its settings, every task's
dev score at every prompt length after each epoch, and the curves picture, so the shared prompt
is reviewed in MLflow beside the searches that start from it."""
from __future__ import annotations

import base64
import re
import time
from pathlib import Path

EXPERIMENT = "ptv2-pretrain"


def _key(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-/ ]", "_", text)


def log_pretraining(prompt_dir: str | Path, tracking_uri: str | None = None, run_name: str = "pretrain") -> str:
    """One finished run for the pre-trained prompt in ``prompt_dir``. Returns its run id."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    from optuna_studies.tracking_setup import use_mlflow
    from ptv2_core.multitask import read_pretrained_config
    from ptv2_core.multitask.curves import CURVES

    prompt_dir = Path(prompt_dir)
    cfg = read_pretrained_config(prompt_dir)
    names = [t["spec"]["name"] for t in cfg["tasks"]]
    pre = cfg.get("pretrain_config", {})
    params = {"tasks": ",".join(names), "lengths": ",".join(map(str, cfg["lengths"])),
              "max_prompt_len": cfg["max_prompt_len"], "nested": cfg["nested"], "model": cfg["base_model"]["name"],
              "base_fingerprint": cfg["base_model"]["fingerprint"], "epochs_trained": cfg.get("epochs_trained")}
    params |= {k: pre[k] for k in ("lr", "epochs", "batch_size", "temperature", "max_train", "max_eval", "seed")
               if k in pre}
    now = int(time.time() * 1000)
    metrics = []
    for row in cfg.get("history", []):
        step = int(row["epoch"])
        for task, by_len in row["dev"].items():
            metrics += [Metric(_key(f"dev_{task}_L{length}"), float(m["score"]), now, step) for length, m in by_len.items()]
        for key in ("train_loss", "dev_mean_score"):
            if isinstance(row.get(key), (int, float)):
                metrics.append(Metric(key, float(row[key]), now, step))
    exp_id = use_mlflow(EXPERIMENT, tracking_uri)
    client = MlflowClient()
    run = client.create_run(exp_id, run_name=run_name, tags={"ptv2.kind": "pretrain", "ptv2.tasks": ",".join(names)})
    run_id = run.info.run_id
    try:
        client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
        for i in range(0, len(metrics), 1000):  # MLflow's batch limit
            client.log_batch(run_id, metrics=metrics[i:i + 1000])
        for name in (CURVES, "prompt_config.json"):
            if (prompt_dir / name).is_file():
                client.log_artifact(run_id, str(prompt_dir / name))
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return run_id


def curves_html(prompt_dir: str | Path) -> str:
    """A small HTML page with the curves picture inline (the Kubeflow UI shows HTML outputs)."""
    from ptv2_core.multitask.curves import CURVES

    png = (Path(prompt_dir) / CURVES).read_bytes()
    return ("<html><body><h3>Pre-training: dev score per epoch at each prompt length</h3>"
            f'<img alt="dev curves" src="data:image/png;base64,{base64.b64encode(png).decode()}"></body></html>\n')
