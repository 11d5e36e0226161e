"""What loading a base model says about its checkpoint's weights, in ptv2's words.

transformers 5.x logs a multi-line "LOAD REPORT" table (utils/loading_report.py,
``log_state_dict_report``: one WARNING record of the ``transformers.modeling_utils`` logger) for any
weight a checkpoint lacks, holds besides the model's, or holds in another shape. Under a frozen base
most of it is no news: a pooler saved without (sentence-transformers checkpoints) is refused for
pooling 'pooler' and unused otherwise; a task head's weights (a classifier, an LM head) have no place
in the base model. ``load_backbone`` holds the table back for its own load only and says what a user
must know in one line (``load_warning``) or one error (``mismatch_error``)."""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from ptv2_core.errors import Ptv2Error

_LOGGER = "transformers.modeling_utils"
_MARK = " LOAD REPORT"  # "<ModelClass> LOAD REPORT from: <path>", the record's first line


class _HeldReport(logging.Filter):
    """Drops the LOAD REPORT records the thread that made it logs, keeping them; passes every other
    (a logger's filters are the process's: another thread's load reports as transformers does)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread == self.thread and _MARK in record.getMessage().split("\n", 1)[0]:
            self.records.append(record)
            return False
        return True


@contextmanager
def load_report_held() -> Iterator[None]:
    """Hold back transformers' LOAD REPORT for the block, and only it: every other record of its
    logger passes, and loads outside the block (another thread's too) report as transformers does.
    Should the block raise, the held report is let out first: transformers' errors after it
    (weights it could not convert) say 'look at the above report'."""
    logger = logging.getLogger(_LOGGER)
    held = _HeldReport()
    logger.addFilter(held)
    try:
        yield
    except BaseException:
        logger.removeFilter(held)
        for record in held.records:
            logger.handle(record)
        raise
    finally:
        logger.removeFilter(held)


def _few(items: list[str], shown: int = 3) -> str:
    more = len(items) - shown
    return ", ".join(items[:shown]) + (f" and {more} more" if more > 0 else "")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def load_warning(name: str, missing: Iterable[str], unexpected: Iterable[str], model) -> str | None:
    """The one line to say about a load, or None: weights the checkpoint lacks (``missing``: the
    pooler's left out by the caller), filled at random and frozen under the prompt; and weights it
    holds inside the base's own modules that the architecture has no place for (``unexpected``;
    a task head's, outside them, are left unsaid). Both mean a checkpoint that is not quite this
    architecture's: the model computes something else than it was trained to."""
    missing = sorted(missing)
    children = {n for n, _ in model.named_children()}
    stray = sorted(k for k in unexpected if k.split(".", 1)[0] in children)
    parts = []
    if missing:
        parts.append(f"lacks {_plural(len(missing), 'weight')}, which transformers filled at random (frozen under "
                     f"the prompt, they stay random): {_few(missing)}")
    if stray:
        parts.append(f"holds {_plural(len(stray), 'weight')} its architecture has no place for, left unused: "
                     f"{_few(stray)}")
    return f"warning: model '{name}' " + "; it ".join(parts) if parts else None


def mismatch_error(name: str, mismatched: Iterable[tuple]) -> Ptv2Error:
    """The error for checkpoint weights whose shapes are not the ones the config gives them
    (transformers' ``mismatched_keys``: ``(key, checkpoint shape, model shape)``)."""
    rows = sorted((str(k), list(ckpt), list(model)) for k, ckpt, model in mismatched)
    named = [f"{k} (checkpoint {ckpt}, config {model})" for k, ckpt, model in rows]
    verb = "does" if len(rows) == 1 else "do"
    return Ptv2Error(f"cannot load model '{name}': {len(rows)} of its weights {verb} not have the shapes its config "
                     f"gives them (a config.json that is not the checkpoint's own): {_few(named)}")
