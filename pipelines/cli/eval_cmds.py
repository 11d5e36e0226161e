"""``ptv2 eval``: score an adapter, a registered version or a pre-trained prompt; prints JSON."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from pipelines.cli.app import app
from pipelines.cli.common import bars_on_a_terminal_only, check_batch_size, registered_version
from pipelines.cli.option_names import options_named

BF16_HELP = ("On CUDA, bf16 autocast (--bf16) or fp32 (--no-bf16); default: as the adapter was trained (its "
             "train_config's bf16). No effect on CPU.")


@app.command("eval")
def eval_(
    adapter: Optional[Path] = typer.Option(None, help="Adapter folder."),
    model: Optional[str] = typer.Option(None, help="A registered version instead of a folder: models:/NAME@ALIAS or "
                                        "models:/NAME/VERSION (store: MLFLOW_TRACKING_URI or the local default)."),
    task: Optional[str] = typer.Option(None, help="Task to score on (default: the adapter's own task)."),
    max_eval: Optional[int] = typer.Option(None, help="Use at most N dev and N test examples."),
    seed: Optional[int] = typer.Option(None, help="Seed of the data splits (must match training's to score its test "
                                       "split; default: the split seed the adapter was trained with, or the "
                                       "pre-training seed with --pretrained)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1 ..."),
    batch_size: int = typer.Option(128, help="Examples scored at a time."),
    prompt_len: Optional[int] = typer.Option(None, help="Use only the first N prompt positions."),
    pretrained: Optional[Path] = typer.Option(None, help="A pre-trained prompt folder (`ptv2 pretrain`) instead of an "
                                              "adapter: every pre-training task's dev score at each length."),
    lengths: Optional[str] = typer.Option(None, help="With --pretrained: comma-separated lengths (default: its own)."),
    bf16: Optional[bool] = typer.Option(None, "--bf16/--no-bf16", help=BF16_HELP, show_default=False),
) -> None:
    """Score an adapter on a task's dev and test splits, or a pre-trained prompt at each length; prints JSON.

    A pre-trained prompt is scored on the dev split of each of its tasks, with no further training."""
    from ptv2_core.device import pick_device
    from ptv2_core.errors import Ptv2Error
    from ptv2_core.settings import check_seed

    if sum(x is not None for x in (adapter, model, pretrained)) != 1:
        raise Ptv2Error("give exactly one of --adapter, --model and --pretrained")
    bars_on_a_terminal_only()
    if prompt_len is not None and prompt_len <= 0:
        raise Ptv2Error(f"--prompt-len must be a positive integer, got {prompt_len}")
    check_batch_size(batch_size)
    if max_eval is not None and max_eval <= 0:  # before anything loads, in the words of train's check
        raise Ptv2Error(f"--max-eval must be a positive integer (or left out: all rows), got {max_eval}")
    if seed is not None:
        check_seed(seed, "--seed")
    if pretrained is not None:
        if bf16 is not None:
            raise Ptv2Error("--bf16/--no-bf16 applies to an adapter or a registered version, not --pretrained "
                            "(a pre-trained prompt is scored in the precision it was pre-trained in)")
        from ptv2_core.multitask import evaluate_pretrained, parse_lengths, read_pretrained_config
        from ptv2_core.multitask.evaluate import scored_lengths

        if task is not None:
            raise Ptv2Error("--task does not apply to --pretrained (it scores every pre-training task)")
        if lengths is not None and prompt_len is not None:
            raise Ptv2Error("give --lengths or --prompt-len, not both")
        config = read_pretrained_config(pretrained)  # a bad folder fails before the model loads
        with options_named():
            wanted = parse_lengths(lengths) if lengths is not None else ([prompt_len] if prompt_len is not None else None)
        scored_lengths(config, wanted)  # bad lengths: the error line alone, no notes before it
        for note in _pretrained_notes(config.get("pretrain_config") or {}, seed, max_eval):
            typer.echo(note, err=True)
        typer.echo(json.dumps(evaluate_pretrained(pretrained, wanted, seed=seed, max_eval=max_eval,
                                                  batch_size=batch_size, device=pick_device(device)), indent=2))
        return
    if lengths is not None:
        raise Ptv2Error("--lengths applies to --pretrained only (use --prompt-len with an adapter)")
    from ptv2_core.adapter import load_adapter, split_seed_of
    from ptv2_core.report import evaluate_adapter

    if model is None:
        loaded = load_adapter(adapter, device=pick_device(device))
    else:
        version = registered_version(model, device)
        loaded = version.adapter
    scored_on = task if task is not None else _own_task(loaded, adapter, None if model is None else version)
    own = loaded.model.prompt_config.prompt_len
    if prompt_len is not None and prompt_len > own:
        raise Ptv2Error(f"--prompt-len {prompt_len} is longer than the adapter's prompt ({own})")
    trained_seed = split_seed_of(loaded.config)
    same_task = task is None or _same_task(task, loaded)  # the notes below are about its own splits
    if seed is None:  # the adapter's own splits: another seed would score it on rows it was trained on
        seed = trained_seed
    elif trained_seed is not None and seed != trained_seed and same_task:
        typer.echo(f"note: it was trained on the splits of seed {trained_seed}; with --seed {seed} its dev and test rows "
                   "may include rows it was trained on, so these scores can be too high", err=True)
    trained_cfg = (loaded.config.get("extra") or {}).get("train_config") or {}
    trained_on = trained_cfg.get("max_eval")
    if trained_on and same_task and "subset" not in trained_cfg:  # trained before the rule was recorded
        typer.echo(f"note: its metrics.json scored a random subset of {trained_on} dev and test rows (--max-eval "
                   f"{trained_on}, as ptv2 drew it before 2026-12-06); subsets are stratified by label now, so no "
                   "--max-eval reproduces those numbers exactly", err=True)
    elif max_eval is None and trained_on and same_task:
        typer.echo(f"note: its metrics.json scored at most {trained_on} dev and test rows (--max-eval {trained_on} "
                   f"when trained); this scores every row. Pass --max-eval {trained_on} to reproduce those numbers.",
                   err=True)
    result = evaluate_adapter(loaded, scored_on, seed=0 if seed is None else seed, max_eval=max_eval, prompt_len=prompt_len,
                              batch_size=batch_size, progress=True, bf16=bf16)
    typer.echo(json.dumps(result | ({"prompt_len": prompt_len} if prompt_len is not None else {}), indent=2))


def _own_task(loaded, adapter: Path | None, version) -> str:
    """The task ``eval`` scores on without ``--task``: a registered version's by its ``task_ref`` tag
    (what registration loaded), an adapter folder's as training named it (``own_task``). A task file
    not found here is an error naming it, not the packaged task of the same name."""
    from ptv2_core.adapter import own_task, recorded_metrics, task_ref_found
    from ptv2_core.errors import Ptv2Error

    ref = (version.tags or {}).get("task_ref") if version is not None else None
    if ref is None:  # an adapter folder, or a version registered before task_ref was tagged
        return own_task(loaded.config, recorded_metrics(adapter) if adapter is not None else None)
    if not task_ref_found(ref):
        raise Ptv2Error(f"{version.name} version {version.version} was registered on task '{ref}', which is not "
                        "found here: pass --task PATH (its task YAML, or the packaged task if that is what it was)")
    return ref


def _pretrained_notes(pretrain_config: dict, seed: int | None, max_eval: int | None) -> list[str]:
    """What ``eval --pretrained`` says before its scores, as ``eval --adapter`` does: another --seed
    than pre-training's puts rows the prompt was trained on into the dev splits, and a prompt
    pre-trained with --max-eval recorded scores on that many dev rows, which no --max-eval now
    would reproduce if it is left out."""
    notes = []
    pre_seed, pre_eval = pretrain_config.get("seed"), pretrain_config.get("max_eval")
    if seed is not None and pre_seed is not None and seed != pre_seed:
        notes.append(f"note: it was pre-trained on the splits of seed {pre_seed}; with --seed {seed} its tasks' dev rows "
                     "may include rows it was trained on, so these scores can be too high")
    if max_eval is None and pre_eval:
        notes.append(f"note: its prompt_config.json scored at most {pre_eval} dev rows per task (--max-eval {pre_eval} "
                     f"when pre-trained); this scores every row. Pass --max-eval {pre_eval} to reproduce those numbers.")
    return notes


def _same_task(task: str, loaded) -> bool:
    """Whether ``--task`` names the adapter's own task: its packaged name, or the task file it was
    trained on by any path to it (a relative one, as the user typed it)."""
    from ptv2_core.tasks import absolute_ref

    recorded = ((loaded.config.get("extra") or {}).get("train_config") or {}).get("task")
    return task == loaded.spec.name or (recorded is not None and absolute_ref(task) == absolute_ref(str(recorded)))
