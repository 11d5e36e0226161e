"""What the driver does as trials start, report, retry and end: the nested MLflow run and the
trial record (see ``records.py``). A Ray Tune callback; it runs in Tune's driver, which under Ray
Client (``ray://`` addresses) is an actor on the cluster's head, not the process that called
``run_search``: so it carries the tracking URI itself (a password masked: ``setup`` finds it) instead
of relying on that process's MLflow settings, and writes records to the work folder by path (a
shared folder across machines).

The records are what the search ranks (``best.json``); the MLflow runs are the trials' view. A
store that fails (a server restarting, a locked or lost database) costs the runs' updates, not the
search: a callback that raised stopped Tune's driver, and with it every trial. A tracking server
that does not answer is left alone until its ``/health`` does again (``tracking_http.Outage``): the
callbacks run in Tune's driver loop, and each call waited out MLflow's retries while every trial's
results queued behind it. The runs missed meanwhile are logged from the records as the search ends
(``backfill.py``)."""
from __future__ import annotations

import math
import shutil
import time
from pathlib import Path
from typing import Callable

from ray.tune import Callback

from optuna_studies import records, tracking
from optuna_studies.searcher import trial_status
from optuna_studies.space import SearchSpace
from optuna_studies.store_guard import quietly, why
from ptv2_core.wording import count_of
from optuna_studies.tracking_http import Outage, apply_http_defaults, is_unreachable
from optuna_studies.tracking_setup import check_tracking_uri
from optuna_studies.urls import keep_secret, recall_secret

# Result keys worth logging per epoch (Tune adds its own bookkeeping keys to every result).
_SKIP = {"epoch", "done", "training_iteration", "trial_id", "time_this_iter_s", "time_total_s", "timestamp",
         "time_since_restore", "iterations_since_restore", "pid", "date", "hostname", "node_ip",
         "checkpoint_dir_name", "best_epoch"}


