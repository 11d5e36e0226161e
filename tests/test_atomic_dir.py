"""``write_atomic_dir``: an adapter (or prompt) folder is never seen half-written. A real process
writes it and is killed (SIGKILL) after each of its renames in turn; the folder it leaves is
read here."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parents[1])
CONFIG = "adapter_config.json"

# Writes version argv[2] of an adapter-like folder into argv[1]; after its argv[3]-th rename it
# says so and waits (to be killed); "done" when it wrote everything before that.
WRITER = """
import json, os, sys
from pathlib import Path
from ptv2_core.adapter import write_atomic_dir
out, version, stop = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
calls = []
def counted(real):
    def rename(*args, **kwargs):
        real(*args, **kwargs)
        calls.append(1)
        if len(calls) == stop:
            print("renamed", flush=True); sys.stdin.readline()
    return rename
os.replace, os.rename = counted(os.replace), counted(os.rename)
files = {"adapter.safetensors": version, "adapter_config.json": json.dumps({"v": version}), "metrics.json": version}
write_atomic_dir(out, files, marker="adapter_config.json")
print("done", flush=True)
"""


def _write_killed_after(out: Path, version: str, renames: int) -> str:
    """Run the writer; kill it after its ``renames``-th rename. Returns its last line."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(out), version, str(renames)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = proc.stdout.readline().strip()
        assert line in ("renamed", "done"), proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
    return line


def _versions(out: Path) -> dict[str, str]:
    """The version of each file of the folder (its config's by the JSON inside)."""
    found = {p.name: p.read_text() for p in out.iterdir() if not p.name.startswith(".")}
    if CONFIG in found:
        found[CONFIG] = json.loads(found[CONFIG])["v"]
    return found


def _assert_whole_or_no_adapter(out: Path) -> None:
    if not out.exists():
        return
    seen = _versions(out)
    if CONFIG in seen:  # a folder with a config is an adapter: all of one version
        assert len(set(seen.values())) == 1 and len(seen) == 3, seen


@pytest.mark.parametrize("renames", [1, 2, 3])
def test_a_new_folder_appears_whole(tmp_path, renames):
    """The folder was made first, then filled file by file: killed in between, it held the
    weights alone, or the weights and the config without the metrics."""
    out = tmp_path / "adapter"
    line = _write_killed_after(out, "new", renames)
    assert not out.exists() or _versions(out) == dict.fromkeys(("adapter.safetensors", CONFIG, "metrics.json"), "new")
    assert line == "renamed" or out.exists()
    assert [p.name for p in tmp_path.iterdir()] in ([], ["adapter"])  # no temporary folder left beside it


@pytest.mark.parametrize("renames", [1, 2, 3, 4])
def test_replacing_never_leaves_a_config_beside_a_mix_of_versions(tmp_path, renames):
    """With --overwrite the files were replaced one by one, the config among them: killed in
    between, new weights sat beside the old config and metrics, a loadable adapter that was
    neither. Now the config goes first and comes back last."""
    out = tmp_path / "adapter"
    assert _write_killed_after(out, "old", 99) == "done"
    (out / "notes.txt").write_text("mine")  # other files in the folder are kept
    line = _write_killed_after(out, "new", renames)
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    _assert_whole_or_no_adapter(out)
    if line == "done":
        assert _versions(out) == dict.fromkeys(("adapter.safetensors", CONFIG, "metrics.json"), "new")


def test_a_killed_writers_old_temporary_folder_goes_with_the_next_write(tmp_path):
    """SIGKILL leaves ``.adapter.<hex>.tmp`` beside the output; the next write of that output
    removes one older than an hour, and leaves a fresh one (a concurrent writer's) and another
    output's alone."""
    import os
    import time

    from ptv2_core.adapter import write_atomic_dir

    out = tmp_path / "adapter"
    old, fresh = tmp_path / ".adapter.0123456789ab.tmp", tmp_path / ".adapter.ba9876543210.tmp"
    other = tmp_path / ".adapter2.0123456789ab.tmp"  # another output's, as old
    for d in (old, fresh, other):
        d.mkdir()
        (d / "adapter.safetensors").write_text("half")
    two_hours_ago = time.time() - 7200
    for d in (old, other):
        os.utime(d, (two_hours_ago, two_hours_ago))
    write_atomic_dir(out, {CONFIG: "{}"}, marker=CONFIG)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["adapter", fresh.name, other.name])
    write_atomic_dir(out, {CONFIG: "{}"}, marker=CONFIG)  # into the existing folder: swept as well
    os.utime(fresh, (two_hours_ago, two_hours_ago))
    write_atomic_dir(out, {CONFIG: '{"v": 2}'}, marker=CONFIG)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["adapter", other.name])
    assert (out / CONFIG).read_text() == '{"v": 2}'
