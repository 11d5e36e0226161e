"""Progress bars: on a terminal, training shows each epoch and the dev and test scoring, `eval`
and `promote` show the rows they score; `--quiet` shows none, and neither does a log or a pipe
(nothing but the result on stdout, no bar in a captured stderr).

The terminal is real: the commands run in a child whose stderr is a pseudo-terminal, stdout a
pipe. Each step writes a marker line first, so the terminal's text splits per step.
"""
from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest

from conftest import run_cli

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a pseudo-terminal (Linux)")

CHILD = r"""
import json, sys
from pipelines.cli import main

for name, argv in json.loads(sys.argv[1]):
    print(f"=== {name}", file=sys.stderr, flush=True)
    try:
        main(argv)
    except SystemExit as e:  # main() always ends with sys.exit
        if e.code:
            print(f"FAILED with exit status {e.code}", file=sys.stderr, flush=True)
"""


def on_a_terminal(steps: dict[str, list[str]], env: dict) -> tuple[dict[str, str], str]:
    """Run the steps in one child with stderr on a pseudo-terminal: (terminal text per step, stdout)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # a new one is 0 columns wide
    proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(list(steps.items()))], stdout=subprocess.PIPE,
                            stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    out = proc.stdout.read().decode()
    assert proc.wait(timeout=600) == 0
    text = b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")
    per_step = {}
    for part in text.split("=== ")[1:]:
        name, _, body = part.partition("\n")
        per_step[name.strip()] = body
    return per_step, out


@pytest.fixture(scope="module")
def terminal(tmp_path_factory, minilm_path):
    tmp = tmp_path_factory.mktemp("progress")
    train = ["train", "--task", "trec", "--model", minilm_path, "--epochs", "2", "--max-train", "8", "--max-eval", "8",
             "--prompt-len", "4", "--batch-size", "4"]
    steps = {
        "train": [*train, "--out", str(tmp / "a")],
        "train_quiet": [*train, "--quiet", "--out", str(tmp / "b")],
        "eval": ["eval", "--adapter", str(tmp / "a"), "--max-eval", "8"],
    }
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    per_step, out = on_a_terminal(steps, env)
    assert list(per_step) == list(steps) and "FAILED with exit status" not in "".join(per_step.values()), per_step
    return tmp, per_step, out


def test_training_on_a_terminal_shows_epochs_and_scoring(terminal):
    _, steps, out = terminal
    text = steps["train"]
    for bar in ("epoch 1/2", "epoch 2/2", "score dev (epoch 1)", "score dev (epoch 2)", "score test"):
        assert bar in text, (bar, text[-2000:])
    assert any("score dev (epoch 1)" in seg and "0/8 [" in seg and "row/s" in seg
               for seg in text.split("\r"))  # the scoring bar counts rows, of the 8 dev rows
    # the line each epoch leaves goes with the bars, to stderr: stdout carries only the command's output
    assert "epoch 2: train loss" in text and "train loss" not in out


def test_quiet_training_shows_no_bar(terminal):
    tmp, steps, _ = terminal
    assert (tmp / "b" / "adapter.safetensors").is_file()
    assert "epoch 1/2" not in steps["train_quiet"] and "score" not in steps["train_quiet"], steps["train_quiet"]


def test_eval_shows_its_scoring_on_the_terminal_and_keeps_stdout_clean(terminal):
    _, steps, out = terminal
    assert "score dev" in steps["eval"] and "score test" in steps["eval"], steps["eval"]
    result = json.loads(out[out.index("{"):])  # train's summary lines, then eval's JSON: no bar on stdout
    assert result["task"] == "trec" and set(result) >= {"dev", "test"}


def test_no_bar_where_stderr_is_not_a_terminal(terminal):
    tmp, _, _ = terminal
    res = run_cli("eval", "--adapter", str(tmp / "a"), "--max-eval", "8")
    assert res.returncode == 0, res.stderr
    assert "score dev" not in res.stderr and "score test" not in res.stderr, res.stderr
    assert "encode trec" not in res.stderr, res.stderr  # the datasets library's own bar too
    assert json.loads(res.stdout)["task"] == "trec"


def test_training_off_a_terminal_leaves_epoch_lines_and_no_bar(terminal, minilm_path):
    """In a log (stderr not a terminal: nohup, CI, a pipeline step) training leaves one line per
    epoch on stderr and no bar; stdout has only the command's summary."""
    tmp, _, _ = terminal
    res = run_cli("train", "--task", "trec", "--model", minilm_path, "--epochs", "2", "--max-train", "8",
                  "--max-eval", "8", "--prompt-len", "4", "--batch-size", "4", "--out", str(tmp / "c"))
    assert res.returncode == 0, res.stderr
    assert "epoch 1: train loss" in res.stderr and "epoch 2: train loss" in res.stderr, res.stderr
    assert "epoch 1/2" not in res.stderr and "it/s" not in res.stderr, res.stderr  # no bar
    assert "train loss" not in res.stdout


@pytest.mark.parametrize("command", [
    ["train", "--task", "trec", "--prompt-len", "4"],
    ["pretrain", "--tasks", "trec", "--max-prompt-len", "4", "--lengths", "4", "--no-track"],
])
def test_train_and_pretrain_in_a_log_show_no_library_bar(tmp_path, minilm_path, command):
    """`ptv2 train ... 2> log` wrote datasets' "encode trec" bars (carriage returns) into the log,
    as eval did before. A fresh interpreter: the bars are switched off process-wide."""
    res = subprocess.run([sys.executable, "-m", "pipelines.cli", *command, "--model", minilm_path, "--epochs", "1",
                          "--max-train", "8", "--max-eval", "8", "--batch-size", "4", "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, stdin=subprocess.DEVNULL,
                         env=dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1"))
    assert res.returncode == 0, res.stderr
    assert "encode trec" not in res.stderr and "\r" not in res.stderr, res.stderr
    assert "epoch 1" in res.stderr, res.stderr  # the per-epoch line stays: only the bars go