class TrialLog(Callback):
    """Nested MLflow run + record file per trial; prints one line as each trial starts
    (``trial 5 started (prompt_len 32, lr 0.003)``) and one as it ends, counted against the
    study's budget (``[4/12] trial 3 (...): completed, ...``). ``ended``: trials of the study that
    ended before this run (a resumed search), so the count goes on from there."""

    def __init__(self, parent_run_id: str, work: Path, space: SearchSpace, tracking_uri: str,
                 echo: Callable[[str], None] | None = None, ended: int = 0):
        self._parent, self._work, self._space = parent_run_id, Path(work), space
        # a bare postgresql:// with the installed driver; a password masked, as Tune pickles its callbacks
        # into the work folder (tuner.pkl) and under Ray Client ships them to the Ray head
        self._store = keep_secret(check_tracking_uri(tracking_uri))
        self._echo = echo or (lambda line: None)
        self._ended = ended
        self._runs: dict[str, str] = {}
        self._history: dict[str, list[dict]] = {}
        self._started: dict[str, float] = {}
        self._retries: dict[str, int] = {}
        self._lost: dict[str, int] = {}  # epochs trained by attempts whose worker died (compute spent)
        self._warned = False  # an MLflow failure is told once
        self._missed: set[str] = set()  # trials some of whose MLflow calls failed or were skipped
        self._outage = Outage()  # a tracking server that did not answer: skipped until it answers again

    def setup(self, **info) -> None:
        """In the process Tune's driver runs in: the parent run's MLflow store (a password from this
        process's memory, else from ``MLFLOW_TRACKING_URI``: ``urls.recall_secret``)."""
        import mlflow

        apply_http_defaults()  # bounded retries also where Tune's driver is a process of its own (Ray Client)
        mlflow.set_tracking_uri(recall_secret(*self._store, "MLFLOW_TRACKING_URI", "MLflow store"))

    def on_trial_start(self, iteration: int, trials: list, trial, **info) -> None:
        tid = trial.trial_id
        if tid in self._runs:  # a retried trial starts again: on_trial_recover opened its next run
            return
        number = trial.config.get("optuna_number")
        params = {"prompt_len": trial.config.get("prompt_len"), "lr": trial.config.get("lr"),
                  "epochs": trial.config.get("epochs"), "optuna_number": number, "seed": trial.config.get("seed")}
        tags = {"ptv2.kind": "trial", "ptv2.ray_trial_id": tid, "ptv2.optuna_number": str(number),
                "ptv2.status": "running"}
        name = tracking.trial_run_name(number, trial.config.get("prompt_len"), trial.config.get("lr"))
        self._runs[tid] = self._logged(f"open trial {number}'s run", tracking.start_trial_run, self._parent,
                                       name, params, tags, tid=tid)
        self._history[tid], self._started[tid], self._retries[tid] = [], time.time(), 0
        self._echo(f"trial {number} started ({_params_text(trial.config)})")

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict, **info) -> None:
        tid = trial.trial_id
        if tid not in self._runs:
            return
        row = {k: v for k, v in result.items() if k not in _SKIP and not k.startswith("config")}
        row["epoch"] = result.get("epoch")
        self._history[tid].append(row)
        if self._runs[tid]:
            self._logged(f"log an epoch of trial {trial.config.get('optuna_number')}", tracking.log_epoch,
                         self._runs[tid], {k: v for k, v in row.items() if k != "epoch"}, int(result.get("epoch", 0)),
                         tid=tid)

    def on_trial_recover(self, iteration: int, trials: list, trial, **info) -> None:
        tid = trial.trial_id
        self._retries[tid] = self._retries.get(tid, 0) + 1
        # it trains again from the first epoch: the record's history and epochs_run are the last
        # attempt's (what its result rests on), epochs_trained adds the lost attempts' epochs
        lost = len(self._history.get(tid, []))  # the epochs the lost attempt reported
        self._lost[tid] = self._lost.get(tid, 0) + lost
        self._history[tid] = []
        number = trial.config.get("optuna_number")
        if self._runs.get(tid):  # a run per attempt: both in one run put two points on every step
            # the store failing there keeps the lost attempt's run, for the trial's end to end it
            self._runs[tid] = self._logged(f"open trial {number}'s run for its retry", tracking.retry_trial_run,
                                           self._runs[tid], self._retries[tid] + 1, tid=tid) or self._runs[tid]
        if self._runs.get(tid):
            self._logged(f"tag trial {number}'s run", tracking.set_tags, self._runs[tid],
                         {"ptv2.retries": self._retries[tid]}, tid=tid)
        self._echo(f"trial {number}: worker lost after {count_of(lost, 'epoch')}, retrying ({self._retries[tid]})")

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        last = dict(trial.last_result or {})
        status = trial_status(last, self._space.epochs)
        adapter = None
        if status in ("completed", "pruned") and trial.checkpoint is not None:
            dest = records.adapter_dir(self._work, trial.trial_id)
            shutil.rmtree(dest, ignore_errors=True)
            trial.checkpoint.to_directory(str(dest))
            adapter = str(dest)
        self._finish(trial, status, last, adapter)

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        error = trial.get_error()
        message = str(error).strip().splitlines()[-1] if error else "the trial's worker failed"
        self._finish(trial, "error", dict(trial.last_result or {}) | {"failure": f"error: {message}"}, None)

    def _finish(self, trial, status: str, last: dict, adapter: str | None) -> None:
        tid = trial.trial_id
        best = last.get("best_objective")
        best = best if isinstance(best, (int, float)) and math.isfinite(best) and status in ("completed", "pruned") else None
        started = self._started.get(tid, time.time())
        record = {
            "number": trial.config.get("optuna_number"), "ray_trial_id": tid,
            "prompt_len": trial.config.get("prompt_len"), "lr": trial.config.get("lr"), "status": status,
            "best_score": best, "best_epoch": last.get("best_epoch"), "epochs_run": len(self._history.get(tid, [])),
            "retries": self._retries.get(tid, 0), "started": started, "ended": time.time(),
            "duration_s": time.time() - started, "mlflow_run_id": self._runs.get(tid), "failure": last.get("failure"),
            "adapter": adapter, "history": self._history.get(tid, []),
        }
        if status in ("diverged", "failed"):
            record["epochs_run"] = max(0, record["epochs_run"] - 1)  # the last report was the failure itself
        record["epochs_trained"] = record["epochs_run"] + self._lost.get(tid, 0)
        records.write_record(self._work, record)
        if self._runs.get(tid):  # a run this misses (the store failing) is ended as the search ends, or resumes
            tags, end = tracking.trial_run_end(record)
            what = f"end trial {record['number']}'s run"
            self._logged(what, tracking.set_tags, self._runs[tid], tags, tid=tid)
            self._logged(what, tracking.end_run, self._runs[tid], end, tid=tid)
        if tid in self._missed:  # what the run lacks is logged from this record as the search ends (backfill.py)
            records.write_record(self._work, record | {"mlflow_missed": True})
        self._ended += 1
        self._echo(f"[{self._ended}/{self._space.trials}] trial {record['number']} ({_params_text(trial.config)}): "
                   + end_text(record, self._space.metric))

    def _logged(self, what: str, call: Callable, *args, tid: str):
        """``call(*args)``'s value; None when MLflow failed (the first failure is told, once, instead of
        MLflow's own ERROR line and traceback for each call), and without calling it while a tracking
        server that did not answer still does not (``Outage``). ``tid``: the trial whose run it is, noted
        in ``_missed`` when the call did not happen."""
        was_down = self._outage.down
        if self._outage.skip():
            self._missed.add(tid)
            return None
        if was_down:
            self._echo("note: the MLflow tracking server answers again; the trials' runs are logged again, and "
                       "those it missed are logged from the trial records as the search ends")
        value, e = quietly(call, *args)  # the trial's record does not depend on it
        if e is not None:
            self._missed.add(tid)
        if e is not None and is_unreachable(e):
            import mlflow

            self._outage.begin(mlflow.get_tracking_uri())
        if e is not None and not self._warned:
            self._warned = True
            self._echo(f"warning: MLflow failed to {what} ({why(e)}); the search goes on, and its "
                       "trial records (trials.csv, best.json) are complete; what the trials' MLflow runs miss is logged from "
                       "those records as the search ends")
        return value


def end_text(record: dict, metric: str) -> str:
    """How a trial ended, on its ``[k/N]`` line: ``pruned, dev_score 0.2812 after 1 epoch``."""
    best, status, after = record.get("best_score"), record["status"], count_of(record["epochs_run"], "epoch")
    if best is not None:
        return f"{status}, {metric} {best:.4f} after {after}"
    reason = (record.get("failure") or "").removeprefix(f"{status}: ")  # the failure starts with the status
    return f"{status} after {after}" + (f": {reason}" if reason else "")


def _params_text(config: dict) -> str:
    """``prompt_len 16, lr 0.01``: a trial's configuration on its progress lines."""
    return f"prompt_len {config.get('prompt_len')}, lr {config.get('lr'):.3g}"
