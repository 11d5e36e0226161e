"""``ptv2 train``, ``ptv2 eval``, ``ptv2 predict``: the core library from the shell."""
from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Optional

import typer

from pipelines.cli.app import app
from pipelines.cli.committed import no_interrupts_from_here
from pipelines.cli.option_names import options_named


@app.command()
def train(
    task: str = typer.Option(..., help="Packaged task (trec, rt, wnut16, bbc), a task YAML file, or hub:<name>."),
    out: Path = typer.Option(..., help="Folder for adapter.safetensors, adapter_config.json, metrics.json."),
    model: str = typer.Option("minilm", help="Base model: 'minilm' (bundled), a folder, or a hub name."),
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
        version = _registered(model, device)
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
                              batch_size=batch_size, progress=True)
    typer.echo(json.dumps(result | ({"prompt_len": prompt_len} if prompt_len is not None else {}), indent=2))


@app.command()
def predict(
    texts: Optional[list[str]] = typer.Argument(None, help="Texts to label (NER: words split on whitespace); a lone "
                                                "'-' reads standard input, as --file - does."),
    file: Optional[str] = typer.Option(None, "--file", help="Label every line of this UTF-8 text file instead ('-': "
                                       "standard input, labelled as it comes); one output line per input line, in "
                                       "order. A table (.csv, .jsonl, .json, .parquet): its text column is labelled "
                                       "and the table written back with pred_label (pred_score) or pred_tags "
                                       "(pred_scores) columns added."),
    fmt: Optional[str] = typer.Option(None, "--format", help="How to read --file: text (one text per line), csv, "
                                      "jsonl, json or parquet (default: by its extension; text for '-' and any "
                                      "other). For standard input or a pipe (cat data.csv | ptv2 predict ... "
                                      "--file - --format csv); a table's extension must agree."),
    text_column: Optional[str] = typer.Option(None, help="A table's column to label (default: the adapter's task's "
                                              "text column, else 'text'; NER: a list of words or a text)."),
    out: Optional[Path] = typer.Option(None, help="Write the labelled table here, in the format of --file (default: "
                                       "standard output; a .parquet needs --out). Written whole or not at all."),
    overwrite: bool = typer.Option(False, help="Replace the file at --out."),
    adapter: Optional[Path] = typer.Option(None, help="Adapter folder."),
    model: Optional[str] = typer.Option(None, help="A registered version instead of a folder: models:/NAME@ALIAS or "
                                        "models:/NAME/VERSION (store: MLFLOW_TRACKING_URI or the local default)."),
    scores: bool = typer.Option(False, help="Print the score beside each label (NER: word/TAG/score)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per text."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1 ..."),
    batch_size: int = typer.Option(64, help="Texts labelled at a time."),
) -> None:
    """Print one label per text (tags per word for NER), from an adapter folder or a registered model."""
    from ptv2_core.adapter import load_adapter
    from ptv2_core.device import pick_device
    from ptv2_core.errors import Ptv2Error

    if (adapter is None) == (model is None):
        raise Ptv2Error("give exactly one of --adapter DIR and --model models:/NAME@ALIAS")
    if texts == ["-"] and file is None:  # the Unix convention: `-` is standard input (it labelled the text "-")
        texts, file = None, "-"
    if bool(texts) == (file is not None):
        raise Ptv2Error("give texts to label, or --file PATH (one text per line), not both" if texts else
                        "nothing to label: give texts, or --file PATH (one text per line; '-' reads standard input)")
    for i, text in enumerate(texts or (), 1):  # bytes that are not UTF-8 arrive as lone surrogates
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise Ptv2Error(f"text {i} on the command line is not valid UTF-8") from None
    pick_device(device)  # an unknown device fails before anything loads
    check_batch_size(batch_size)
    from pipelines.cli import predict_table_input as tables
    from pipelines.cli.predict_table import predict_table

    suffix = tables.table_format(file, fmt)  # a table's lines were labelled one by one, its header too
    tables.check_options(suffix, out, overwrite, as_json, text_column)
    if suffix:
        with tables.read_input(file, suffix, text_column) as table:  # a bad table fails before the model loads
            if model is None:  # so does one this adapter cannot label (a registered version's task is known once downloaded)
                from ptv2_core.adapter import read_adapter_config

                tables.check_early(table, file, text_column, read_adapter_config(adapter))
            loaded = load_adapter(adapter, device=pick_device(device)) if model is None else \
                _registered(model, device).adapter
            predict_table(loaded, file, table, text_column=text_column, out=out, overwrite=overwrite,
                          scores=scores, batch_size=batch_size)
        return
    from pipelines.cli.lines import InputLines, open_lines, streamed
    from pipelines.cli.sigint import sigint_between_batches

    # a file is labelled PREDICT_CHUNK lines at a time, each chunk printed when done: the first
    # labels come in seconds, standard input streams, and a stopped run keeps what it printed.
    # A file is checked before the model loads; standard input (or a FIFO, read once as it is) is
    # waited for after it has loaded (a wrong --adapter is told at once, not once the first line comes)
    stream = file is not None and streamed(file)
    source = open_lines(file, PREDICT_CHUNK) if file is not None and not stream else None
    from tqdm.auto import tqdm

    from ptv2_core.errors import Ptv2Interrupted
    from ptv2_core.predict import predict as run_predict

    # a registered version: the adapter its pyfunc model loaded (digests and base checked), run as
    # the pyfunc's predict runs it
    loaded = load_adapter(adapter, device=pick_device(device)) if model is None else _registered(model, device).adapter
    if source is None:
        source = open_lines(file, PREDICT_CHUNK) if stream else InputLines("", list(texts), iter(()), len(texts))
    done = 0
    # Ctrl-C: between batches while labelling (so the count of printed lines is exact), at once
    # while waiting for input (pipelines/cli/sigint.py)
    with tqdm(total=source.total, unit="text", desc="predict", disable=None if file is not None else True,
              file=sys.stderr) as bar, sigint_between_batches() as sigint:
        try:
            for chunk in source.chunks():
                with sigint.held():
                    rows = run_predict(loaded, chunk, batch_size, on_batch=lambda n: (bar.update(n), sigint.check()))
                    for text, p in zip(chunk, rows):  # --json lines carry their text: joinable to the input
                        if "label" in p and not text.strip():  # nothing to classify: no made-up label
                            p = {"label": None, "score": None}
                        typer.echo(_predict_line({"text": text} | p if as_json else p, scores, as_json))
                        done += 1
                    sys.stdout.flush()
        except KeyboardInterrupt:
            if not done:
                raise Ptv2Interrupted("interrupted before the first labels were printed") from None
            if stream:  # no count, and no `tail` of a pipe
                raise Ptv2Interrupted(f"interrupted; the first {done} lines of {source.name} are labelled on "
                                      "standard output") from None
            rest = f": `tail -n +{done + 1} {file}` holds the rest" if file is not None else ""
            raise Ptv2Interrupted(f"interrupted; the first {done} of {source.total} lines are labelled on standard "
                                  f"output{rest}") from None
        except Ptv2Error as e:  # e.g. standard input turned out not to be UTF-8 after some lines
            if done:
                raise Ptv2Error(f"{e}; the first {done} lines are labelled on standard output") from None
            raise


PREDICT_CHUNK = 4096


def bars_on_a_terminal_only() -> None:
    """Off a terminal (a log file, a pipe, a pipeline step's log), the libraries' own progress bars
    (datasets' "encode" bars) are noise: like ptv2's scoring bars, they show on a terminal only."""
    if not sys.stderr.isatty():
        from ptv2_core.train import quiet_libraries

        quiet_libraries()


def check_batch_size(batch_size: int) -> None:
    from ptv2_core.errors import Ptv2Error

    if batch_size <= 0:
        raise Ptv2Error(f"--batch-size must be a positive integer, got {batch_size}")


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


def _predict_line(p: dict, scores: bool, as_json: bool) -> str:
    """One output line: JSON, the label (and score), or word/TAG pairs (word/TAG/score)."""
    if as_json:
        return json.dumps(p)
    if "label" in p:
        if p["label"] is None:  # an empty input line: an empty output line, so lines still pair up
            return ""
        return f"{p['label']}\t{p['score']:.4f}" if scores else p["label"]
    if scores:
        return " ".join(f"{w}/{t}/{s:.4f}" for w, t, s in zip(p["tokens"], p["tags"], p["scores"]))
    return " ".join(f"{w}/{t}" for w, t in zip(p["tokens"], p["tags"]))


def _registered(model_uri: str, device: str):
    """The registered version ``model_uri`` loaded as its pyfunc model, on ``device`` (``auto``:
    where ``PTV2_DEVICE`` says, as for serving, else the best there is)."""
    import os

    from components.registry.load import load_registered
    from ptv2_core.device import pick_device

    if device == "auto":
        # a bad value fails before the store is opened, named as the variable (not as --device)
        pick_device(os.environ.get("PTV2_DEVICE", "auto"), setting="PTV2_DEVICE")
        return load_registered(model_uri)
    pick_device(device)  # a bad --device is told as one (below, the pyfunc model reads it as PTV2_DEVICE)
    previous = os.environ.get("PTV2_DEVICE")
    os.environ["PTV2_DEVICE"] = device  # read by the pyfunc model's load_context
    try:
        return load_registered(model_uri)
    finally:
        if previous is None:
            os.environ.pop("PTV2_DEVICE", None)
        else:
            os.environ["PTV2_DEVICE"] = previous
