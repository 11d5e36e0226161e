"""ptv2 holds back transformers' LOAD REPORT of its own load only: the logger's filter is the
process's, so a report another thread logs meanwhile (a load that is not ptv2's) was held, and never
let out."""
from __future__ import annotations

import logging
import threading

from ptv2_core.load_report import load_report_held


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_another_threads_load_report_passes_while_one_thread_holds_its_own():
    logger = logging.getLogger("transformers.modeling_utils")
    kept = _Kept()
    logger.addHandler(kept)
    try:
        with load_report_held():
            logger.warning("BertModel LOAD REPORT from: ptv2's own\ntable")
            other = threading.Thread(target=logger.warning, args=("BertModel LOAD REPORT from: another's\ntable",))
            other.start()
            other.join()
    finally:
        logger.removeHandler(kept)
    assert kept.messages == ["BertModel LOAD REPORT from: another's\ntable"]
