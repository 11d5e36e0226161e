"""One Ray Tune run of a study: OptunaSearch (TPE, RDB storage) + ASHA over epochs, trials
sized by resources, retried on worker failure, each one logged by ``TrialLog`` (whose lines reach
the user under Ray Client too: ``client_echo``)."""
from __future__ import annotations

import logging
import os
import re
import signal
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import optuna

from optuna_studies.client_echo import run_fit
from optuna_studies.wait_note import WaitNote
from optuna_studies.cluster import require_one_host
from optuna_studies.plan import SearchPlan
from optuna_studies.ray_session import ray_session
from optuna_studies.searcher import StudySearch
from optuna_studies.trial_log import TrialLog

METRIC = "best_objective"  # running best of the space's metric: what ASHA compares and Optuna stores


# Ray Tune's console lines on a stopped run, by logger: none is for a ptv2 search's user, whose one
# error line says what is kept and how to go on.
TUNE_STOP_NOISE = {
    # "Resume experiment with: Tuner.restore(...)": a ptv2 search resumes with its own command and
    # ``--resume`` (the study holds the trials); and "Stop signal received (e.g. via SIGINT/Ctrl+C),
    # ending Ray Tune run. ... Press CTRL+C (or send SIGINT/SIGKILL/SIGTERM) to skip." (a second one
    # skips the drawing of the finished trials' table and pictures, not Tune's checkpoint)
    "ray.tune.tune": ("Experiment has been interrupted", "Stop signal received"),
    # "Failed to fetch metrics for N trial(s): ... FileNotFoundError(...)": trials stopped before their
    # first report have no result file; the search reads its own records, not Tune's
    "ray.tune.analysis.experiment_analysis": ("Failed to fetch metrics",),
}


def _not_tunes_stop_noise(record) -> bool:
    return not str(record.msg).startswith(TUNE_STOP_NOISE.get(record.name, ()))


# "Saving experiment state to storage at '<work folder>/ray/run-…' failed with exception:" and a
# traceback ending in "FileNotFoundError: … Failed to open local file '…/driver_artifacts/.<uuid>-tmp-
# searcher-state…'": Tune copies its driver's folder to the storage path in a background thread
# while the searcher saves its state there as a temporary file renamed into place, and a copy that
# listed the temporary file before the rename fails on it. Seen on a loaded machine as a search's
# last trial ended; the next save copies the state whole, and a ptv2 search resumes from its study
# and records, never from Tune's experiment state. Any other failure to save it is still shown.
EXPERIMENT_STATE_LOGGER = "ray.tune.execution.experiment_state"


# the temporary file's name: a dot, a UUID, "-tmp-" (a folder on the way named "x-tmp-y" is not one)
_TEMPORARY_FILE = re.compile(r"/\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-tmp-[^/]*$")


def _not_a_vanished_temporary_file(record) -> bool:
    error = record.exc_info[1] if record.exc_info else None
    missing = re.search(r"'([^']+)'", str(error)) if isinstance(error, FileNotFoundError) else None
    return not (str(record.msg).startswith("Saving experiment state to storage") and missing is not None
                and _TEMPORARY_FILE.search(missing.group(1)) is not None)


def quiet_tunes_stop() -> None:
    """Filter ``TUNE_STOP_NOISE``, and the failed copy of a temporary file that was renamed meanwhile
    (``_not_a_vanished_temporary_file``), out of Ray Tune's loggers (once per process)."""
    filters = {name: _not_tunes_stop_noise for name in TUNE_STOP_NOISE} | {
        EXPERIMENT_STATE_LOGGER: _not_a_vanished_temporary_file}
    for name, keep in filters.items():
        log = logging.getLogger(name)
        if keep not in log.filters:
            log.addFilter(keep)


@contextmanager
def tunes_handlers_removed() -> Iterator[None]:
    """Put SIGINT's and SIGUSR1's handlers back after the block (main thread only). ``Tuner.fit``
    sets its own on both as its trials start, and takes the one it set off only when it fires: after
    trials that ended normally it stayed for the rest of the command (scoring the best adapter,
    writing the output), where a Ctrl-C, or SIGTERM (``pipelines/cli/sigterm.py`` runs SIGINT's
    handler), only set a flag nobody reads any more, and its line is filtered out (``quiet_tunes_stop``)."""
    kept = [s for s in (signal.SIGINT, getattr(signal, "SIGUSR1", None)) if s is not None]
    previous = {s: signal.getsignal(s) for s in kept} if threading.current_thread() is threading.main_thread() else {}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            if handler is not None:  # None: set outside Python, cannot be put back
                signal.signal(signum, handler)


def run_tuner(plan: SearchPlan, storage: optuna.storages.BaseStorage, parent_run_id: str, ended: int,
              max_failures: int, ray_address: str | None, echo: Callable[[str], None], tracking_uri: str) -> None:
    """Run the trials left of the plan's study, ``plan.space.trials - ended`` (``ended``: those that
    ended before, in an earlier run: a resume), on the Ray ``run_search`` connected to
    (``ray_session`` reuses it; it checked the cluster's resources)."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from optuna_studies.trainable import tune_trainable

    # each improving epoch checkpoints; Tune's warning about frequent snapshots is noise here
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Ray Tune's new output engine prints a configuration box, "View detailed results here: <the work
    # folder, deleted when the search ends>" and a TensorBoard command even at verbose=0; the legacy
    # reporter at verbose=0 prints nothing. The trials' lines are TrialLog's. (Read as the run starts;
    # the environment's own value wins.)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    space = plan.space
    left = space.trials - ended
    quiet_tunes_stop()
    with ray_session(ray_address):
        if plan.shared is None:  # nodes may have joined since run_search checked
            require_one_host(ray_address or "local")
        search = StudySearch(space, plan.study_name, storage, METRIC)
        scheduler = ASHAScheduler(time_attr="epoch", max_t=space.epochs, grace_period=space.grace_period,
                                  reduction_factor=space.reduction_factor)
        trainable = tune.with_resources(tune_trainable, {"cpu": plan.cpus_per_trial, "gpu": plan.gpus_per_trial})

        def fit(driver_echo: Callable[[str], None]) -> None:  # driver_echo: where Tune's driver prints
            import warnings

            # a failed trial reports NaN on its last epoch; ASHA's cut-off over a rung holding only NaN
            # (np.nanpercentile) printed numpy's "All-NaN slice encountered" warning on stderr. No cut-off
            # there: the trial goes on, as with an empty rung
            warnings.filterwarnings("ignore", message="All-NaN slice encountered", category=RuntimeWarning)
            tune.Tuner(
                trainable,
                param_space=dict(plan.constants),
                tune_config=tune.TuneConfig(search_alg=search, scheduler=scheduler, metric=METRIC, mode=space.mode,
                                            num_samples=left, max_concurrent_trials=plan.concurrency,
                                            reuse_actors=True),
                run_config=tune.RunConfig(
                    name=f"run-{time.strftime('%Y%m%d-%H%M%S')}", storage_path=str(plan.work / "ray"), verbose=0,
                    failure_config=tune.FailureConfig(max_failures=max_failures),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                    # the study's trials that ended before (a resume) count on its progress lines
                    callbacks=[TrialLog(parent_run_id, plan.work, space, tracking_uri, driver_echo, ended=ended),
                               WaitNote(plan.cpus_per_trial, plan.gpus_per_trial, driver_echo)],
                ),
            ).fit()

        with tunes_handlers_removed():
            run_fit(fit, echo)
