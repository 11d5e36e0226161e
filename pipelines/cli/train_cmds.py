"""``ptv2 train``: train a P-Tuning v2 adapter on one task and write it with its metrics."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Optional

import typer

from pipelines.cli.app import app
from pipelines.cli.committed import no_interrupts_from_here
from pipelines.cli.common import bars_on_a_terminal_only
from pipelines.cli.option_names import options_named


@app.command()
def train(
    task: str = typer.Option(..., help="Packaged task (trec, rt, wnut16, bbc), a task YAML file, or hub:<name>."),
    out: Path = typer.Option(..., help="Folder for adapter.safetensors, adapter_config.json, metrics.json."),
    model: str = typer.Option("minilm", help="Base model: 'minilm' (bundled), a folder, or a hub name (org/name, or "
                                                 "org/name@REVISION: a commit sha, tag or branch)."),
    prompt_len: int = typer.Option(16, help="Prefix length (virtual tokens per layer)."),
    lr: float = typer.Option(1e-2, help="Peak learning rate (AdamW, warmup then linear decay)."),
    epochs: int = typer.Option(3, help="Training epochs (best dev epoch is kept)."),
    batch_size: int = typer.Option(32, help="Training examples per update."),
    eval_batch_size: int = typer.Option(128, help="Dev and test examples scored at a time."),
    max_train: Optional[int] = typer.Option(None, help="Use at most N training examples."),
    max_eval: Optional[int] = typer.Option(None, help="Use at most N dev and N test examples."),
    reparam: bool = typer.Option(False, help="MLP reparameterization (prefix-tuning) instead of P-Tuning v2's plain prefix."),
    pooling: Optional[str] = typer.Option(None, help="Sequence pooling: cls, pooler, mean, last (default per model family)."),
    patience: Optional[int] = typer.Option(None, help="Stop after N epochs without dev improvement."),
    group_by_length: bool = typer.Option(False, help="Random batches of rows of similar length: less padding, "
                                         "faster epochs (see docs/benchmarks.md)."),
    seed: int = typer.Option(0, help="Seed of initialisation, dropout and batch order, and of the data splits "
                                "unless --data-seed is given."),
    data_seed: Optional[int] = typer.Option(None, help="Seed of the train/dev/test splits and row subsets (default: "
                                            "--seed). Keep it fixed and vary --seed to measure training noise "
                                            "on the same dev and test rows."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1 ..."),
    bf16: bool = typer.Option(True, help="On CUDA, run the frozen base model under bf16 autocast (the prompt, head "
                                         "and saved weights stay fp32); --no-bf16: fp32 throughout (GPUs before "
                                         "Ampere only emulate bf16). No effect on CPU."),
    overwrite: bool = typer.Option(False, help="Replace an adapter already in --out."),
    quiet: bool = typer.Option(False, help="No progress bars and no per-epoch lines: only the result."),
    init: Optional[Path] = typer.Option(None, help="Start from a pre-trained prompt folder (`ptv2 pretrain`): its first "
                                        "--prompt-len positions, and this task's head if it took part."),
) -> None:
    """Train a P-Tuning v2 adapter on one task and write it with its metrics."""
    from functools import partial

    from components.held_signals import HeldSignals
    from ptv2_core import busy_lock
    from ptv2_core.adapter import check_out_dir, save_adapter
    from ptv2_core.backbone import absolute_model_ref
    from ptv2_core.build import check_model_pooling
    from ptv2_core.errors import Ptv2Error
    from ptv2_core.tasks import absolute_ref
    from ptv2_core.train import TrainConfig
    from ptv2_core.train import train as run_train
    from ptv2_core.report import metrics_document

    check_out_dir(out, overwrite)
    held_before = out.is_dir() and any(out.iterdir())  # only with --overwrite: kept as it is by a Ctrl-C
    try:  # a Ctrl-C or SIGTERM until the adapter is in place leaves --out untouched: say so
        bars_on_a_terminal_only()
        # one process per output folder: a second `ptv2 train --out` to the same folder would train for
        # nothing and then replace the first one's adapter, even without --overwrite
        with busy_lock.output_lock(out, "train",
                                   f"another `ptv2 train` is writing to '{out}': wait for it to end, or stop it first"):
            check_out_dir(out, overwrite)  # again: a run that held the lock before this one may have written there
            task = absolute_ref(task)  # recorded in the adapter: a relative path fails from another folder
            model = absolute_model_ref(model)  # likewise
            cfg = TrainConfig(task=task, model=model, prompt_len=prompt_len, lr=lr, epochs=epochs, batch_size=batch_size,
                              eval_batch_size=eval_batch_size, max_train=max_train, max_eval=max_eval, reparam=reparam,
                              pooling=pooling, patience=patience, group_by_length=group_by_length, seed=seed,
                              data_seed=data_seed, device=device, bf16=bf16, progress=not quiet)
            with options_named():  # a bad setting is named as the option typed (--lr, not "learning rate")
                cfg.check_training()
            check_model_pooling(model, pooling)  # 'pooler' on a model without one: before any data or weights load
            init_fn = None
            if init is not None:
                from ptv2_core.backbone import load_config
                from ptv2_core.multitask import check_init, init_from_pretrained, read_pretrained_config
                from ptv2_core.multitask.init import check_init_base

                # a bad folder, or a --prompt-len, --seed or --reparam it cannot start, fails before any data or weights load
                pre_config = read_pretrained_config(init)
                check_init(pre_config, init, prompt_len, task=task, seed=cfg.split_seed,
                           reparam=reparam, reparam_hidden=cfg.reparam_hidden)
                check_init_base(pre_config, init, model, load_config(model))  # another base's shape: from the configs
                init_fn = partial(init_from_pretrained, pretrained_dir=init, task=task, seed=cfg.split_seed,
                                  note=True)  # says when the head starts fresh
            # the prompt folder by its absolute path, as the task and model are recorded, and its weights' digest
            # (taken before they load: a prompt pre-trained there again is another)
            from ptv2_core.multitask.pretrained import started_from as recorded_prompt

            started_from = recorded_prompt(init)
            result = run_train(cfg, init=init_fn)
            # when it ran: in metrics.json only (adapter_config.json's bytes are the same for the same seed)
            doc = metrics_document(result, cfg) | started_from | {"started": result.started, "finished": result.finished}
            try:  # and once more: nothing else may have written there while this run trained
                check_out_dir(out, overwrite)
            except Ptv2Error as e:
                raise Ptv2Error(f"{e}; it was written into while this run trained: the new adapter is not saved") from None
            # a Ctrl-C or SIGTERM while saving waits for the save: it would otherwise come once the adapter
            # is renamed into place (exit 130 for work done) or, with --overwrite, between its files
            held = HeldSignals()
            try:
                save_adapter(result.model, out, result.spec, model, result.base_fingerprint,
                             extra={"metrics_file": "metrics.json", "train_config": cfg.to_dict()}
                             | started_from,
                             files={"metrics.json": json.dumps(doc, indent=2) + "\n"})
            except BaseException:
                with contextlib.suppress(KeyboardInterrupt):  # the save's own error is the one to tell
                    held.release()
                raise
            # the adapter is in place: a signal now (or one held above) would only make a script train again
            no_interrupts_from_here()
    except KeyboardInterrupt:
        from ptv2_core.errors import Ptv2Interrupted

        kept = f"no new adapter was written ({out} is as it was)" if held_before else f"no adapter was written to {out}"
        # --overwrite or not, the same command trains from the start: nothing of the stopped run is kept
        raise Ptv2Interrupted(f"interrupted; {kept}: run the same command again to train it (it starts over)") from None
    typer.echo(f"dev {result.spec.metric} {result.dev['score']:.4f}, test {result.spec.metric} {result.test['score']:.4f} "
               f"(best epoch {result.best_epoch}); adapter written to {out}")
