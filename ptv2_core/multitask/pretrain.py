"""Joint pre-training of one deep prompt on several tasks: ``load → build → (resume) → loop → save``.

One flat loop. Each step draws a task (temperature-scaled size sampling) and a prompt length
(nested prompts: only the first ``length`` positions are used), takes one batch of that task
and updates the shared prompt and that task's head. After each epoch every task is scored on
its dev split at every candidate length, and a checkpoint is written; a run started again on
the same folder with the same settings resumes from the newest checkpoint. The artifact
(``prompt.safetensors`` + ``prompt_config.json``) is written only when the run completes.
"""
from __future__ import annotations

import json
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ptv2_core.adapter import check_not_dangling, check_writable, write_atomic_dir
from ptv2_core.backbone import base_revision, base_tokenizer_fingerprint, fingerprint, geometry, load_backbone
from ptv2_core.provenance import provenance
from ptv2_core.build import check_backbone_pooling, check_model_pooling, check_prompt_len
from ptv2_core.device import pick_device
from ptv2_core.errors import Ptv2Error
from ptv2_core.evaluate import autocast, evaluate
from ptv2_core.memory import batch_shape, fits, place
from ptv2_core.heads import HeadConfig, default_pooling
from ptv2_core.multitask.checkpoint import (
    checkpoint_epochs, load_latest_checkpoint, model_state_of, optimizer_from_files, restore_rng, save_checkpoint,
)
from ptv2_core.multitask.curves import CURVES, curves_png
from ptv2_core.multitask.mixing import TaskMixer
from ptv2_core.multitask.model import MultiTaskPromptModel
from ptv2_core.multitask.run_key import (TASK_DATA, TASK_SPEC, TOKENIZER_KEY, differing_keys, run_key_diff, task_keys,
                                         settings_values, shown_keys, tasks_changed)
from ptv2_core.multitask.pretrained import (
    CHECKPOINTS, CONFIG, LOGGED, WEIGHTS, PretrainConfig, artifact_files, config_digest, read_pretrained_config,
    read_pretrained_state,
)
from ptv2_core.optim import leading_rows_only, make_optimizer, optimizer_step
from ptv2_core.prefix import PromptConfig
from ptv2_core.tasks.subsample import subset_rule
from ptv2_core.tasks import TaskSpec, load_task
from ptv2_core.tasks.encode import Collator, encode, prepare_tokenizer
from ptv2_core import busy_lock
from ptv2_core.train import (Report, TrainingDiverged, check_dev_finite, check_prompt_fits_model, quiet_libraries,
                             seed_everything)
from ptv2_core.wording import count_of


@dataclass
class PretrainResult:
    model: MultiTaskPromptModel
    specs: list[TaskSpec]
    tokenizer: object
    base_fingerprint: str
    out_dir: Path
    history: list[dict] = field(default_factory=list)
    dev: dict = field(default_factory=dict)  # {task name: {str(length): dev metrics}} after the last epoch
    resumed_from: int = 0  # epoch of the checkpoint the run continued from (0: a fresh run)
    stopped: bool = False  # report() asked to stop: checkpoints written, no artifact
    train_examples_per_s: float = 0.0


def _check_out(out: Path, overwrite: bool) -> None:
    """Refuse a folder that holds anything but a (finished or unfinished) pre-training run."""
    if out.exists() and not out.is_dir():
        raise Ptv2Error(f"--out '{out}' exists and is not a folder")
    check_not_dangling(out)
    check_writable(out)
    if not out.is_dir():
        return
    foreign = sorted(p.name for p in out.iterdir()
                     if p.name not in (WEIGHTS, CONFIG, CURVES, CHECKPOINTS, LOGGED) and not p.name.startswith("."))
    if foreign and not overwrite:
        raise Ptv2Error(f"--out '{out}' holds other files ({', '.join(foreign[:3])}): use an empty folder")
    if (out / CONFIG).exists() and not overwrite and replacing_run(out) is None:
        raise Ptv2Error(f"--out '{out}' already holds a pre-trained prompt (pass --overwrite to replace it)")


# in checkpoints/ while an --overwrite run has not yet replaced the finished prompt beside them: its digest
REPLACES = "replaces.json"


