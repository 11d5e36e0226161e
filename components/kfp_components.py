"""The Kubeflow components: one per pipeline step, each a thin wrapper over a plain function.

Bodies import inside the function (KFP ships only the function's source to the container, where
the ptv2 package is installed in the image). Endpoints arrive as parameters; an empty string
means "use the environment, else the embedded default" (optuna_studies.settings).
Locally collected ints can arrive as floats, hence the int() casts. Each is ``@exec_python``: its
shell hands the step's process to Python, so that a signal to the step reaches the component.
No ``from __future__ import annotations`` here: KFP reads the real annotation objects.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output

from components.image import component_image
from components.step_exec import exec_python

IMAGE = component_image()


@exec_python  # kfp's shell execs Python: a SIGTERM to the step reaches it (components/step_exec.py)
@dsl.component(base_image=IMAGE, install_kfp_package=False)
def check_params_op(tasks: list, model: str, prompt_lengths: list, lr_min: float, lr_max: float,
                    trials_per_task: int, epochs: int, final_epochs: int, search_concurrency: int,
                    cpus_per_trial: float, gpus_per_trial: float, pretrain_epochs: int, use_pretrained_prompt: bool,
                    max_train: int, max_eval: int, seed: int, registered_model_prefix: str, auto_promote: bool,
                    promotion_margin: float, mlflow_uri: str, ray_address: str, optuna_storage: str) -> str:
    """Check every parameter of the run, as typed into the Kubeflow run form, before any step does
    work: task names and files in the image, prompt lengths, counts, the learning-rate range, the
    registered model names, the study storage URL's form, that the base model's config loads, and that the
    MLflow server and the Ray cluster the steps will use answer. Returns the model every later step
    loads: a hub name pinned to the commit the hub names now (``org/name@<sha>``), so that all of
    them read one commit however the hub's main moves during the run; an alias, a folder or a name
    already pinned to a commit as it is."""
    params = dict(locals())  # the parameters alone: nothing else is defined yet
    from components.params import check_params, check_services
    from optuna_studies.plan import check_model

    # the task files and the model are in this image; a sqlite study file is in the volume the
    # search step mounts, not here: its URL is checked by its form alone
    params = check_params(params, files_here=True, steps_here=False)
    check_model(params["model"])
    check_services(params)
    from ptv2_core.backbone import pin_hub_model

    pinned, sha = pin_hub_model(params["model"])
    print(f"ptv2 ▸ parameters checked: tasks {', '.join(map(str, tasks))}, model {model}", flush=True)
    if pinned != params["model"]:
        print(f"ptv2 ▸ model {model}: pinned to commit {sha[:7]} ({pinned}) for this run", flush=True)
    return pinned


@exec_python
@dsl.component(base_image=IMAGE, install_kfp_package=False)
def prepare_data_op(tasks: list, seed: int, max_train: int, max_eval: int, data: Output[Dataset]):
    """Freeze each task's seeded train/dev/test splits as files."""
    from components.data import prepare_data

    manifest = prepare_data([str(t) for t in tasks], data.path, seed=int(seed),
                            max_train=int(max_train) or None, max_eval=int(max_eval) or None)
    data.metadata["tasks"] = sorted(manifest["tasks"])
    data.metadata["hashes"] = {t: e["hash"] for t, e in manifest["tasks"].items()}


@exec_python
@dsl.component(base_image=IMAGE, install_kfp_package=False)
def pretrain_prompt_op(data: Input[Dataset], tasks: list, model: str, lengths: list, epochs: int, lr: float,
                       seed: int, mlflow_uri: str, use_pretrained: bool, prompt: Output[Model],
                       metrics: Output[Metrics], plots: Output[HTML]):
    """Pre-train one shared deep prompt on all tasks, every leading slice usable. ``use_pretrained``
    false: no later step reads the prompt, so the step writes a "no prompt" marker and trains
    nothing (an input, so a cached skipped run is never reused for one that wants the prompt)."""
    from components.pretrain_step import pretrain_prompt

    out = pretrain_prompt(data.path, [str(t) for t in tasks], prompt.path, model=model,
                          lengths=[int(x) for x in lengths], epochs=int(epochs), lr=float(lr), seed=int(seed),
                          mlflow_uri=mlflow_uri or None, plot_out=plots.path, use_pretrained=bool(use_pretrained))
    for key, value in out["metrics"].items():
        metrics.log_metric(key, value)
    prompt.metadata["skipped"] = out["skipped"]
    prompt.metadata["lengths"] = [] if out["skipped"] else [int(x) for x in lengths]
    prompt.metadata["mlflow_run_id"] = out["run_id"]
    # the model the first step pinned (org/name@<sha>), for the search and final steps: a task's output
    # handed into the ParallelFor reaches kfp.local's loop steps as the loop item (kfp 2.17.3), an
    # artifact's metadata as it is
    prompt.metadata["model"] = model


