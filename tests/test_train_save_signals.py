"""A Ctrl-C or SIGTERM that comes while `ptv2 train` saves its adapter waits for the save: it used
to land mid-save (with --overwrite, between the files) or just after the adapter was renamed into
place, and the command exited 130/143 with its work done (a script would train again). Here the
real `main` runs in a fresh interpreter that sends itself the signal as the save begins."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import interruptible

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_during_the_save_waits_for_it_and_the_command_succeeds(tmp_path, sig):
    out = tmp_path / "trec"
    (tmp_path / "sig_in_save.py").write_text(
        "import os, signal, time\n"
        "import ptv2_core.adapter as adapter\n"
        "real = adapter.write_atomic_dir\n"
        "def write(*args, **kwargs):  # the signal lands as the files start to be written\n"
        f"    os.kill(os.getpid(), signal.{sig})\n"
        "    time.sleep(0.2)\n"
        "    return real(*args, **kwargs)\n"
        "adapter.write_atomic_dir = write\n"
        "import pipelines.cli as cli\n"
        f"cli.main(['train', '--task', 'trec', '--model', 'minilm', '--out', {str(out)!r}, '--epochs', '1',\n"
        "          '--max-train', '16', '--max-eval', '8', '--quiet'])\n")
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path)]))
    proc = subprocess.run([sys.executable, "-m", "sig_in_save"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, preexec_fn=interruptible, timeout=300)
    assert (proc.returncode, proc.stderr) == (0, ""), proc
    assert proc.stdout.strip().endswith(f"adapter written to {out}"), proc.stdout
    assert sorted(os.listdir(out)) == ["adapter.safetensors", "adapter_config.json", "metrics.json"]
