"""Outputs against file system trouble: an output folder on another file system than its parent
(a mount point: renames cannot cross), a write that runs out of room, an unusable TMPDIR, an
``--out`` that is a dangling symbolic link. Each ends in one ``error:`` line naming the output,
or succeeds, and leaves nothing half-written. No mounts needed: ``/dev/shm`` (a tmpfs) stands
for the other file system, and RLIMIT_FSIZE makes a write fail as a full disk would (EFBIG)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parents[1])
CONFIG = "adapter_config.json"
SHM = Path("/dev/shm")


@pytest.fixture
def other_fs_folder(tmp_path):
    """An empty folder on another file system than ``tmp_path``, reached through a symbolic link
    in ``tmp_path`` (as a mount point at --out is reached): ``(link, target)``."""
    if not SHM.is_dir() or os.stat(SHM).st_dev == os.stat(tmp_path).st_dev or not os.access(SHM, os.W_OK):
        pytest.skip("needs a writable /dev/shm on another file system than the test's tmp_path")
    import tempfile

    target = Path(tempfile.mkdtemp(prefix="ptv2-test-", dir=SHM))
    link = tmp_path / "out"
    link.symlink_to(target)
    yield link, target
    import shutil

    shutil.rmtree(target, ignore_errors=True)


@pytest.mark.parametrize("existing", [False, True])
def test_an_output_folder_on_another_file_system_is_written(other_fs_folder, tmp_path, existing):
    """Staged beside it, the files could not be renamed into it (EXDEV: 'Invalid cross-device
    link'): the trained adapter or pre-trained prompt was lost, with a traceback."""
    from ptv2_core.adapter import write_atomic_dir

    out, target = other_fs_folder
    if existing:
        (target / CONFIG).write_text('{"v": "old"}')
        (target / "notes.txt").write_text("mine")
    write_atomic_dir(out, {"adapter.safetensors": b"w" * 1000, CONFIG: '{"v": "new"}'}, marker=CONFIG)
    assert json.loads((target / CONFIG).read_text()) == {"v": "new"}
    assert (target / "adapter.safetensors").read_bytes() == b"w" * 1000
    assert sorted(p.name for p in target.iterdir()) == sorted(
        ["adapter.safetensors", CONFIG] + (["notes.txt"] if existing else []))  # no temporary left inside
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nor beside


# Writes an adapter-like folder into argv[1] under a file size limit of argv[2] bytes; prints the
# error's text.
LIMITED_WRITER = """
import resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.RLIM_INFINITY))
from ptv2_core.adapter import write_atomic_dir
from ptv2_core.errors import Ptv2Error
try:
    write_atomic_dir(Path(sys.argv[1]), {"adapter.safetensors": b"w" * 100_000, "adapter_config.json": "{}"},
                     marker="adapter_config.json")
except Ptv2Error as e:
    print("Ptv2Error:", e)
"""


@pytest.mark.parametrize("existing", [False, True])
def test_a_write_that_runs_out_of_room_names_the_folder_and_leaves_it_as_it_was(tmp_path, existing):
    """A file too large (EFBIG, as a full disk's ENOSPC) was a traceback; now one Ptv2Error that
    names the folder and the reason; no temporary folder is left, an existing folder is intact."""
    out = tmp_path / "adapter"
    if existing:
        out.mkdir()
        (out / CONFIG).write_text('{"v": "old"}')
    res = subprocess.run([sys.executable, "-c", LIMITED_WRITER, str(out), "50000"], capture_output=True, text=True,
                         cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"Ptv2Error: cannot write '{out}': File too large; nothing was written there"), \
        res.stdout
    if existing:
        assert sorted(p.name for p in out.iterdir()) == [CONFIG] and (out / CONFIG).read_text() == '{"v": "old"}'
    assert sorted(p.name for p in tmp_path.iterdir()) == (["adapter"] if existing else [])


def test_a_dangling_symbolic_link_at_out_is_refused_before_any_work(tmp_path):
    """Taken for a new folder, it failed at the last step, the rename (ENOTDIR), after the run."""
    from ptv2_core.adapter import check_out_dir
    from ptv2_core.errors import Ptv2Error

    link = tmp_path / "out"
    link.symlink_to(tmp_path / "missing")
    with pytest.raises(Ptv2Error, match="is a symbolic link to .*missing', which does not exist"):
        check_out_dir(link, overwrite=False)


def test_adapter_and_prompt_files_are_made_without_tmpdir(tmp_path, monkeypatch):
    """The weights were serialized through a temporary file: a full TMPDIR lost a trained adapter
    (or a pre-trained prompt) at the save. Now in memory: a TMPDIR that cannot be used is no matter."""
    import tempfile

    import torch
    from safetensors.torch import load

    from ptv2_core.multitask.pretrained import artifact_files

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(blocker / "tmp"))  # nothing can be created there
    with pytest.raises(OSError):  # as the old code path was hit
        tempfile.TemporaryDirectory()
    files = artifact_files({"prefix.w": torch.ones(2, 3)}, {"x": 1})
    assert load(files["prompt.safetensors"])["prefix.w"].tolist() == [[1.0] * 3] * 2


