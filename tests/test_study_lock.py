"""One search per study: a second search of a study another one runs, into another --out, is
refused at once. Before, its --resume marked the first search's running trials as interrupted
and queued them again (run twice), and without --resume both ran the same study.

The holder is a real second process; the lock is a file beside a sqlite database, or a PostgreSQL
advisory lock (released when the holder's connection ends, as when a driver is killed).
"""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from ptv2_core.errors import Ptv2Error
from test_registry_support import postgres_database, postgres_url_or_skip

HOLDER = r"""
import sys, time
from optuna_studies.study_lock import study_lock
with study_lock(sys.argv[1], sys.argv[2]):
    print("held", flush=True)
    time.sleep(120)
"""


def holding(url: str, name: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, url, name], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def check_one_search_per_study(url: str) -> None:
    from optuna_studies.study_lock import study_lock

    holder = holding(url, "trec-study")
    try:
        with pytest.raises(Ptv2Error, match="another `ptv2 search` is running study 'trec-study' \\(perhaps into "
                                            "another --out\\)"):
            with study_lock(url, "trec-study"):
                pass
        with study_lock(url, "another-study"):  # other studies of the same storage are free
            pass
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 30
    while True:  # the killed holder's lock is gone (PostgreSQL notices the closed connection)
        try:
            with study_lock(url, "trec-study"):
                break
        except Ptv2Error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_a_sqlite_study_runs_one_search_at_a_time(tmp_path):
    check_one_search_per_study(f"sqlite:///{tmp_path}/optuna.db")
    assert [p.name for p in tmp_path.iterdir()] == []  # no lock file left behind


def test_a_postgres_study_runs_one_search_at_a_time():
    for url in postgres_database(postgres_url_or_skip()):
        check_one_search_per_study(url)


def test_an_unreachable_postgres_storage_is_one_error():
    from optuna_studies.study_lock import study_lock

    with pytest.raises(Ptv2Error, match="cannot reach the study storage postgresql://u:\\*\\*\\*@127.0.0.1:1/x"):
        with study_lock("postgresql://u:secret@127.0.0.1:1/x", "s"):
            pass
