"""Trials that wait for a busy cluster's resources are said to wait (optuna_studies/wait_note.py):
the command sat silent after its first line for as long as other work held the CPUs. In this
process, on the module's local Ray (2 CPUs), both held by another actor until the note comes."""
from __future__ import annotations

import threading
import time

from optuna_studies.search import run_search
from search_ray_support import SMALL, write_space, ptv2_home, trace_dir, mlflow_uri, local_ray  # noqa: F401
from test_search import tiny_model  # noqa: F401  (module fixture: a tiny BERT model folder)


def test_trials_waiting_for_a_busy_cluster_are_said_to_wait(local_ray, tiny_model, tmp_path, mlflow_uri, monkeypatch):
    import ray

    monkeypatch.setattr("optuna_studies.wait_note.WAIT_NOTE_S", 1.0)

    @ray.remote(num_cpus=2)
    class Hog:
        def ping(self) -> int:
            return 1

    hog = Hog.remote()
    ray.get(hog.ping.remote())
    lines: list[str] = []

    def release() -> None:  # the other work ends once the note is out (or after 60 s, so the test ends)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(line.startswith("note: no trial has run") for line in lines):
            time.sleep(0.2)
        ray.kill(hog)

    threading.Thread(target=release, daemon=True).start()
    result = run_search("trec", tiny_model, tmp_path / "out", space=write_space(tmp_path, trials=1),
                        storage=f"sqlite:///{tmp_path}/optuna.db", mlflow_uri=mlflow_uri, concurrency=1,
                        echo=lines.append, **SMALL)
    notes = [line for line in lines if line.startswith("note: no trial has run")]
    assert len(notes) == 1, lines
    assert " s: a trial needs 1 CPU and 0 GPU on one node, and the Ray cluster has 0 of 2 CPU and 0 of 0 GPU free " \
           "(other work holds them); the trials wait for them (Ctrl-C stops the search, --resume goes on)" in notes[0]
    assert lines.index(notes[0]) < next(i for i, line in enumerate(lines) if "started" in line)
    assert len(result.trials) == 1