@exec_python
@dsl.component(base_image=IMAGE, install_kfp_package=False)
def search_op(data: Input[Dataset], prompt: Input[Model], task: str, model: str, lengths: list, lr_min: float,
              lr_max: float, trials: int, epochs: int, concurrency: int, cpus_per_trial: float,
              gpus_per_trial: float, use_pretrained: bool, seed: int,
              mlflow_uri: str, ray_address: str, optuna_storage: str,
              adapter: Output[Model], metrics: Output[Metrics], plots: Output[HTML]) -> NamedTuple(
                  "SearchOutputs", [("best_prompt_len", int), ("best_lr", float), ("best_config", str), ("study", str)]):
    """Search prompt length × learning rate for one task (Optuna TPE on Ray Tune, ASHA)."""
    import json
    from collections import namedtuple

    from components.search_step import search_task

    model = str(prompt.metadata.get("model") or model)  # pinned by the first step, as pre-training loaded it
    res = search_task(data.path, task, adapter.path, plots.path, model=model, lengths=[int(x) for x in lengths],
                      lr_range=(float(lr_min), float(lr_max)), trials=int(trials), epochs=int(epochs),
                      concurrency=int(concurrency), cpus_per_trial=float(cpus_per_trial),
                      gpus_per_trial=float(gpus_per_trial), init_dir=prompt.path if use_pretrained else None, seed=int(seed),
                      mlflow_uri=mlflow_uri or None, ray_address=ray_address or None, storage=optuna_storage or None)
    metrics.log_metric("best_dev_score", float(res["best_score"]))
    metrics.log_metric("trials", float(res["n_trials"]))
    best = res["best_config"]
    out = namedtuple("SearchOutputs", ["best_prompt_len", "best_lr", "best_config", "study"])
    return out(int(best["prompt_len"]), float(best["lr"]), json.dumps(best), res["study"])


@exec_python
@dsl.component(base_image=IMAGE, install_kfp_package=False)
def final_train_op(data: Input[Dataset], prompt: Input[Model], search_adapter: Input[Model], task: str, model: str,
                   best_config: str, final_epochs: int, use_pretrained: bool, seed: int, study: str,
                   adapter: Output[Model], metrics: Output[Metrics]) -> float:
    """The task's final adapter with its dev and test scores: the search's best trial's adapter
    (``final_epochs`` 0), or the best configuration trained again for ``final_epochs`` epochs."""
    import json

    from components.final_step import final_adapter

    model = str(prompt.metadata.get("model") or model)  # pinned by the first step, as pre-training loaded it
    doc = final_adapter(data.path, task, search_adapter.path, json.loads(best_config), adapter.path,
                        final_epochs=int(final_epochs), model=model,
                        init_dir=prompt.path if use_pretrained else None, seed=int(seed), study=study)
    for split in ("dev", "test"):
        for key, value in doc[split].items():
            metrics.log_metric(f"{split}_{key}", float(value))
    adapter.metadata["test_score"] = float(doc["test"]["score"])
    adapter.metadata["source"] = doc["source"]
    return float(doc["test"]["score"])


@exec_python
@dsl.component(base_image=IMAGE, install_kfp_package=False)
def register_op(adapter: Input[Model], task: str, name_prefix: str, mlflow_uri: str, study: str,
                pipeline_run: str) -> NamedTuple("Registered", [("name", str), ("version", str)]):
    """Register the adapter as a new version of `<name_prefix><task's name>` (alias `challenger`),
    tagged with the pipeline run that made it (`pipeline_run`: the run's name in Kubeflow)."""
    from collections import namedtuple

    from components.registry.register import register_adapter

    pipeline_run = pipeline_run.split("/for-loop-")[0]  # kfp.local adds the ParallelFor branch: "<run>/for-loop-1-iteration-0"
    tags = {k: v for k, v in (("study", study), ("pipeline_run", pipeline_run)) if v}
    rv = register_adapter(adapter.path, task, name_prefix=name_prefix, tracking_uri=mlflow_uri or None,
                          tags=tags or None)
    return namedtuple("Registered", ["name", "version"])(rv.name, str(rv.version))


@exec_python
@dsl.component(base_image=IMAGE, install_kfp_package=False)
def promote_op(task: str, registered_name: str, version: str, margin: float, mlflow_uri: str, max_eval: int) -> str:
    """Move `champion` to the version this run registered when it is better by the margin (not to
    whatever `challenger` points at: another run may have registered since); returns the decision.
    A champion it cannot be compared with is kept, the version saying why (components.promote_step)."""
    from components.promote_step import promote_step

    return promote_step(task, registered_name, version, margin, mlflow_uri, max_eval)
