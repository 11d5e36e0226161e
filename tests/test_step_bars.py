"""The training loops' step bars count steps ("12step/s"), not tqdm's default "it"."""
from __future__ import annotations

import contextlib
import io
import re

from ptv2_core.multitask import PretrainConfig
from ptv2_core.multitask import pretrain
from ptv2_core.train import TrainConfig, train


class Terminal(io.StringIO):
    """Standard error as a terminal: tqdm draws its bars (they are off in a log)."""

    def isatty(self) -> bool:
        return True


def _bars(run) -> str:
    err = Terminal()
    with contextlib.redirect_stderr(err):
        run()
    return err.getvalue()


def _epoch_bar_units(text: str, desc: str) -> set[str]:
    # a drawn bar: "<desc>: 100%|...| 4/4 [00:00<00:00, 9.1step/s]" (or "?it/s" before the first rate)
    return {m.group(1) for m in re.finditer(re.escape(desc) + r"[^\r\n]*?\d+/\d+ \[[^\]]*?([a-z]+)/s\]", text)}


def test_the_train_step_bar_counts_steps(tiny_model_dir):
    cfg = TrainConfig(task="trec", model=tiny_model_dir, prompt_len=4, epochs=1, batch_size=16, max_train=32,
                      max_eval=16, device="cpu", progress=True)
    units = _epoch_bar_units(_bars(lambda: train(cfg)), "epoch 1/1")
    assert units == {"step"}, units


def test_the_pretrain_step_bar_counts_steps(tiny_model_dir, tmp_path):
    cfg = PretrainConfig(tasks=("trec",), model=tiny_model_dir, max_prompt_len=4, lengths=(4,), epochs=1,
                         batch_size=16, max_train=32, max_eval=16, device="cpu", progress=True)
    units = _epoch_bar_units(_bars(lambda: pretrain(cfg, tmp_path / "out")), "pretrain epoch 1/1")
    assert units == {"step"}, units
