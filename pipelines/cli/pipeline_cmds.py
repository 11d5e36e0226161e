"""``ptv2 run`` (the main job), ``ptv2 compile``, ``ptv2 submit``."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from pipelines.cli.app import app
from pipelines.step_gpu import DEFAULT_ACCELERATOR


def _overrides(tasks: Optional[str], trials: Optional[int], epochs: Optional[int],
               pretrained_prompt: Optional[bool] = None) -> dict:
    from pipelines.cli.option_names import comma_list

    return {"tasks": comma_list(tasks, "--tasks") if tasks else None,  # "trec,,rt": refused, not run on trec and rt
            "trials_per_task": trials, "epochs": epochs, "use_pretrained_prompt": pretrained_prompt}


PRETRAINED_PROMPT_HELP = ("Start trials from the multi-task pre-trained prompt (use_pretrained_prompt); "
                          "--no-pretrained-prompt: fresh prompts, and the pre-training step skips its work.")


@app.command()
def run(
    profile: str = typer.Option("default", help="Parameter profile: default (local demo, <15 min on 2 CPUs) or large."),
    config: Optional[Path] = typer.Option(None, help="YAML file of pipeline parameters (overrides the profile)."),
    tasks: Optional[str] = typer.Option(None, help="Comma-separated tasks, e.g. trec,wnut16."),
    trials: Optional[int] = typer.Option(None, help="Trials per task."),
    epochs: Optional[int] = typer.Option(None, help="Epochs per trial (the search's resource)."),
    pretrained_prompt: Optional[bool] = typer.Option(None, "--pretrained-prompt/--no-pretrained-prompt",
                                                     help=PRETRAINED_PROMPT_HELP, show_default=False),
) -> None:
    """Run the whole pipeline locally (kfp.local): prepare, pre-train, search, register, promote."""
    from rich.console import Console
    from rich.table import Table

    from optuna_studies import settings
    from optuna_studies.study import mask_url
    from optuna_studies.tracking_setup import check_reachable
    from pipelines.local_run import registry_summary, run_local
    from pipelines.profiles import pin_run_model, resolve_params
    from pipelines.submit_auth import check_no_secrets

    params = resolve_params(profile, config, _overrides(tasks, trials, epochs, pretrained_prompt))
    pinned = pin_run_model(params)  # one commit for every step, however the hub's main moves meanwhile
    check_no_secrets(params, local=True)  # kfp.local puts the parameters on each step's command line
    check_reachable(params["mlflow_uri"] or None, given_by="the run's mlflow_uri (in --config)")  # before data and pre-training take minutes
    console = Console(stderr=True, soft_wrap=True)  # whole lines in a log or CI output, not cut at 80 columns
    console.print(f"[bold]ptv2 run[/] profile={profile} tasks={','.join(params['tasks'])} "
                  f"lengths={params['prompt_lengths']} trials/task={params['trials_per_task']} epochs={params['epochs']}"
                  + ("" if params["use_pretrained_prompt"] else " pretrained prompt=off (pre-training skipped)"))
    if pinned:
        console.print(pinned, markup=False, highlight=False)
    tracking = settings.mlflow_tracking_uri(params["mlflow_uri"] or None)
    console.print(f"stores: MLflow {mask_url(tracking)}, "
                  f"Optuna {mask_url(settings.optuna_storage(params['optuna_storage'] or None))}", markup=False)
    info = run_local(params)
    table = Table(title=f"ptv2 run finished in {info['seconds'] / 60:.1f} min")
    for col in ("task", "best prompt len", "lr", "test metric", "registered", "aliases"):
        table.add_column(col)
    summary = registry_summary(params, info["pipeline_run"])
    for r in summary:
        lr = r.get("lr", "?")
        lr = f"{float(lr):.2g}" if lr not in ("?", "") else lr
        test = r.get("test", "?")
        test = f"{r.get('metric', '')} {float(test):.3f}" if test not in ("?", "") else "?"
        table.add_row(r["task"], str(r.get("prompt_len", "-")), lr, test, f"{r['model']} v{r['version']}", r.get("aliases", "-"))
    Console(width=max(110, Console().width)).print(table)
    decided = [r for r in summary if r.get("decision")]
    if decided:
        typer.echo("Promotion (paired bootstrap on the test split, see docs/registry.md):")
        for r in decided:
            typer.echo(f"  {r['model']} v{r['version']}: {r['decision']}: {r['reason']}")
    typer.echo(f"Full log: {info['log']}")
    typer.echo(review_line(tracking))


def review_line(tracking: str, what: str = "trials and versions") -> str:
    """Where to review ``what``: the command that serves a local store's UI (the default store by
    its ``PTV2_HOME``, another by its URI), or the tracking server's own UI (``ptv2 ui`` refuses a
    server), its password masked."""
    from optuna_studies import settings
    from optuna_studies.study import mask_url

    if not settings.is_local_store(tracking):
        return f"Review {what} in MLflow:  {mask_url(tracking)}"
    home = settings.home()
    if tracking == f"sqlite:///{home / 'mlflow.db'}":
        return f"Review {what} in MLflow:  PTV2_HOME={home} {_this_ptv2()} ui"
    return f"Review {what} in MLflow:  MLFLOW_TRACKING_URI={mask_url(tracking)} {_this_ptv2()} ui"


def _this_ptv2() -> str:
    """The ptv2 command of this environment, as a path that works from the current folder."""
    exe = Path(sys.executable).parent / "ptv2"
    if not exe.is_file():
        return "ptv2"
    try:
        return str(exe.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(exe.absolute())


# `ptv2 compile` and `ptv2 submit` take the same two options, checked by pipelines.step_gpu.step_gpu_choice
STEP_GPUS_OPTION = typer.Option(0, "--step-gpus", help="GPUs for pre-training, the final adapter and promotion's "
                                "scoring: 0 (CPU image, no GPU) or 1 (the CUDA image, one accelerator, "
                                "PTV2_DEVICE=cuda). The search's trials take gpus_per_trial on Ray either way.")
ACCELERATOR_OPTION = typer.Option(DEFAULT_ACCELERATOR, "--accelerator", help="With --step-gpus 1: the Kubernetes "
                                  "resource the steps request, e.g. nvidia.com/gpu or a MIG slice "
                                  "nvidia.com/mig-1g.10gb.")


@app.command("compile")
def compile_(
    out: Path = typer.Option(Path("ptv2-pipeline.yaml"), help="Where to write the pipeline YAML."),
    step_gpus: int = STEP_GPUS_OPTION,
    accelerator: str = ACCELERATOR_OPTION,
) -> None:
    """Compile the pipeline for Kubeflow Pipelines (upload it in the UI, or use `ptv2 submit`)."""
    from pipelines.compile import compile_pipeline

    typer.echo(f"wrote {compile_pipeline(out, step_gpus=step_gpus, accelerator=accelerator)}")


@app.command()
def submit(
    host: str = typer.Option(..., help="Kubeflow Pipelines endpoint, e.g. https://kubeflow.example.com/pipeline. "
                             "Credentials come from the environment: PTV2_KFP_TOKEN (bearer token), PTV2_KFP_COOKIE "
                             "(session cookie, name=value) or KF_PIPELINES_SA_TOKEN_PATH (in a cluster)."),
    profile: str = typer.Option("large", help="Parameter profile: large (all tasks, full data) or default."),
    config: Optional[Path] = typer.Option(None, help="YAML file of pipeline parameters (overrides the profile)."),
    tasks: Optional[str] = typer.Option(None, help="Comma-separated tasks; a task YAML path is read in the cluster."),
    trials: Optional[int] = typer.Option(None, help="Trials per task."),
    epochs: Optional[int] = typer.Option(None, help="Epochs per trial (the search's resource)."),
    pretrained_prompt: Optional[bool] = typer.Option(None, "--pretrained-prompt/--no-pretrained-prompt",
                                                     help=PRETRAINED_PROMPT_HELP, show_default=False),
    experiment: str = typer.Option("ptv2", help="Kubeflow experiment to file the run under (created if missing)."),
    run_name: Optional[str] = typer.Option(None, help="Name of the run in the Kubeflow UI (default: pipeline name and time)."),
    namespace: Optional[str] = typer.Option(None, help="Kubeflow profile namespace (multi-user installs)."),
    service_account: str = typer.Option("ptv2-pipeline", help="Service account the run's pods use (k8s/base/rbac.yaml); "
                                        "empty: the namespace's default."),
    step_gpus: int = STEP_GPUS_OPTION,
    accelerator: str = ACCELERATOR_OPTION,
) -> None:
    """Start a pipeline run on a Kubeflow Pipelines cluster; prints its id and page as JSON."""
    from pipelines.profiles import resolve_params
    from pipelines.step_gpu import step_gpu_choice
    from pipelines.submit import config_endpoints, reach, submit as submit_run

    # the run's parameters first, as every command checks its input before any connection (a mistyped
    # task is said even while the endpoint is down; about 2 s of kfp and task-code imports), then the
    # endpoint: its secrets, then one health request
    params = resolve_params(profile, config, _overrides(tasks, trials, epochs, pretrained_prompt), local=False)
    step_gpu_choice(step_gpus, accelerator)  # the GPU options too (and the CUDA image they need)
    endpoint = reach(host, namespace, config_endpoints(config))
    typer.echo(json.dumps(submit_run(host, params, experiment=experiment, run_name=run_name, namespace=namespace,
                                     service_account=service_account, endpoint=endpoint, step_gpus=step_gpus,
                                     accelerator=accelerator)))
