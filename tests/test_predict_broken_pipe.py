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
    return os.environ | {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def test_the_status_is_what_a_shell_reports_for_a_writer_sigpipe_killed():
    proc = subprocess.run(["bash", "-c", "yes | head -1 >/dev/null; echo ${PIPESTATUS[0]}"], capture_output=True,
                          text=True)
    assert int(proc.stdout) == EXIT_STATUS == 141


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