def test_adapter_files_are_made_without_tmpdir(tmp_path, monkeypatch, minilm_path):
    import tempfile

    from safetensors.torch import load

    from ptv2_core.adapter import adapter_files
    from ptv2_core.build import build_model
    from ptv2_core.tasks import load_task
    from conftest import tiny_backbone

    spec, _ = load_task("trec", max_train=1, max_eval=1)
    model = build_model(tiny_backbone("bert"), spec, 4, max_length=spec.max_length)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(blocker / "tmp"))
    files = adapter_files(model, spec, "tiny", "0" * 64)
    assert set(load(files["adapter.safetensors"])) == set(model.trainable_state())


def test_compile_out_of_room_is_one_error_line_and_no_file(tmp_path):
    """`ptv2 compile` under a file size limit below the YAML's size: a traceback before."""
    import resource

    out = tmp_path / "p.yaml"

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.RLIM_INFINITY))

    res = subprocess.run([sys.executable, "-m", "pipelines.cli", "compile", "--out", str(out)], capture_output=True,
                         text=True, cwd=ROOT, preexec_fn=limit,
                         env={**os.environ, "PYTHONPATH": ROOT})
    assert res.returncode == 2, res.stderr
    assert res.stderr.splitlines() == [f"error: --out '{out}' cannot be written: File too large"], res.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def trec_adapter(tmp_path_factory, minilm_path, one_torch_thread) -> Path:
    from tests.test_predict_table import _adapter

    return _adapter(tmp_path_factory.mktemp("trec"), "trec")


def _table(tmp_path: Path, rows: int) -> Path:
    src = tmp_path / "in.csv"
    src.write_text("text\n" + "".join(f"What is the capital of country number {i} ?\n" for i in range(rows)))
    return src


def test_predict_to_stdout_with_no_room_in_tmpdir_is_one_error_line_naming_it(trec_adapter, tmp_path):
    """The table for standard output is held in an anonymous file in TMPDIR until every row is
    labelled: a full TMPDIR (here: the file size limit) was a traceback, now one line naming it."""
    import resource

    src = _table(tmp_path, 400)  # about 30 KB labelled

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, resource.RLIM_INFINITY))

    res = subprocess.run([sys.executable, "-m", "pipelines.cli", "predict", "--adapter", str(trec_adapter), "--file",
                          str(src), "--device", "cpu"], capture_output=True, text=True, cwd=ROOT, preexec_fn=limit,
                         env={**os.environ, "PYTHONPATH": ROOT, "TMPDIR": str(tmp_path)})
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert lines[-1] == (f"error: cannot hold the labelled table in a temporary file in '{tmp_path}' (TMPDIR): "
                         "File too large; give --out, or set TMPDIR to a folder with room"), res.stderr
    assert not any(line.startswith(("Traceback", "error:")) for line in lines[:-1]), res.stderr
    assert res.stdout == ""  # nothing printed of a table that was not labelled whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_predict_out_a_dangling_symbolic_link_is_refused_before_labelling(trec_adapter, tmp_path):
    """It was taken for a file written while the table was labelled, after the labelling."""
    from tests.conftest import run_cli

    src = _table(tmp_path, 3)
    out = tmp_path / "out.csv"
    out.symlink_to(tmp_path / "missing" / "out.csv")
    res = run_cli("predict", "--adapter", str(trec_adapter), "--file", str(src), "--out", str(out))
    assert res.returncode == 2, res.stderr
    assert res.stderr.splitlines() == [f"error: --out '{out}' is a symbolic link to '{tmp_path / 'missing' / 'out.csv'}', "
                                       "which does not exist"], res.stderr
    assert res.stdout == ""


