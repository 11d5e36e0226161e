"""Step: search prompt length × learning rate for one prepared task, hand over the best adapter."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import yaml

from components.data import prepared_name, task_yaml
from components.step_sigterm import sigterm_as_ctrl_c


def safe_name(task: str) -> str:
    """``task`` for a file, folder or study name: a hub task is named like ``user/data``, and
    '/', ':', '@' and '%' become '-' as in a registered model's name."""
    from components.registry.names import default_name

    return default_name(task, prefix="")


def space_file(task: str, folder: Path, *, lengths: list[int], lr_range: tuple[float, float], trials: int,
               epochs: int, task_file: str | Path | None = None) -> Path:
    """The task's packaged search space with the pipeline's lengths, lr range and budget (a user
    task's by its type, read from ``task_file``, its prepared task YAML)."""
    from optuna_studies.space import space_path

    doc = yaml.safe_load(space_path(task, task_file).read_text())
    doc |= {"prompt_len": sorted(lengths), "lr": {"low": float(lr_range[0]), "high": float(lr_range[1]), "log": True},
            "trials": int(trials), "epochs": int(epochs)}
    # warm-start entries outside the new space would be rejected: keep the ones that fit
    doc["enqueue"] = [e for e in doc.get("enqueue", []) if e.get("prompt_len") in lengths
                      and lr_range[0] <= e.get("lr", lr_range[0]) <= lr_range[1]]
    path = folder / f"{safe_name(task)}-space.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def name_base_model(adapter_dir: str | Path, model: str | None, init: str | None = None) -> None:
    """Name ``model`` as the base of an adapter whose trials read a copy of it (the same files,
    so the same fingerprint): the copy in the shared folder goes with the search step, the
    model the pipeline was given stays where the later steps load it from. Likewise ``init``, the
    pre-trained prompt the trials read a copy of (its weights' digest is the copy's: the same
    bytes). None: the adapter names its own."""
    from ptv2_core.adapter import CONFIG

    config_path, metrics_path = Path(adapter_dir) / CONFIG, Path(adapter_dir) / "metrics.json"
    config = json.loads(config_path.read_text())
    if model:
        config["base_model"]["name"] = model
        if "train_config" in config.get("extra", {}):
            config["extra"]["train_config"]["model"] = model
    if init and "init" in config.get("extra", {}):
        config["extra"]["init"] = init
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    if metrics_path.is_file():
        metrics = json.loads(metrics_path.read_text())
        metrics |= ({"model": model} if model else {}) | ({"init": init} if init and "init" in metrics else {})
        metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")


@sigterm_as_ctrl_c()  # SIGTERM (a pipeline run stopped, its pod deleted): as Ctrl-C, one error: line, exit 143
def search_task(prepared_dir: str | Path, task: str, adapter_out: str | Path, plot_out: str | Path, *,
                model: str = "minilm", lengths: list[int], lr_range: tuple[float, float], trials: int, epochs: int,
                concurrency: int = 2, cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0,
                init_dir: str | Path | None = None, seed: int = 0, mlflow_uri: str | None = None,
                ray_address: str | None = None, storage: str | None = None) -> dict:
    """Run the search on the prepared splits; copy the best trial's adapter to ``adapter_out``
    and the interactive length × lr plot to ``plot_out``. Returns the best config and score.

    With ``PTV2_SHARED_DIR`` set (a Ray cluster of several machines, see optuna_studies.cluster),
    the search works in a folder inside it, with copies of the task's files, the pre-trained
    prompt and a model folder (one in the image, say), so that trials on every node read them."""
    from optuna_studies import settings
    from optuna_studies.cluster import check_shared_dir
    from optuna_studies.search import run_search
    from optuna_studies.space import space_path
    from ptv2_core.backbone import absolute_model_ref

    shared = settings.shared_dir()
    inputs = check_shared_dir(shared) / "ptv2-inputs" if shared else None
    if inputs is not None:
        inputs.mkdir(parents=True, exist_ok=True)
    task = prepared_name(prepared_dir, task)  # a task YAML path → the task's name
    work = Path(tempfile.mkdtemp(prefix=f"ptv2-search-{safe_name(task)}-", dir=inputs))
    # a pipeline run never resumes a search (each run has its own output): its study is its own, and
    # its work folder in the shared volume (trial records, checkpoints) goes with the step, failed too
    study = f"ptv2-{safe_name(task)}-{work.name.rsplit('-', 1)[-1]}"
    try:
        yaml_path = task_yaml(prepared_dir, task)
        space = space_file(task, work, lengths=lengths, lr_range=lr_range, trials=trials, epochs=epochs,
                           task_file=yaml_path)
        trial_model = model
        # the space file is a temporary one (a shared folder or not): the parent run names what it came from
        originals = {"space_file": f"{space_path(task, yaml_path)} with the pipeline's prompt_len, lr, trials and epochs "
                                   f"(as run: artifact {space.name})"}
        if inputs is not None:
            originals |= {"model": absolute_model_ref(model), "init": str(Path(init_dir).resolve()) if init_dir else ""}
            yaml_path = shutil.copytree(yaml_path.parent, work / "task") / yaml_path.name
            init_dir = shutil.copytree(init_dir, work / "prompt") if init_dir else None
            if Path(model).is_dir():  # a folder in the image (an alias or a hub name is none)
                trial_model = str(shutil.copytree(model, work / "model"))
        res = run_search(str(yaml_path), trial_model, work / "out", space=space, storage=storage,
                         init=init_dir, concurrency=concurrency, cpus_per_trial=cpus_per_trial,
                         gpus_per_trial=gpus_per_trial, mlflow_uri=mlflow_uri, ray_address=ray_address,
                         seed=seed, study_name=study, echo=lambda line: print(f"ptv2 ▸ {task}: {line}", flush=True),
                         originals=originals,  # MLflow names the model, prompt and space given, not their copies
                         ray_address_given_by="the ray_address parameter",
                         mlflow_uri_given_by="the mlflow_uri parameter")
        shutil.copytree(res.adapter_dir, adapter_out, dirs_exist_ok=True)
        if trial_model != model or inputs is not None and originals.get("init"):  # copies the step deletes
            name_base_model(adapter_out, model if trial_model != model else None, originals.get("init") or None)
        html = next(iter(sorted(res.out_dir.rglob("length_lr.html"))), None)
        Path(plot_out).parent.mkdir(parents=True, exist_ok=True)
        if html is not None:
            shutil.copyfile(html, plot_out)
        else:
            Path(plot_out).write_text("<html><body>no plot: no trial finished</body></html>")
        return {"best_config": res.best_config, "best_score": res.best_score, "n_trials": len(res.trials),
                "study": res.study_name, "parent_run_id": res.parent_run_id}
    finally:
        if inputs is not None:
            from optuna_studies.plan import shared_work_dir

            shutil.rmtree(shared_work_dir(inputs.parent, study, (work / "out").resolve()), ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
