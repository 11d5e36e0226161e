"""Ray's token file, owner-only: the token is all that guards a local Ray (its GCS, raylets and
workers listen on every interface, docs/search.md), and Ray 2.60 writes ``~/.ray/auth_token`` with
the umask's mode (0644: any user of the machine who can enter the home folder reads it, and with
it runs code as this user in every later local Ray, since the token is kept and reused)."""
from __future__ import annotations

import os
import secrets
import stat
import tempfile
from pathlib import Path

TOKEN_FILE = Path(".ray") / "auth_token"  # under the home folder: where Ray looks and writes


def keep_token_private() -> Path | None:
    """Before a local ``ray.init``: a token file Ray made readable by others (the umask's mode) is
    made owner-only (0600; a mode without bits for others, such as 0640, was chosen and is kept);
    where Ray would create one (token mode not turned off, no token given by ``RAY_AUTH_TOKEN`` or
    ``RAY_AUTH_TOKEN_PATH``), it is created here owner-only first, as Ray makes it (64 hex digits),
    so that it is never readable by others. Returns the file (None: Ray takes its token from
    elsewhere, or runs without one)."""
    if os.environ.get("RAY_AUTH_MODE", "token").lower() != "token":
        return None
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return None
    path = Path.home() / TOKEN_FILE
    if not os.path.lexists(path):
        try:
            path.parent.mkdir(mode=0o700, exist_ok=True)
            if _create(path):
                return path
        except OSError:  # a home folder this process cannot write: Ray cannot write its token there either, and says so
            return None
    try:  # there already (or made meanwhile by another process: that token is the one)
        info = os.lstat(path)
        if stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid() and info.st_mode & 0o007:
            os.chmod(path, 0o600)
    except OSError:  # a read-only mount, a file system that refuses chmod: left as it is (Ray reads it either way)
        pass
    return path


def _create(path: Path) -> bool:
    """Write a token to ``path`` whole, never an empty file another process could see: into an
    owner-only temporary file beside it, then linked to ``path`` (False: a token was there first)."""
    token = secrets.token_hex(32)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".auth_token.")  # 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(token)
        os.link(tmp, path)  # fails where a token exists, unlike a rename
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: written in place, owner-only from the start
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(token)
    finally:
        os.unlink(tmp)
    return True
