"""``ptv2 pretrain``: multi-task prompt pre-training with nested prompt lengths."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from pipelines.cli.app import app


@app.command()
def pretrain(
    tasks: str = typer.Option(..., help="Comma-separated tasks (packaged names, task YAML files, hub:<name>)."),
    out: Path = typer.Option(..., help="Folder for prompt.safetensors, prompt_config.json and checkpoints/."),
    model: str = typer.Option("minilm", help="Base model: 'minilm' (bundled), a folder, or a hub name (org/name, or "
                                                 "org/name@REVISION: a commit sha, tag or branch)."),
    max_prompt_len: int = typer.Option(64, help="Length of the shared prompt (the longest usable slice)."),
    lengths: Optional[str] = typer.Option(
        None, help="Candidate prompt lengths sampled per step (nested prompts); the longest must be --max-prompt-len. "
                   "Default: 4,8,16,32,64 below --max-prompt-len, and --max-prompt-len."),
    nested: bool = typer.Option(True, help="Sample a length per step; --no-nested always uses --max-prompt-len."),
    temperature: float = typer.Option(2.0, help="Task mixing: sample tasks ~ size^(1/T) (1: by size; large: uniform)."),
    lr: float = typer.Option(1e-2, help="Peak learning rate (AdamW, warmup then linear decay)."),
    epochs: int = typer.Option(3, help="Epochs (one epoch = as many batches as all tasks' training rows)."),
    batch_size: int = typer.Option(32, help="Training examples per update."),
    eval_batch_size: int = typer.Option(128, help="Dev examples scored at a time."),
    max_train: Optional[int] = typer.Option(None, help="Use at most N training examples per task."),
    max_eval: Optional[int] = typer.Option(None, help="Use at most N dev examples per task."),
    reparam: bool = typer.Option(False, help="MLP reparameterization (prefix-tuning) instead of a plain prefix."),
    pooling: Optional[str] = typer.Option(None, help="Sequence pooling: cls, pooler, mean, last (default per model family)."),
    seed: int = typer.Option(0, help="Seed of data splits and training (per-task training must reuse it)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1 ..."),
    bf16: bool = typer.Option(True, help="On CUDA, run the frozen base model under bf16 autocast (the prompt, head "
                                         "and saved weights stay fp32); --no-bf16: fp32 throughout (GPUs before "
                                         "Ampere only emulate bf16). No effect on CPU."),
    overwrite: bool = typer.Option(False, help="Start afresh: the checkpoints in --out go now, a finished prompt "
                                               "there once the new one is written (stopped before that, these "
                                               "settings without --overwrite resume the new run)."),
    quiet: bool = typer.Option(False, help="No progress bars and no per-epoch lines: only the result."),
    mlflow_uri: Optional[str] = typer.Option(None, help="MLflow tracking URI the finished run is logged to "
                                                        "(default: MLFLOW_TRACKING_URI or sqlite in PTV2_HOME)."),
    track: bool = typer.Option(True, help="Log the finished run to MLflow (experiment ptv2-pretrain); "
                                          "--no-track logs nothing."),
) -> None:
    """Pre-train one deep prompt on several tasks; every leading slice of it is a usable prompt.

    Checkpoints go to OUT/checkpoints/ after every epoch; running the same command again on the
    same --out resumes from the newest one. The prompt itself (prompt.safetensors,
    prompt_config.json) appears only when the run completes, and is then logged to MLflow as one
    run (a resumed run once, when it completes). The same command again on a finished prompt
    trains nothing: it logs the prompt's run if that failed before, and says so.
    """
    from ptv2_core.multitask import PretrainConfig, default_lengths, parse_lengths
    from ptv2_core.backbone import absolute_model_ref
    from ptv2_core.tasks import absolute_ref
    from ptv2_core.multitask import pretrain as run_pretrain
    from pipelines.cli.common import bars_on_a_terminal_only

    from pipelines.cli.option_names import comma_list, options_named

    bars_on_a_terminal_only()
    with options_named():  # a bad setting is named as the option typed (--temperature, not "mixing temperature")
        refs = tuple(absolute_ref(t) for t in comma_list(tasks, "--tasks"))  # recorded: absolute paths
        # the prompt records its base model, which eval --pretrained loads: a relative folder names none from elsewhere
        cfg = PretrainConfig(tasks=refs, model=absolute_model_ref(model), max_prompt_len=max_prompt_len,
                             lengths=tuple(parse_lengths(lengths) if lengths is not None
                                           else default_lengths(max_prompt_len)),
                             nested=nested, temperature=temperature, lr=lr, epochs=epochs, batch_size=batch_size,
                             eval_batch_size=eval_batch_size, max_train=max_train, max_eval=max_eval, reparam=reparam,
                             pooling=pooling, seed=seed, device=device, bf16=bf16, progress=not quiet)
        cfg.check()
    from ptv2_core.build import check_model_pooling

    check_model_pooling(cfg.model, pooling)  # 'pooler' on a model without one: before the store or any data
    store = _check_tracking(track, mlflow_uri, cfg)
    if not overwrite:
        from ptv2_core.multitask.pretrain import finished_prompt

        config = finished_prompt(cfg, out)
        if config is not None:
            _finished_already(out, config["dev"], mlflow_uri, store)
            return
    before = _prompt_file(out)
    try:
        result = run_pretrain(cfg, out, overwrite=overwrite)
    except KeyboardInterrupt:  # Ctrl-C: say what is kept
        from ptv2_core.errors import Ptv2Interrupted
        from ptv2_core.multitask.checkpoint import checkpoint_epochs

        if _prompt_file(out) not in (None, before):  # the run wrote its prompt, and the Ctrl-C came as it returned
            raise _kept(out, store, overwrite) from None
        folder = Path(out) / "checkpoints"
        done = checkpoint_epochs(folder)
        again = ("run the same command again without --overwrite to resume from it (with it, it starts afresh)"
                 if overwrite else "run the same command again to resume from it")
        raise Ptv2Interrupted(f"interrupted; epoch {max(done)} of {epochs} is checkpointed in {folder}: {again}"
                              if done else "interrupted before the first epoch's checkpoint: nothing to resume") from None
    try:  # the prompt is written: a Ctrl-C from here on says so (it was a plain "interrupted")
        if store is None:  # --no-track: the command's work is done
            from pipelines.cli.committed import no_interrupts_from_here

            no_interrupts_from_here()
        _echo_scores(result.dev)
        typer.echo(f"pre-trained prompt written to {out}" + (f" (resumed after epoch {result.resumed_from})" if result.resumed_from else ""))
        typer.echo(f"dev score per epoch at each length, as a picture: {Path(out) / 'dev_curves.png'}")
        if store is not None:
            _log_run(out, mlflow_uri, store, overwrite=overwrite)
    except KeyboardInterrupt:
        raise _kept(out, store, overwrite) from None


def _prompt_file(out: Path) -> tuple | None:
    """Which ``prompt_config.json`` is in ``out`` (None: none): the run writes a new file, so that
    one that differs after a Ctrl-C is this run's finished prompt. (Its content may equal a
    previous one's, and a finished prompt of these settings may be an earlier run's, which an
    --overwrite run stopped before it was replaced.)"""
    from ptv2_core.multitask.pretrained import CONFIG

    try:
        st = (Path(out) / CONFIG).stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns


def _kept(out: Path, store: Optional[str], overwrite: bool):
    """The Ptv2Interrupted for a Ctrl-C once the prompt is written, before its run is logged."""
    from ptv2_core.errors import Ptv2Interrupted

    if store is None:  # --no-track
        return Ptv2Interrupted(f"interrupted; the pre-trained prompt in {out} is complete and kept")
    kept, again = _not_logged(out, overwrite)
    return Ptv2Interrupted(f"interrupted; {kept}: {again}")


def _not_logged(out: Path, overwrite: bool) -> tuple[str, str]:
    """``(what is kept, how to log it)`` when the prompt is written but its run is not logged: the
    same command finds the finished prompt and logs it, unless --overwrite makes it train anew."""
    return (f"the pre-trained prompt in {out} is complete and kept, but its run is not in MLflow",
            f"run the same command again{' without --overwrite' if overwrite else ''} to log it (it is not trained "
            "again)")


def _echo_scores(dev: dict) -> None:
    summary = {name: {n: round(m["score"], 4) for n, m in per_len.items()} for name, per_len in dev.items()}
    typer.echo(json.dumps({"dev_score_by_length": summary}, indent=2))


def _finished_already(out: Path, dev: dict, mlflow_uri: Optional[str], store: Optional[str]) -> None:
    """The same command again on the finished prompt in ``out``: nothing is trained; its run is
    logged when the folder records none in this store (logging failed after pre-training, or
    another store is named), else the run logged already is named."""
    from components.pretrain_tracking import logged_run
    from ptv2_core.adapter import check_writable
    from ptv2_core.multitask.pretrain import out_lock

    _echo_scores(dev)
    if store is None:
        typer.echo(f"the pre-trained prompt in {out} is finished already (not trained again; --no-track: not logged)",
                   err=True)
        return
    with out_lock(out):  # not while an --overwrite run replaces the prompt
        run_id = logged_run(out, store)
        if run_id is not None:
            typer.echo(f"the pre-trained prompt in {out} is finished and logged already (run {run_id} in the store "
                       f"{store}): nothing to do", err=True)
            _echo_run(run_id, mlflow_uri)
            return
        check_writable(out)  # where the run is recorded once logged: checked before logging it
        typer.echo(f"the pre-trained prompt in {out} is finished already (not trained again): logging its run to "
                   "MLflow", err=True)
        _log_run(out, mlflow_uri, store)


def _echo_run(run_id: str, mlflow_uri: Optional[str]) -> None:
    from components.pretrain_tracking import EXPERIMENT
    from optuna_studies import settings
    from pipelines.cli.pipeline_cmds import review_line

    typer.echo(f"MLflow run {run_id} in experiment '{EXPERIMENT}'")
    typer.echo(review_line(settings.mlflow_tracking_uri(mlflow_uri), "the run"))


def _check_tracking(track: bool, mlflow_uri: Optional[str], cfg) -> Optional[str]:
    """The store the finished run will be logged to (None: --no-track), checked before hours of
    pre-training (the settings are checked before this, so that a bad one is named before the store)."""
    from components.pretrain_tracking import check_store
    from ptv2_core.errors import Ptv2Error

    if not track:
        if mlflow_uri is not None:
            raise Ptv2Error("--mlflow-uri names a store to log to, and --no-track logs nothing: give one of them")
        return None
    return check_store(mlflow_uri)


def _log_run(out: Path, mlflow_uri: Optional[str], store: str, *, overwrite: bool = False) -> None:
    """Log the finished run, record it in ``out`` and say where to review it. A store that fails
    now (after the pre-check) ends the command with an error line and exit 2, as asked-for
    tracking that did not happen must not pass unnoticed in a script; the prompt, written
    already, is kept, and the same command again (without ``--overwrite``) logs it."""
    from components.pretrain_tracking import log_pretraining, record_logged
    from components.registry.store import describe
    from pipelines.cli.committed import no_interrupts_from_here
    from ptv2_core.errors import Ptv2Error, Ptv2Interrupted

    try:
        run_id = log_pretraining(out, mlflow_uri)
        no_interrupts_from_here()  # the run is in the store, FINISHED: a signal now would only log it twice
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: its run is marked FAILED; say what is kept
        kept, again = _not_logged(out, overwrite)
        raise Ptv2Interrupted(f"interrupted; {kept}: {again}") from None
    except Ptv2Error as e:
        reason = str(e)
    except Exception as e:  # noqa: BLE001 (MLflow's and its database's errors: named, not a traceback)
        reason = describe(e)
    else:
        record_logged(out, store, run_id)
        _echo_run(run_id, mlflow_uri)
        return
    kept, again = _not_logged(out, overwrite)
    raise Ptv2Error(f"{kept}: logging it to the store {store} failed: {reason}; {again}")
