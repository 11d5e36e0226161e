"""`ptv2 predict ... | head -1`: the reader closes the pipe early. ptv2 exited 1 (typer's silent
answer to EPIPE, the status of an error), or with output still buffered printed `Exception ignored
... BrokenPipeError` as the interpreter ended (status 120). Now it stops quietly with status 141,
as `yes | head -1`'s yes does (pipelines/cli/broken_pipe.py). Real processes and real pipes."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pipelines.cli.broken_pipe import EXIT_STATUS

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict:
    # output buffered as it is into a pipe (PYTHONUNBUFFERED, set in some shells, writes it at once)
    return {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"} | {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def test_output_still_buffered_at_the_end_is_no_exception_ignored():
    # a command's last lines sit in Python's buffer until the interpreter ends: flushed then into
    # the closed pipe, they printed "Exception ignored ... BrokenPipeError" and exited 120
    code = "from pipelines.cli.broken_pipe import quiet_exit\nwith quiet_exit():\n    print('x' * 100)"
    r, w = os.pipe()
    os.close(r)
    proc = subprocess.run([sys.executable, "-c", code], stdout=w, stderr=subprocess.PIPE, env=_env(), cwd=ROOT)
    os.close(w)
    assert (proc.returncode, proc.stderr) == (EXIT_STATUS, b"")


def test_help_into_a_pipe_its_reader_has_closed_ends_quietly():
    r, w = os.pipe()
    os.close(r)  # as `ptv2 --help | true` when true has exited first
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "--help"], stdout=w, stderr=subprocess.PIPE,
                          env=_env(), cwd=ROOT)
    os.close(w)
    assert (proc.returncode, proc.stderr) == (EXIT_STATUS, b"")


def test_other_broken_pipes_are_errors_still():
    # a BrokenPipeError that is not standard output's (a socket, a child's pipe) is a real error
    code = ("import os\nfrom pipelines.cli.broken_pipe import quiet_exit\nr, w = os.pipe()\nos.close(r)\n"
            "with quiet_exit():\n    os.write(w, b'x')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), cwd=ROOT)
    assert proc.returncode == 1 and "BrokenPipeError" in proc.stderr


def _closed_pipe_run(code: str) -> subprocess.CompletedProcess:
    """``code`` run with its standard output a pipe whose reader has gone (block-buffered, as into
    a pipe), inside quiet_exit."""
    body = "".join(f"    {line}\n" for line in code.splitlines())
    r, w = os.pipe()
    os.close(r)
    try:
        return subprocess.run([sys.executable, "-c", f"from pipelines.cli.broken_pipe import quiet_exit\n"
                               f"import os, sys\nwith quiet_exit():\n{body}"], stdout=w, stderr=subprocess.PIPE,
                              text=True, env=_env(), cwd=ROOT)
    finally:
        os.close(w)


def test_a_failed_command_keeps_its_status_when_only_the_last_flush_hits_the_closed_pipe():
    # an error (exit 2) after output still buffered: the flush into the closed pipe turned it into
    # 141, which `set -o pipefail` reads as the reader stopping, not as the error printed
    proc = _closed_pipe_run("print('x' * 100)\nprint('error: bad input', file=sys.stderr)\nraise SystemExit(2)")
    assert (proc.returncode, proc.stderr) == (2, "error: bad input\n")


def test_standard_output_pointed_at_dev_null_by_a_library_is_no_reader_gone():
    # fd 1 moved to /dev/null by someone other than rich, then a child's pipe breaks: a real error,
    # not a silent 141
    proc = _closed_pipe_run("devnull = os.open(os.devnull, os.O_WRONLY)\nos.dup2(devnull, 1)\n"
                            "r, w = os.pipe()\nos.close(r)\nos.write(w, b'x')")
    assert proc.returncode == 1 and "BrokenPipeError" in proc.stderr, proc.stderr


def test_without_poll_or_sigpipe_it_imports_and_a_broken_pipe_is_an_error(monkeypatch):
    """Windows has neither select.poll nor signal.SIGPIPE: the module read both at import (the CLI
    did not start there); now it imports, exits 141 never, and a broken pipe stays an error."""
    import importlib
    import select
    import signal

    from pipelines.cli import broken_pipe

    monkeypatch.delattr(select, "poll")
    monkeypatch.delattr(signal, "SIGPIPE")
    try:
        module = importlib.reload(broken_pipe)
        assert module.EXIT_STATUS == 141
        r, w = os.pipe()
        os.close(r)
        assert module._gone(w) is False
        os.close(w)
    finally:
        monkeypatch.undo()
        importlib.reload(broken_pipe)


@pytest.fixture(scope="module")
def trec(tmp_path_factory, minilm_path, one_torch_thread) -> Path:
    from tests.test_predict_table import _adapter

    return _adapter(tmp_path_factory.mktemp("trec"), "trec")


def test_predict_into_head_1_stops_quietly(trec, monkeypatch):
    """In this process (a fresh interpreter spends its seconds importing torch), standard output a
    real pipe whose reader takes one line and closes it, as `| head -1` does."""
    from pipelines.cli import main

    r, w = os.pipe()
    monkeypatch.setattr(sys, "stdout", open(w, "w", encoding="utf-8"))  # block-buffered, as into a pipe
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    first: list[bytes] = []

    def head_1():
        with os.fdopen(r, "rb") as reader:
            first.append(reader.readline())

    reader = threading.Thread(target=head_1)
    reader.start()
    # 30 JSON lines of 8,000 characters: far more than the pipe holds once the reader has gone
    texts = [f"text {i} " + "word " * 1600 for i in range(30)]
    try:
        with pytest.raises(SystemExit) as e:
            main(["predict", "--adapter", str(trec), "--json", *texts])
        err = sys.stderr.getvalue()
    finally:
        reader.join(30)
        stdout = sys.stdout
        monkeypatch.undo()
        stdout.close()
    assert first[0].startswith(b'{"text": "text 0 word')
    assert (e.value.code, err) == (EXIT_STATUS, "")
