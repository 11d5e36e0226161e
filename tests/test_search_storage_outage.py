"""A search whose Optuna study storage (the real PostgreSQL, reached through a TCP proxy this test
starts and kills: the server itself is shared) goes away after the first trial: one error line
naming --resume, no traceback, and a --resume through the proxy started again finishes the search."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from test_registry_support import BIN, base_env, free_port, postgres_url_or_skip

pytestmark = pytest.mark.slow

PROXY = """
import asyncio, sys
async def pipe(r, w):
    try:
        while (d := await r.read(65536)):
            w.write(d); await w.drain()
    except Exception:
        pass
    finally:
        w.close()
async def handle(cr, cw):
    try:
        sr, sw = await asyncio.open_connection(sys.argv[2], int(sys.argv[3]))
    except Exception:
        cw.close(); return
    await asyncio.gather(pipe(cr, sw), pipe(sr, cw))
async def main():
    async with await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1])) as srv:
        await srv.serve_forever()
asyncio.run(main())
"""
ARGS = ["search", "--task", "trec", "--model", "minilm", "--trials", "3", "--epochs", "1", "--max-train", "16",
        "--max-eval", "16", "--concurrency", "1"]


def _proxy(port: int, host: str, pg_port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", PROXY, str(port), host, str(pg_port)], start_new_session=True)
    time.sleep(1.5)
    return proc


def test_the_study_storage_lost_mid_search_is_one_error_line_and_resume_finishes(tmp_path):
    from sqlalchemy.engine import make_url

    pg = make_url(postgres_url_or_skip())
    port = free_port()
    storage = pg.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    env = base_env(PTV2_HOME=str(tmp_path / "home"), PTV2_OPTUNA_STORAGE=storage)
    out = tmp_path / "out"
    proxy = _proxy(port, pg.host or "127.0.0.1", pg.port or 5432)
    try:
        proc = subprocess.Popen([str(BIN / "ptv2"), *ARGS, "--out", str(out)], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if line.startswith("[1/3]"):
                os.killpg(proxy.pid, signal.SIGKILL)  # the database goes away, its connections with it
                proxy.wait()
                break
        try:
            _, rest = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"the search still ran 240 s after its study storage went away: {''.join(lines)}")
        err = "".join(lines) + rest
        assert proc.returncode == 2 and "Traceback" not in err, err
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"error: the study storage postgresql://{pg.username}@127.0.0.1:{port}/") \
            and "Connection refused" in last and "the trials that ended are kept (1 trial, in the study and " in last and "--resume" in last, err

        proxy = _proxy(port, pg.host or "127.0.0.1", pg.port or 5432)
        done = subprocess.run([str(BIN / "ptv2"), *ARGS, "--out", str(out), "--resume"], env=env, text=True,
                              capture_output=True, timeout=400)
        assert done.returncode == 0, done.stderr
        assert done.stderr.startswith("resuming study") and "1 of 3 trials done" in done.stderr, done.stderr
        assert (out / "best.json").is_file()
    finally:
        os.killpg(proxy.pid, signal.SIGKILL)
        proxy.wait()
