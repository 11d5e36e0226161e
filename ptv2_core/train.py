"""The training loop: one flat loop, small helpers, a plain ``report(epoch, metrics)`` callback.

A search hooks in through ``report``; returning ``True`` from it asks the loop to stop early
(a pruned trial). The core never sees a trial object.
"""
from __future__ import annotations

import math
import random
import sys
import time
from datetime import datetime, timezone
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Iterable

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ptv2_core.backbone import fingerprint, load_backbone
from ptv2_core.batching import LengthGroupedBatches
from ptv2_core.build import build_model
from ptv2_core.device import pick_device
from ptv2_core.errors import Ptv2Error, TrainingDiverged  # noqa: F401 (TrainingDiverged: imported from here too)
from ptv2_core.evaluate import autocast, evaluate
from ptv2_core.memory import batch_shape, fits, place
from ptv2_core.model import PromptModel
from ptv2_core.optim import make_optimizer, optimizer_step
from ptv2_core.settings import BadSetting, TrainingSettings, check_seed, is_integer
from ptv2_core.tasks import TaskSpec, load_task
from ptv2_core.tasks.splits import split_hash
from ptv2_core.tasks.subsample import subset_rule
from ptv2_core.tasks.encode import Collator, encode, prepare_tokenizer

Report = Callable[[int, dict], "bool | None"]


def check_dev_finite(losses: Iterable[float], epoch: int, lr: float) -> None:
    """``TrainingDiverged`` when a dev loss is not finite. The training loss is checked before each
    update, so an epoch's last updates can overflow the weights unseen: a search then scored such a
    trial (NaN dev loss, a meaningless score) and could keep it as its best."""
    bad = [x for x in losses if not math.isfinite(x)]
    if bad:
        raise TrainingDiverged(f"dev loss became {bad[0]} after epoch {epoch} (lr {lr:g}): the weights overflowed")


@dataclass(kw_only=True)
class TrainConfig(TrainingSettings):
    """Everything one training run depends on (a search samples ``prompt_len`` and ``lr``); the
    settings it shares with multi-task pre-training are declared in ``TrainingSettings``."""

    task: str = "trec"
    prompt_len: int = 16
    patience: int | None = None  # epochs without dev improvement before stopping; None: never
    max_length: int | None = None
    data_seed: int | None = None  # the train/dev/test splits and row subsets; None: seed
    group_by_length: bool = False  # random batches of rows of similar length (batching.LengthGroupedBatches)

    @property
    def split_seed(self) -> int:
        """The seed of the data splits: ``data_seed``, or ``seed`` when it is unset. Holding it
        fixed while ``seed`` varies measures training noise on the same dev and test rows."""
        return self.seed if self.data_seed is None else self.data_seed

    def to_dict(self) -> dict:
        """The settings as recorded with an adapter; with a row cap, also how the cap picked its rows
        (``subset``: a random subset until 2026-12-06, stratified by label since)."""
        return asdict(self) | subset_rule(self.max_train, self.max_eval)

    def check_training(self) -> None:
        """The shared checks, and the per-task ones: the split seed and the patience."""
        super().check_training()
        if not is_integer(self.prompt_len) or self.prompt_len <= 0:
            raise BadSetting(f"{{prompt_len}} must be a positive integer, got {self.prompt_len!r}",
                             prompt_len="prompt length")
        if self.max_length is not None and (not is_integer(self.max_length) or self.max_length <= 0):
            raise BadSetting(f"{{max_length}} must be a positive integer (tokens), got {self.max_length!r}",
                             max_length="max_length")
        if self.data_seed is not None:
            check_seed(self.data_seed, "data seed", "data_seed")
        if self.patience is not None and (isinstance(self.patience, bool) or self.patience < 1):
            raise BadSetting(f"{{patience}} must be a positive integer (epochs without dev improvement), got "
                             f"{self.patience}", patience="patience")
        if not isinstance(self.group_by_length, bool):
            raise BadSetting(f"{{group_by_length}} must be true or false, got {self.group_by_length!r}",
                             group_by_length="group_by_length")


