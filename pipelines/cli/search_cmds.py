"""``ptv2 search``: per-task search of prompt length × learning rate (Optuna TPE on Ray Tune)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from pipelines.cli.app import app

if TYPE_CHECKING:
    from optuna_studies.finish import SearchResult


@app.command()
def search(
    task: str = typer.Option(..., help="Packaged task (trec, rt, wnut16, bbc), a task YAML file, or hub:<name>."),
    out: Path = typer.Option(..., help="Folder for best.json, adapter/ and trials.csv (written when the search ends)."),
    model: str = typer.Option("minilm", help="Base model: 'minilm' (bundled), a folder, or a hub name (org/name, or "
                                                 "org/name@REVISION: a commit sha, tag or branch), pinned to one "
                                                 "commit for every trial (a --resume keeps its study's)."),
    trials: Optional[int] = typer.Option(None, help="Number of trials (default: the search space's)."),
    space: Optional[Path] = typer.Option(None, help="Search space YAML (default: the task's packaged one)."),
    init: Optional[Path] = typer.Option(None, help="Start every trial from this pre-trained prompt folder."),
    storage: Optional[str] = typer.Option(None, help="Optuna study storage URL (default: PTV2_OPTUNA_STORAGE or "
                                                     "sqlite in PTV2_HOME); PostgreSQL for a cluster."),
    study_name: Optional[str] = typer.Option(None, help="Study name (default: derived from task, model and --out)."),
    resume: bool = typer.Option(False, help="Continue the stopped study of this --out; finished trials are kept."),
    max_train: Optional[int] = typer.Option(None, help="Use at most N training examples per trial."),
    max_eval: Optional[int] = typer.Option(None, help="Use at most N dev and N test examples."),
    epochs: Optional[int] = typer.Option(None, help="Epochs per trial, the resource ASHA prunes on (default: the space's)."),
    cpus_per_trial: float = typer.Option(1.0, help="CPUs reserved for each trial."),
    gpus_per_trial: float = typer.Option(0.0, help="GPUs reserved for each trial (fractions share a GPU)."),
    concurrency: int = typer.Option(2, help="Trials running at once."),
    max_failures: int = typer.Option(2, help="Retries of a trial whose worker fails (a diverging trial is not retried)."),
    ray_address: Optional[str] = typer.Option(None, help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)."),
    ray_cpus: Optional[int] = typer.Option(None, help="CPUs of the local Ray (default: all)."),
    shared_dir: Optional[Path] = typer.Option(None, help="A folder every node of a multi-machine Ray cluster mounts "
                                              "at the same path (default: PTV2_SHARED_DIR); the search's work, the "
                                              "task file and --init must be in it."),
    mlflow_uri: Optional[str] = typer.Option(None, help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or sqlite)."),
    seed: int = typer.Option(0, help="Seed of the data splits and of every trial."),
    overwrite: bool = typer.Option(False, help="Replace a search output already in --out (other files there are "
                                   "kept). Refused on the finished output of the same study, which keeps its "
                                   "trials: start a new one with --study-name NAME or another --out."),
) -> None:
    """Search the best prompt length and learning rate for one task; keep every trial."""
    from optuna_studies.search import run_search
    from pipelines.cli.common import bars_on_a_terminal_only

    bars_on_a_terminal_only()  # the best adapter's scoring (datasets' encode bars) in a log or pipe

    def echo(line: str) -> None:
        typer.echo(line, err=True)

    # a Ctrl-C ends it with Ptv2Interrupted: its line says how many trials finished and how to go on
    result = run_search(
        task, model, out, trials=trials, space=space, storage=storage, init=init, max_train=max_train,
        max_eval=max_eval, epochs=epochs, concurrency=concurrency, cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial, max_failures=max_failures, resume=resume, overwrite=overwrite,
        mlflow_uri=mlflow_uri, ray_address=ray_address, ray_cpus=ray_cpus, study_name=study_name, seed=seed,
        shared_dir=shared_dir, echo=echo,
    )
    typer.echo(best_line(result))
    typer.echo(f"register it: ptv2 register --task {task} --adapter {result.adapter_dir}")


def best_line(result: SearchResult) -> str:
    """The search's closing line: the best trial's settings and scores, the trials, where it is written.
    The score is named by the task's metric, as the search's pictures name it ("dev accuracy"): the
    objective and the task from the result's best.json; "dev score" where the metric is not known."""
    import json

    from optuna_studies.output import BEST
    from optuna_studies.plan import task_metric
    from ptv2_core.metric_names import objective_name
    from ptv2_core.wording import count_of

    try:
        doc = json.loads((result.out_dir / BEST).read_text())
        score = objective_name(doc["metric"], task_metric(doc["task"]))
    except (OSError, ValueError, KeyError, TypeError):  # the result is written: a name is no reason to fail
        score = "dev score"
    cfg = result.best_config
    test = f", test {result.test['score']:.4f}" if result.test else ""
    return (f"best: prompt_len {cfg['prompt_len']}, lr {cfg['lr']:.3g}, {score} {result.best_score:.4f}{test} "
            f"({count_of(len(result.trials), 'trial')}, study '{result.study_name}'); written to {result.out_dir}")
