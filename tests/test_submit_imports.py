"""`ptv2 submit` says a dead endpoint before it imports anything heavy: kfp and the pipeline, the
task code (datasets) and torch took seconds, all before the one request that found nothing there."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("kfp", "torch", "datasets", "transformers", "mlflow", "optuna", "ray", "pipelines.pipeline")

CHILD = r"""
import contextlib, io, json, sys
from pipelines.cli import main
err = io.StringIO()
with contextlib.redirect_stderr(err):
    try:
        main(["submit", "--host", sys.argv[1], "--tasks", "trec"])
        code = 0
    except SystemExit as e:
        code = e.code
loaded = [m for m in json.loads(sys.argv[2]) if m in sys.modules]
print(json.dumps({"code": code, "err": err.getvalue(), "loaded": loaded}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_dead_endpoint_is_said_with_nothing_heavy_imported():
    host = f"http://127.0.0.1:{free_port()}"  # bound and closed again: nothing listens there
    env = {k: v for k, v in os.environ.items() if k not in ("PTV2_KFP_TOKEN", "PTV2_KFP_COOKIE",
                                                          "KF_PIPELINES_SA_TOKEN_PATH")}
    proc = subprocess.run([sys.executable, "-c", CHILD, host, json.dumps(HEAVY)], capture_output=True, text=True,
                          cwd=ROOT, env=env | {"PYTHONPATH": str(ROOT)}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout.splitlines()[-1])
    assert res["code"] == 2 and res["err"] == f"error: cannot reach {host}: [Errno 111] Connection refused\n", res
    assert res["loaded"] == [], res["loaded"]