def replacing_run(out: Path) -> dict | None:
    """The run key of an ``--overwrite`` run in ``out`` that has not finished: its checkpoints
    folder names the prompt it is to replace (``REPLACES``: its config's digest), and that prompt
    is still there, kept until the new one is written. None otherwise."""
    digest = config_digest(out)
    try:
        marker = json.loads((out / CHECKPOINTS / REPLACES).read_text())
    except (OSError, ValueError):
        return None
    if digest is None or not isinstance(marker, dict) or marker.get("prompt_config_sha256") != digest:
        return None
    for epoch in reversed(checkpoint_epochs(out / CHECKPOINTS)):  # the newest readable, as a resume takes
        try:
            doc = json.loads((out / CHECKPOINTS / f"epoch-{epoch}.json").read_text())
        except (OSError, ValueError):
            continue
        return doc.get("run") if isinstance(doc, dict) else None
    return None


def finished_prompt(cfg: PretrainConfig, out_dir: str | Path) -> dict | None:
    """The config of the finished prompt in ``out_dir`` when it was pre-trained with ``cfg``'s
    settings (those a resume must share; the base model by its reference, not loaded again to
    fingerprint it) and on the same tasks' rows and specs (loaded again to compare, where the prompt
    records them): the same command run again, with nothing left to train. None when ``out_dir``
    holds no finished prompt; a finished prompt of other settings, or of tasks changed since, is refused."""
    out = Path(out_dir)
    if not (out / CONFIG).is_file():
        return None
    replacing = replacing_run(out)
    if replacing is not None and not differing_keys({k: replacing.get(k) for k in cfg.run_key()}, cfg.run_key()):
        return None  # an --overwrite run of these settings stopped before it replaced the prompt: resumed
    config = read_pretrained_config(out)
    if not (out / WEIGHTS).is_file():
        raise Ptv2Error(f"--out '{out}' holds {CONFIG} but not {WEIGHTS}: not a complete pre-trained prompt "
                        "(pass --overwrite to start afresh)")
    read_pretrained_state(out, config)  # "finished already" (and logged as such) only with weights that can be used
    try:
        recorded = PretrainConfig.from_dict(config.get("pretrain_config") or {})
    except (TypeError, ValueError) as e:
        raise Ptv2Error(f"corrupt pre-trained prompt config '{out / CONFIG}': 'pretrain_config' cannot be read: {e}") from None
    differ = differing_keys(recorded.run_key(), cfg.run_key())
    why = ""
    saved = config.get("task_keys")
    if not differ and isinstance(saved, dict) and saved:  # a prompt finished before 2026-12 records none
        now = task_keys(load_task(ref, seed=cfg.seed, max_train=cfg.max_train, max_eval=cfg.max_eval)
                        for ref in cfg.tasks)
        differ = run_key_diff(saved, now)
        why = tasks_changed(differ, saved, now, "it was pre-trained")
    if differ:
        values = settings_values(differ, recorded.run_key(), cfg.run_key(), "the prompt's")
        raise Ptv2Error(f"--out '{out}' already holds a pre-trained prompt of other settings (differs in: "
                        f"{', '.join(differ)}{values}){why}: pass --overwrite to replace it, or use another --out")
    return config


def out_lock(out: Path):
    """Held while a run writes to ``out`` (the prompt, its checkpoints, the record of its logged
    run): one process at a time there; a second (as to resume a run while it still runs) is refused."""
    return busy_lock.output_lock(out, "pretrain",
                                 f"another `ptv2 pretrain` is writing to '{out}': wait for it to end, or stop it "
                                 "first (then the same command resumes it)")


def _mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / max(len(xs), 1)


def _dev_scores(model: MultiTaskPromptModel, specs, dev_sets, collators, lengths, device, cfg) -> dict:
    return {
        spec.name: {
            str(n): evaluate(model.task_model(spec.name), dev, spec, collator, device, cfg.eval_batch_size,
                             prompt_len=n, bf16=cfg.bf16, progress=f"score {spec.name} dev, length {n}" if cfg.progress
                             else None)
            for n in lengths
        }
        for spec, dev, collator in zip(specs, dev_sets, collators)
    }


