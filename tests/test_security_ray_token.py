"""A local Ray's token file is owner-only: Ray 2.60 writes ``~/.ray/auth_token`` 0644, and the
token is all that guards a local Ray's ports (they listen on every interface)."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from optuna_studies.ray_token import keep_token_private


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_token_readable_by_others_is_made_owner_only_and_kept(home):
    (home / ".ray").mkdir()
    token = home / ".ray" / "auth_token"
    token.write_text("a" * 64)
    token.chmod(0o644)
    assert keep_token_private() == token
    assert mode(token) == 0o600 and token.read_text() == "a" * 64


def test_a_missing_token_is_created_owner_only(home):
    token = keep_token_private()
    assert token == home / ".ray" / "auth_token" and mode(token) == 0o600
    assert len(token.read_text()) == 64 and int(token.read_text(), 16) >= 0
    assert mode(home / ".ray") == 0o700


@pytest.mark.parametrize("env", [{"RAY_AUTH_MODE": "disabled"}, {"RAY_AUTH_TOKEN": "b" * 64},
                                 {"RAY_AUTH_TOKEN_PATH": "/elsewhere/token"}])
def test_no_file_is_made_where_ray_takes_no_token_from_it(home, monkeypatch, env):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert keep_token_private() is None and not (home / ".ray").exists()


def test_a_symlink_in_its_place_is_left_alone(home, tmp_path):
    (home / ".ray").mkdir()
    target = tmp_path / "elsewhere"
    target.write_text("x")
    target.chmod(0o644)
    (home / ".ray" / "auth_token").symlink_to(target)
    keep_token_private()
    assert mode(target) == 0o644 and target.read_text() == "x"


def test_a_local_ray_runs_on_the_token_made_here(home):
    """ptv2's local Ray (ray_session) makes the token file owner-only before Ray would write it with
    the umask's mode; Ray takes that file (it neither replaces it nor widens its mode) and runs a task."""
    script = ("import os\nimport ray\nfrom pathlib import Path\nfrom optuna_studies.ray_session import ray_session\n"
              "os.umask(0o022)\npath = Path.home() / '.ray' / 'auth_token'\n"
              "with ray_session(num_cpus=1):\n"
              "    made = path.read_text()\n"
              "    f = ray.remote(lambda: 42)\n"
              "    print(ray.get(f.remote()), oct(path.stat().st_mode & 0o777))\n"
              "print(path.read_text() == made, len(made))\n")
    env = dict(os.environ, HOME=str(home), PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=240)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split()[-4:] == ["42", "0o600", "True", "64"], res.stdout


def test_a_home_folder_that_cannot_be_written_is_left_to_ray(home, monkeypatch, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")  # no folder can be made under it, even by root
    monkeypatch.setenv("HOME", str(tmp_path / "a-file" / "home"))
    assert keep_token_private() is None


def _immutable(path: Path, on: bool) -> bool:
    """``chattr +i``: chmod then fails for real (EPERM, even for root); False where it is not available."""
    try:
        return subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True).returncode == 0
    except OSError:
        return False


def test_a_token_whose_mode_cannot_be_changed_is_left_to_ray(home):
    """A file system that refuses chmod (here an immutable file: EPERM) is no crash: the file is
    left as it is and returned (Ray reads it either way)."""
    (home / ".ray").mkdir()
    token = home / ".ray" / "auth_token"
    token.write_text("a" * 64)
    token.chmod(0o644)
    if not _immutable(token, True):
        pytest.skip("chattr +i is not available here (needs root and a file system that has it)")
    try:
        assert keep_token_private() == token
        assert mode(token) == 0o644 and token.read_text() == "a" * 64
    finally:
        _immutable(token, False)


def test_a_read_only_ray_folder_is_no_crash(home, monkeypatch):
    """~/.ray on a read-only mount: chmod fails with EROFS (made to here: a read-only mount needs
    privileges a test lacks); the token is left as it is and returned."""
    import errno

    (home / ".ray").mkdir()
    token = home / ".ray" / "auth_token"
    token.write_text("a" * 64)
    token.chmod(0o644)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "chmod", read_only)
    assert keep_token_private() == token
    assert mode(token) == 0o644


def test_a_token_made_group_readable_on_purpose_is_kept(home):
    """0640 has no bits for others: the user chose it (Ray's own 0644 is made 0600, above)."""
    (home / ".ray").mkdir()
    token = home / ".ray" / "auth_token"
    token.write_text("a" * 64)
    token.chmod(0o640)
    assert keep_token_private() == token and mode(token) == 0o640


def test_a_second_process_never_sees_an_empty_token(home, monkeypatch):
    """A second first-time process running while the first makes the token (here: inside the first
    one's token making) finds either no file or the whole token, never an empty file (Ray would
    then write its own token over it: two Rays with different tokens); both end on one token."""
    import secrets

    make = secrets.token_hex
    seen = []

    def second_process_meanwhile(n):
        value = make(n)
        if not seen:
            seen.append(None)
            path = keep_token_private()
            seen.append(path.read_text())
        return value

    monkeypatch.setattr(secrets, "token_hex", second_process_meanwhile)
    token = keep_token_private()
    assert len(seen[1]) == 64, seen
    assert token.read_text() == seen[1] and mode(token) == 0o600
    assert sorted(p.name for p in (home / ".ray").iterdir()) == ["auth_token"]  # no temporary file left


def test_a_file_system_without_hard_links_still_gets_an_owner_only_token(home, monkeypatch):
    """Where ``os.link`` is refused (some FUSE and network file systems: EPERM), the token is
    written to its place directly, owner-only."""
    import errno

    def no_links(*args, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    token = keep_token_private()
    assert token == home / ".ray" / "auth_token" and mode(token) == 0o600 and len(token.read_text()) == 64
    assert sorted(p.name for p in (home / ".ray").iterdir()) == ["auth_token"]