@dataclass
class TrainResult:
    model: PromptModel
    spec: TaskSpec
    tokenizer: object
    base_fingerprint: str
    best_epoch: int
    dev: dict
    test: dict
    history: list[dict] = field(default_factory=list)
    train_examples_per_s: float = 0.0
    stopped_early: bool = False
    test_data_hash: str = ""  # split_hash of the test rows: registration checks the task's test split is still these
    data_hashes: dict[str, str] = field(default_factory=dict)  # split_hash of the train, dev and test rows
    started: str = ""  # when train() began and ended (utc_now): ``ptv2 train`` records them in metrics.json
    finished: str = ""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def quiet_libraries() -> None:
    """Silence the progress bars of datasets and transformers (for --quiet and trials)."""
    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()


def _snapshot(model: PromptModel) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.trainable_state().items()}


def fit(
    model: PromptModel,
    train_ds,
    dev_ds,
    spec: TaskSpec,
    collator: Collator,
    cfg: TrainConfig,
    device: torch.device,
    report: Report | None = None,
) -> tuple[int, dict, list[dict], float, bool]:
    """Train prefix and head; keep the best dev epoch's weights in ``model``.

    Returns ``(best_epoch, best_dev_metrics, history, train_examples_per_s, stopped_early)``.
    """
    g = torch.Generator().manual_seed(cfg.seed)
    if cfg.group_by_length:
        batches = LengthGroupedBatches([len(ids) for ids in train_ds["input_ids"]], cfg.batch_size, g)
        loader = DataLoader(train_ds, batch_sampler=batches, collate_fn=collator)
    else:
        loader = DataLoader(train_ds, batch_size=cfg.batch_size, shuffle=True, generator=g, collate_fn=collator)
    params, opt, sched = make_optimizer(model, cfg, max(1, cfg.epochs * len(loader)))

    best_epoch, best_dev, best_state, bad_epochs = 0, None, _snapshot(model), 0
    history: list[dict] = []
    seen, train_time, stopped = 0, 0.0, False
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        t0, loss_sum, steps = time.perf_counter(), 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch}/{cfg.epochs}", unit="step", leave=False,
                   disable=None if cfg.progress else True)  # None: a bar on a terminal only, not in a log
        for batch in bar:
            batch = {k: v.to(device) for k, v in batch.items()}
            with fits(device, f"training on a batch of {batch_shape(batch)} with a {cfg.prompt_len}-position prompt",
                      "try a smaller --batch-size"):
                with autocast(device, cfg.bf16):
                    loss = model(batch["input_ids"], batch["attention_mask"], batch["labels"]).loss
                # the step's one wait for the GPU, before the update: the divergence check and the running
                # mean read it, and the backward pass then runs while the next batch is collated
                value = loss.item()
                if not math.isfinite(value):
                    raise TrainingDiverged(f"loss became {value} at epoch {epoch}, step {steps + 1} (lr {cfg.lr:g})")
                optimizer_step(loss, params, opt, sched, cfg.grad_clip)
            loss_sum, steps, seen = loss_sum + value, steps + 1, seen + batch["input_ids"].shape[0]
            bar.set_postfix(loss=f"{loss_sum / steps:.4f}")
        train_time += time.perf_counter() - t0

        dev = evaluate(model, dev_ds, spec, collator, device, cfg.eval_batch_size, bf16=cfg.bf16,
                       progress=f"score dev (epoch {epoch})" if cfg.progress else None)
        check_dev_finite([dev["loss"]], epoch, cfg.lr)
        row = {"epoch": epoch, "train_loss": loss_sum / max(steps, 1)} | {f"dev_{k}": v for k, v in dev.items()}
        history.append(row)
        if cfg.progress:
            tqdm.write(f"epoch {epoch}: train loss {row['train_loss']:.4f}, dev {spec.metric} {dev['score']:.4f}",
                       file=sys.stderr)  # progress, not the result: stdout carries the command's output
        if best_dev is None or dev["score"] > best_dev["score"]:
            best_epoch, best_dev, best_state, bad_epochs = epoch, dev, _snapshot(model), 0
        else:
            bad_epochs += 1
        if report is not None and report(epoch, dict(row)):
            stopped = True
            break
        if cfg.patience is not None and bad_epochs >= cfg.patience:
            stopped = True
            break
    model.load_trainable_state(best_state)
    return best_epoch, best_dev or {}, history, seen / max(train_time, 1e-9), stopped