def _now() -> str:
    """The time now, UTC, to the second (ISO 8601)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _trained_on(device: torch.device, bf16: bool) -> dict:
    """Where a checkpoint's epochs ran (not in its run key: a run may move to another machine)."""
    return {"device": device.type, "bf16": bool(bf16 and device.type == "cuda")}


def _moved_note(out: Path, then: dict | None, now: dict) -> str | None:
    """The note for a run resumed on another kind of device or precision than it was checkpointed on."""
    if not isinstance(then, dict) or then == now:
        return None  # the same, or checkpointed before this was recorded
    desc = lambda d: f"{d.get('device')} ({'bf16' if d.get('bf16') else 'fp32'})"  # noqa: E731
    return (f"note: resuming pre-training in {out} on {desc(now)}; it was checkpointed on {desc(then)}, so its "
            "numbers will differ somewhat from a run that was not moved")


def pretrain(cfg: PretrainConfig, out_dir: str | Path, report: Report | None = None, *, overwrite: bool = False,
             backbone=None, tokenizer=None) -> PretrainResult:
    """Pre-train one shared prompt of ``cfg.max_prompt_len`` positions on ``cfg.tasks``.

    ``report(epoch, row)`` is called after every epoch (after its checkpoint); returning True
    stops the run, which can be resumed later. ``backbone``/``tokenizer`` default to loading
    ``cfg.model``. Every input is checked before ``out_dir`` is touched.
    """
    cfg.check()
    # 'pooler' on a model without one, or an unknown name: from the config, before any data or weights load
    check_model_pooling(cfg.model, cfg.pooling, None if backbone is None else backbone.config)
    check_prompt_fits_model(cfg.max_prompt_len, cfg.model, None if backbone is None else backbone.config)
    out = Path(out_dir)
    _check_out(out, overwrite)
    seed_everything(cfg.seed)
    if not cfg.progress:
        quiet_libraries()
    device = pick_device(cfg.device)
    loaded = [load_task(ref, seed=cfg.seed, max_train=cfg.max_train, max_eval=cfg.max_eval, label_notes=True)
              for ref in cfg.tasks]
    specs = [spec for spec, _ in loaded]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise Ptv2Error(f"two pre-training tasks share a name: {names}")
    if backbone is None:
        backbone, tokenizer = load_backbone(cfg.model)
    tokenizer = prepare_tokenizer(tokenizer)
    geo = geometry(backbone.config)
    check_prompt_len(cfg.max_prompt_len, backbone.config, max(s.max_length for s in specs))
    pooling = cfg.pooling or default_pooling(geo.family)
    # what the early check cannot see from files (a hub model): a pooler its checkpoint left untrained
    check_backbone_pooling(pooling, backbone, cfg.model)
    prompt = PromptConfig(cfg.max_prompt_len, geo.num_layers, geo.num_kv_heads, geo.head_dim, cfg.reparam,
                          cfg.reparam_hidden, cfg.prefix_dropout)
    heads = {s.name: HeadConfig(s.type, len(s.labels), geo.hidden_size, pooling, cfg.head_dropout) for s in specs}
    model = MultiTaskPromptModel(backbone, prompt, heads)
    base_fp = fingerprint(backbone)
    train_rows = [encode(data["train"], tokenizer, spec).to_list() for spec, data in loaded]
    dev_sets = [encode(data["dev"], tokenizer, spec) for spec, data in loaded]
    collators = [Collator(tokenizer, spec) for spec in specs]
    tok_fp = base_tokenizer_fingerprint(backbone)  # as loaded beside the weights; None for a model object
    run_key = (cfg.run_key() | {"base_fingerprint": base_fp} | ({TOKENIZER_KEY: tok_fp} if tok_fp else {})
               | subset_rule(cfg.max_train, cfg.max_eval))
    run_key |= task_keys(loaded)
    mixer = TaskMixer([len(r) for r in train_rows], cfg.batch_size, list(cfg.lengths),
                      temperature=cfg.temperature, nested=cfg.nested, seed=cfg.seed)

    # every input is valid: from here on this run writes into ``out``, alone (a second run of the
    # same command, as to resume it while it still runs, would train over the same checkpoints)
    with out_lock(out):
        _check_out(out, overwrite)  # again: a run that held the lock before this one may have finished there
        ckpt_dir = out / CHECKPOINTS
        if overwrite:  # all inputs are valid: a fresh start. A finished prompt stays until the new one
            shutil.rmtree(ckpt_dir, ignore_errors=True)  # replaces it (a stopped or failed run keeps it)
            digest = config_digest(out)
            if digest is not None:  # named beside the checkpoints: these settings without --overwrite resume them
                ckpt_dir.mkdir()
                (ckpt_dir / REPLACES).write_text(json.dumps({"prompt_config_sha256": digest}) + "\n")
        resume = load_latest_checkpoint(ckpt_dir)
        differ = run_key_diff(resume[0].get("run") or {}, run_key) if resume is not None else []
        if differ:
            why = (" (checkpointed before 2026-12-06, when --max-train/--max-eval kept a random subset of the "
                   "rows; the subset is stratified by label now)" if "subset" in differ else "")
            if "tasks" not in differ:
                why += tasks_changed(differ, resume[0]["run"], run_key, "the checkpoint")
            saved = resume[0]["run"]
            values = settings_values(differ, saved, run_key, "the checkpoint's")
            raise Ptv2Error(f"'{out}' holds checkpoints of a different pre-training run "
                            f"(differs in: {', '.join(shown_keys(differ, saved, run_key))}{values}){why}; "
                            "use another --out, or --overwrite to start afresh")

        place(model, device)
        steps = mixer.steps_per_epoch()
        params, opt, sched = make_optimizer(model, cfg, cfg.epochs * steps)

        history: list[dict] = []
        start = 1
        started = _now()  # when this run first started: a resume keeps its checkpoint's
        if resume is not None:
            doc, tensors = resume
            model.load_trainable_state(model_state_of(tensors))
            opt.load_state_dict(optimizer_from_files(tensors, doc["optimizer"]))
            sched.load_state_dict(doc["scheduler"])
            try:  # a checkpoint from before the tasks' rows were keyed: its sampler must fit them at least
                mixer.load_state_dict(doc["sampler"])
            except Ptv2Error as e:
                raise Ptv2Error(f"'{out}' holds checkpoints of a different pre-training run ({e}; tasks in the order "
                                f"{', '.join(names)}); use another --out, or --overwrite to start afresh") from None
            restore_rng(tensors, device)
            moved = _moved_note(out, doc.get("trained_on"), _trained_on(device, cfg.bf16))
            if moved:  # a note, not a refusal: moving a stopped run to another machine is legitimate
                tqdm.write(moved, file=sys.stderr)
            history, start = doc["history"], doc["epoch"] + 1
            # a checkpoint from before 2026-12-07 does not say when its run started: not recorded, rather than
            # this resume's time passed off as the start
            started = doc.get("started") or history[0].get("time")
            if cfg.progress:
                tqdm.write(f"resuming pre-training in {out} after epoch {doc['epoch']}", file=sys.stderr)
        else:
            # epoch 0: every slice's dev score before training, the baseline the curves start from
            dev = _dev_scores(model, specs, dev_sets, collators, cfg.lengths, device, cfg)
            history.append({"epoch": 0, "dev": dev,
                            "dev_mean_score": _mean(m["score"] for d in dev.values() for m in d.values()),
                            "time": _now()})

        seen, train_time, stopped = 0, 0.0, False
        for epoch in range(start, cfg.epochs + 1):
            model.train()
            t0 = time.perf_counter()
            loss_sum = {n: 0.0 for n in names}
            count = {n: 0 for n in names}
            by_length = {str(n): 0 for n in cfg.lengths}
            bar = tqdm(range(steps), desc=f"pretrain epoch {epoch}/{cfg.epochs}", unit="step", leave=False,
                       disable=None if cfg.progress else True)  # None: a bar on a terminal only, not in a log
            for step in bar:
                t, rows, length = mixer.next()
                batch = collators[t]([train_rows[t][i] for i in rows])
                batch = {k: v.to(device) for k, v in batch.items()}
                with fits(device, f"pre-training on a batch of {batch_shape(batch)} (task {names[t]}, prompt "
                                  f"length {length})", "try a smaller --batch-size"):
                    with autocast(device, cfg.bf16):
                        loss = model(names[t], batch["input_ids"], batch["attention_mask"], batch["labels"],
                                     prompt_len=length).loss
                    value = loss.item()  # the step's one wait for the GPU (as in ptv2_core.train.fit)
                    if not math.isfinite(value):
                        raise TrainingDiverged(f"loss became {value} at epoch {epoch}, step {step + 1} "
                                               f"(task {names[t]}, length {length}, lr {cfg.lr:g})")
                    with leading_rows_only(model.prefix.embedding.weight, opt, length):
                        optimizer_step(loss, params, opt, sched, cfg.grad_clip)
                loss_sum[names[t]] += value
                count[names[t]] += 1
                by_length[str(length)] += 1
                seen += len(rows)
                bar.set_postfix(loss=f"{sum(loss_sum.values()) / max(sum(count.values()), 1):.4f}", task=names[t],
                                len=length)
            train_time += time.perf_counter() - t0

            dev = _dev_scores(model, specs, dev_sets, collators, cfg.lengths, device, cfg)
            check_dev_finite((m["loss"] for per_len in dev.values() for m in per_len.values()), epoch, cfg.lr)
            row = {
                "epoch": epoch,
                "train_loss": sum(loss_sum.values()) / max(sum(count.values()), 1),
                "train_loss_by_task": {n: loss_sum[n] / count[n] for n in names if count[n]},
                "steps_by_task": count,
                "steps_by_length": by_length,
                "dev": dev,
                "dev_mean_score": _mean(m["score"] for d in dev.values() for m in d.values()),
                "time": _now(),  # when the epoch's scores were taken (MLflow's metric timestamps)
            }
            history.append(row)
            if cfg.progress:
                tqdm.write(f"epoch {epoch}: train loss {row['train_loss']:.4f}, "
                           f"mean dev score {row['dev_mean_score']:.4f} "
                           f"over {count_of(len(names), 'task')} x {count_of(len(cfg.lengths), 'length')}", file=sys.stderr)
            save_checkpoint(ckpt_dir, epoch, model.trainable_state(), opt, {
                "run": run_key, "scheduler": sched.state_dict(), "sampler": mixer.state_dict(), "history": history,
                "trained_on": _trained_on(device, cfg.bf16), "started": started,
            }, cfg.keep_checkpoints, device)
            if report is not None and report(epoch, dict(row)):
                stopped = True
                break

        last = history[-1]
        result = PretrainResult(model, specs, tokenizer, base_fp, out, history, last["dev"],
                                resume[0]["epoch"] if resume is not None else 0, stopped, seen / max(train_time, 1e-9))
        if stopped:
            return result
        config = {
            "tasks": [{"ref": ref, "spec": spec.to_dict(), "head": heads[spec.name].to_dict(), "train_rows": len(rows)}
                      for ref, spec, rows in zip(cfg.tasks, specs, train_rows)],
            "lengths": list(cfg.lengths),
            "max_prompt_len": cfg.max_prompt_len,
            "nested": cfg.nested,
            "prompt": prompt.to_dict(),
            "base_model": {"name": cfg.model, "model_type": backbone.config.model_type, "fingerprint": base_fp,
                           **({"revision": rev} if (rev := base_revision(backbone)) else {}),  # a hub model's commit
                           **({"tokenizer_fingerprint": tok_fp} if tok_fp else {})},
            "pretrain_config": cfg.to_dict(),
            # the tasks' rows and specs it was trained on: the same command again on other ones is refused
            "task_keys": {k: v for k, v in run_key.items() if k.startswith((TASK_DATA, TASK_SPEC))},
            "epochs_trained": last["epoch"],
            # found a year later, the prompt says when, where and by which code it was made
            **({"started": started} if started else {}), "finished": _now(), "trained_on": _trained_on(device, cfg.bf16),
            "provenance": provenance(),  # the code and library versions, as an adapter records them
            "dev": last["dev"],
            "history": history,
        }
        picture = curves_png(history, {s.name: s.metric for s in specs},
                             f"pre-training on {', '.join(s.name for s in specs)} ({cfg.model})")
        # the JSON, which marks a finished prompt, goes first and lands last; with it go the record of the
        # previous prompt's logged run (this prompt is not logged yet) and the note that this run replaces it
        write_atomic_dir(out, {CURVES: picture} | artifact_files(model.trainable_state(), config), marker=CONFIG,
                         drop=(LOGGED, f"{CHECKPOINTS}/{REPLACES}"))
        return result
