"""The ``[k/N]`` line a search prints as a trial ends (``optuna_studies.trial_log.end_text``)."""
from __future__ import annotations

import pytest

from optuna_studies.trial_log import end_text


@pytest.mark.parametrize("status, failure, epochs, line", [
    ("failed", "failed: task 'trec' took part in pre-training with data seed 0", 0,
     "failed after 0 epochs: task 'trec' took part in pre-training with data seed 0"),
    ("diverged", "diverged: loss became nan at epoch 2", 1, "diverged after 1 epoch: loss became nan at epoch 2"),
    ("error", "error: the actor died unexpectedly", 3, "error after 3 epochs: the actor died unexpectedly"),
])
def test_a_failed_trial_says_its_status_once_then_why(status, failure, epochs, line):
    """It read ``failed, failed: task 'trec' took part ... use seed 0 after 0 epochs``: the status
    twice, and the epoch count glued to the end of the reason as if it were part of it."""
    record = {"status": status, "best_score": None, "failure": failure, "epochs_run": epochs}
    assert end_text(record, "dev_score") == line


def test_a_trial_with_a_score_says_it():
    record = {"status": "pruned", "best_score": 0.28125, "failure": None, "epochs_run": 1}
    assert end_text(record, "dev_score") == "pruned, dev_score 0.2812 after 1 epoch"
    record = {"status": "completed", "best_score": 0.53125, "failure": None, "epochs_run": 2}
    assert end_text(record, "dev_loss") == "completed, dev_loss 0.5312 after 2 epochs"