def check_prompt_fits_model(prompt_len: int, model: str, config=None) -> None:
    """A prompt longer than the model's context (or than its sliding window) refused from the model's
    config alone (``config``: it, loaded already), before any data or weights load: it was refused
    only once both had loaded (minutes for a large model). The text's own length against the
    positions is checked once the task's max length is known (``build_model``)."""
    from ptv2_core.backbone import load_config
    from ptv2_core.build import check_prompt_len

    check_prompt_len(prompt_len, load_config(model) if config is None else config, 1)


def utc_now() -> str:
    """The time now, UTC, to the whole second (ISO 8601: ``2026-12-07T10:58:03+00:00``)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def train(cfg: TrainConfig, report: Report | None = None,
          init: Callable[[PromptModel, TaskSpec], None] | None = None,
          on_data: Callable[[dict[str, str]], None] | None = None, score_test: bool = True) -> TrainResult:
    """Set up, train and test one configuration: ``load → build → fit → test``.

    ``init(model, spec)`` may overwrite the fresh prompt and head before training (a pre-trained
    prompt: ``partial(init_from_pretrained, pretrained_dir=DIR, task=cfg.task)``).
    ``on_data(hashes)`` is handed the ``split_hash`` of the train, dev and test rows as soon as they
    load, before training (``TrainResult.data_hashes`` holds them too): a search's trial records them
    with each adapter it reports mid-training, and a trial stopped early never gets the result.
    ``score_test=False`` leaves the test split unscored (``TrainResult.test`` is ``{}``) and changes
    nothing else: a search's trial reads its dev scores only (the search scores its best adapter's
    test rows once, at the end), and scoring test is one more pass as long as a dev one, after training.
    """
    started = utc_now()
    cfg.check_training()  # cheap checks first, before any data or weights load
    check_prompt_fits_model(cfg.prompt_len, cfg.model)
    seed_everything(cfg.seed)
    if not cfg.progress:
        quiet_libraries()
    device = pick_device(cfg.device)
    spec, data = load_task(cfg.task, seed=cfg.split_seed, max_train=cfg.max_train, max_eval=cfg.max_eval,
                           label_notes=True)
    hashes = {name: split_hash(spec, data[name]) for name in ("train", "dev", "test")}  # the rows, as loaded
    if on_data is not None:
        on_data(dict(hashes))
    backbone, tokenizer = load_backbone(cfg.model)
    tokenizer = prepare_tokenizer(tokenizer)
    max_length = cfg.max_length or spec.max_length
    if max_length != spec.max_length:  # the adapter records the truncation it was trained and scored with:
        spec = replace(spec, max_length=max_length)  # eval, the search's best-adapter scoring, serving
    # again: loading a checkpoint that lacks weights (a pooler) draws them from torch's generator, so the
    # prompt, head, dropout and batch order would depend on the base's files and transformers' version
    seed_everything(cfg.seed)
    model = build_model(
        backbone, spec, cfg.prompt_len, max_length=max_length, reparam=cfg.reparam,
        reparam_hidden=cfg.reparam_hidden, prefix_dropout=cfg.prefix_dropout,
        pooling=cfg.pooling, head_dropout=cfg.head_dropout,
    )
    if init is not None:
        init(model, spec)
    place(model, device)
    base_fp = fingerprint(backbone)
    scored = ("train", "dev", "test") if score_test else ("train", "dev")
    splits = {name: encode(data[name], tokenizer, spec, max_length) for name in scored}
    collator = Collator(tokenizer, spec)
    best_epoch, dev, history, speed, stopped = fit(model, splits["train"], splits["dev"], spec, collator, cfg, device, report)
    test = {} if not score_test else evaluate(model, splits["test"], spec, collator, device, cfg.eval_batch_size,
                                              bf16=cfg.bf16, progress="score test" if cfg.progress else None)
    model.eval()  # trained: handed over for prediction (scoring restores the mode it finds)
    return TrainResult(model, spec, tokenizer, base_fp, best_epoch, dev, test, history, speed, stopped,
                       hashes["test"], hashes, started=started, finished=utc_now())