@pytest.fixture
def mounted_tmpfs(tmp_path):
    """An empty tmpfs mounted at ``tmp_path/out`` (root only): a mount point as --out."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the mount point case; the symbolic link tests cover the rest)")
    point = tmp_path / "out"
    point.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(point)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", str(point)], check=True)


def test_a_search_output_at_a_mount_point_is_written(mounted_tmpfs, tmp_path):
    """``write_output`` resolves symbolic links, so only a real mount point showed it: the entries
    staged beside the folder could not be renamed into it (EXDEV), the search's result lost."""
    from optuna_studies.output import write_output

    (mounted_tmpfs / "notes.txt").write_text("mine")
    adapter = tmp_path / "src"
    adapter.mkdir()
    (adapter / CONFIG).write_text("{}")
    write_output(mounted_tmpfs, {"best": 1}, adapter, {})
    assert json.loads((mounted_tmpfs / "best.json").read_text()) == {"best": 1}
    assert sorted(p.name for p in mounted_tmpfs.iterdir()) == ["adapter", "best.json", "notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]


def test_an_adapter_at_a_mount_point_is_written(mounted_tmpfs, tmp_path):
    from ptv2_core.adapter import write_atomic_dir

    write_atomic_dir(mounted_tmpfs, {CONFIG: "{}"}, marker=CONFIG)
    assert sorted(p.name for p in mounted_tmpfs.iterdir()) == [CONFIG]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# In a mount namespace of its own, argv[1] bind-mounted onto itself (the same file system, another
# mount: a Docker volume inside a volume, a Kubernetes hostPath or subPath), writes the output
# kind argv[2] (adapter, search) into that existing folder, which is not empty; prints the
# error's text, if any. Adapter source of a search in argv[3].
BIND_MOUNTED_WRITER = """
import errno, os, sys
from pathlib import Path
out = Path(sys.argv[1])
assert os.stat(out).st_dev == os.stat(out.parent).st_dev  # st_dev cannot tell it
probe = out.parent / ".probe"
probe.write_text("")
try:
    os.rename(probe, out / ".probe")
    sys.exit("a rename into the bind mount worked: no cross-mount case here")
except OSError as e:
    assert e.errno == errno.EXDEV, e
finally:
    probe.unlink()
from ptv2_core.errors import Ptv2Error
try:
    if sys.argv[2] == "adapter":
        from ptv2_core.adapter import write_atomic_dir
        write_atomic_dir(out, {"adapter.safetensors": b"w" * 1000, "adapter_config.json": '{"v": "new"}'},
                         marker="adapter_config.json")
    else:
        from optuna_studies.output import write_output
        write_output(out, {"best": 1}, Path(sys.argv[3]), {})
except Ptv2Error as e:
    print("Ptv2Error:", e)
"""


def _run_bind_mounted(out: Path, *args: str, script: str = BIND_MOUNTED_WRITER,
                      point: Path | None = None) -> subprocess.CompletedProcess:
    """``script`` run with ``out`` and ``args``, ``point`` (default: ``out``) bind-mounted onto itself."""
    point = point or out
    if os.geteuid() != 0:
        pytest.skip("a bind mount in a mount namespace of its own needs root (unshare -m)")
    mount = 'mount --bind "$1" "$1" || exit 77; shift; exec "$@"'
    probe = subprocess.run(["unshare", "-m", "sh", "-c", mount, "sh", str(point), "true"], capture_output=True,
                           text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot bind-mount in a mount namespace here: {probe.stderr.strip()}")
    return subprocess.run(["unshare", "-m", "sh", "-c", mount, "sh", str(point), sys.executable, "-c",
                           script, str(out), *args], capture_output=True, text=True, cwd=ROOT)


def test_an_adapter_into_a_bind_mount_of_the_same_file_system_is_written(tmp_path):
    """A bind mount has its parent's st_dev, so the files were staged beside it, the rename into
    it failed (EXDEV), and the old config was removed with the new adapter lost, under a message
    that said the same command again would write it (it fails the same way every time)."""
    out = tmp_path / "adapter"
    out.mkdir()
    (out / CONFIG).write_text('{"v": "old"}')
    (out / "notes.txt").write_text("mine")
    res = _run_bind_mounted(out, "adapter")
    assert res.returncode == 0 and res.stdout == "", res.stdout + res.stderr
    assert json.loads((out / CONFIG).read_text()) == {"v": "new"}
    assert (out / "adapter.safetensors").read_bytes() == b"w" * 1000
    assert sorted(p.name for p in out.iterdir()) == sorted(["adapter.safetensors", CONFIG, "notes.txt"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]


def test_a_search_output_into_a_bind_mount_of_the_same_file_system_is_written(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    adapter = tmp_path / "src"
    adapter.mkdir()
    (adapter / CONFIG).write_text("{}")
    res = _run_bind_mounted(out, "search", str(adapter))
    assert res.returncode == 0 and res.stdout == "", res.stdout + res.stderr
    assert json.loads((out / "best.json").read_text()) == {"best": 1}
    assert sorted(p.name for p in out.iterdir()) == ["adapter", "best.json", "notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]


# Writes an adapter into the existing folder argv[1]; prints the error's text.
ADAPTER_WRITER = """
import sys
from pathlib import Path
from ptv2_core.adapter import write_atomic_dir
from ptv2_core.errors import Ptv2Error
try:
    write_atomic_dir(Path(sys.argv[1]), {"adapter.safetensors": b"w", "adapter_config.json": "{}"},
                     marker="adapter_config.json")
except Ptv2Error as e:
    print("Ptv2Error:", e)
"""


def test_a_write_that_would_fail_again_does_not_say_the_same_command_writes_it(tmp_path):
    """A failure after the old config was removed said "the same command again writes it" whatever
    the cause; a file of the folder that cannot be replaced (here a bind mount onto itself) fails
    the same way every time, so only a failure for want of room says so."""
    out = tmp_path / "adapter"
    out.mkdir()
    (out / CONFIG).write_text("{}")
    (out / "adapter.safetensors").write_bytes(b"old")
    res = _run_bind_mounted(out, script=ADAPTER_WRITER, point=out / "adapter.safetensors")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"Ptv2Error: cannot write '{out}': "), res.stdout
    assert f"its {CONFIG} was removed (the folder reads as unwritten)" in res.stdout, res.stdout
    assert "same command" not in res.stdout, res.stdout


# Saves a pre-training checkpoint of a 100x100 linear layer into argv[1] under a file size limit.
LIMITED_CHECKPOINT = """
import resource, sys
from pathlib import Path
import torch
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.RLIM_INFINITY))
from ptv2_core.errors import Ptv2Error
from ptv2_core.multitask.checkpoint import save_checkpoint
layer = torch.nn.Linear(100, 100)
opt = torch.optim.AdamW(layer.parameters())
layer(torch.ones(1, 100)).sum().backward()
opt.step()
try:
    save_checkpoint(Path(sys.argv[1]), 1, layer.state_dict(), opt, {}, keep=2)
except Ptv2Error as e:
    print("Ptv2Error:", e)
"""


def test_a_checkpoint_that_runs_out_of_room_is_named_and_leaves_no_partial_file(tmp_path):
    """`ptv2 pretrain` saving a checkpoint on a full disk was a traceback (safetensors' own I/O
    error) and left the partial ``.epoch-1.safetensors.tmp`` behind."""
    ckpt = tmp_path / "checkpoints"
    res = subprocess.run([sys.executable, "-c", LIMITED_CHECKPOINT, str(ckpt)], capture_output=True, text=True,
                         cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"Ptv2Error: cannot write the checkpoint '{ckpt / 'epoch-1.safetensors'}': File too large;"), res.stdout
    assert res.stdout.strip().endswith("the checkpoints before it are kept"), res.stdout
    assert list(ckpt.iterdir()) == []


@pytest.mark.parametrize("wrapped", [False, True])
def test_no_room_where_no_step_names_its_output_is_still_one_error_line(tmp_path, monkeypatch, wrapped):
    """The last net, in the command line: any write that found no room (here: the compiler itself
    failing so), also one wrapped in Ray Tune's TuneError (as a full disk under `ptv2 search`'s
    work folder is: Tune raises it while handling its callback's error), is one line with the
    path, exit status 2, not a traceback."""
    import errno
    import traceback

    from ray.tune.error import TuneError

    import pipelines.compile
    from tests.conftest import run_cli

    def full(*args, **kwargs):
        room = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "x"))
        if not wrapped:
            raise room
        try:
            raise room
        except OSError:
            raise TuneError(traceback.format_exc())  # as Ray Tune's controller wraps a callback's error

    monkeypatch.setattr(pipelines.compile, "compile_pipeline", full)
    res = run_cli("compile", "--out", str(tmp_path / "p.yaml"))
    assert res.returncode == 2, res.stderr
    assert res.stderr.splitlines() == [f"error: No space left on device: '{tmp_path / 'x'}'"]


class _Bug(Exception):
    pass


@pytest.mark.parametrize("how", ["while_handling", "from_none", "from_it", "tune_over_bug"])
def test_a_bug_raised_while_handling_no_room_keeps_its_traceback(tmp_path, monkeypatch, how):
    """The no-room net followed every ``__context__``: a bug raised while handling a full disk
    (even ``raise ... from None``, or a bug Ray Tune wrapped) printed `error: No space left on
    device` with exit status 2 and its traceback was lost. Only an OSError or Tune's TuneError
    is looked through, and a suppressed context is not."""
    import errno
    import traceback

    from ray.tune.error import TuneError

    import pipelines.compile
    from tests.conftest import run_cli

    def buggy(*args, **kwargs):
        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "x"))
        except OSError as e:
            if how == "while_handling":
                raise _Bug("a bug in the handler")
            if how == "from_none":
                raise _Bug("a bug in the handler") from None
            if how == "from_it":
                raise _Bug("a bug in the handler") from e
            try:
                raise _Bug("a bug in the handler")
            except _Bug:
                raise TuneError(traceback.format_exc())

    monkeypatch.setattr(pipelines.compile, "compile_pipeline", buggy)
    with pytest.raises(TuneError if how == "tune_over_bug" else _Bug):
        run_cli("compile", "--out", str(tmp_path / "p.yaml"))


# Writes a trial record into argv[1] under a file size limit of 10 bytes.
LIMITED_RECORD = """
import resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_FSIZE, (10, resource.RLIM_INFINITY))
from optuna_studies.records import write_record
try:
    write_record(Path(sys.argv[1]), {"ray_trial_id": "t1", "score": 0.5})
except OSError as e:
    print(e.errno, e.filename)
"""


def test_a_trial_record_that_finds_no_room_names_itself_and_leaves_no_partial_file(tmp_path):
    """A full disk under `ptv2 search`'s work folder: the record's error had no path, and its
    partial ``.record.*`` file stayed."""
    import errno

    res = subprocess.run([sys.executable, "-c", LIMITED_RECORD, str(tmp_path)], capture_output=True, text=True,
                         cwd=ROOT)
    assert res.returncode == 0, res.stderr
    folder = next(p for p in tmp_path.rglob("*") if p.is_dir())
    assert res.stdout.split() == [str(errno.EFBIG), str(folder / "t1.json")]
    assert list(folder.iterdir()) == []
