"""What produced an artifact: the ptv2 code (its version and, from a git checkout, its commit) and
the versions of the libraries its numbers depend on. Every adapter records them
(``adapter_config.json``'s ``provenance``), so that a run can be repeated, or a difference
explained, long after (docs/reproducibility.md)."""
from __future__ import annotations

import functools
import hashlib
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from ptv2_core import __version__

# the libraries that shape a result: the arithmetic (torch, numpy), the model code and its
# tokenization (transformers, tokenizers), the data and weight files (datasets, safetensors)
LIBRARIES = ("torch", "transformers", "tokenizers", "safetensors", "datasets", "numpy")


def _git(root: Path, *args: str, timeout: float = 5) -> bytes:
    """The output of ``git ARGS`` in ``root``. ``--no-optional-locks``: a plain ``git status`` refreshes
    and rewrites ``.git/index`` under index.lock, which can fail a user's commit or another process's
    git call in the same checkout at that moment."""
    return subprocess.run(["git", "--no-optional-locks", "-C", str(root), *args], capture_output=True,
                          timeout=timeout, check=True).stdout


@functools.cache
def git_commit() -> str | None:
    """The full commit of the checkout this code runs from, with ``.dirty`` when tracked files changed;
    None outside a git checkout (an installed package), also one installed inside another checkout
    (a project's ``.venv``: that project's commit says nothing of this code)."""
    root = Path(__file__).resolve().parents[1]
    try:
        top, sha = _git(root, "rev-parse", "--show-toplevel", "HEAD").decode().splitlines()
        if Path(top).resolve() != root:
            return None
        dirty = _git(root, "status", "--porcelain", "--untracked-files=no").strip()
    except (OSError, subprocess.SubprocessError, ValueError):  # ValueError: not the two lines asked for
        return None
    return (sha + ".dirty" if dirty else sha) if sha else None


@functools.cache
def git_diff_digest() -> str | None:
    """``sha256:<hex>`` of the changes to tracked files against the commit (``git diff HEAD``), when
    ``git_commit`` is ``.dirty``: the same changes give the same digest. None otherwise."""
    commit = git_commit()
    if not commit or not commit.endswith(".dirty"):
        return None
    root = Path(__file__).resolve().parents[1]
    try:
        diff = _git(root, "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff", timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return "sha256:" + hashlib.sha256(diff).hexdigest()


def code_version() -> str:
    """``<ptv2 version>`` plus ``+g<commit>[.dirty]`` (12 hex digits) when the code runs from a git checkout."""
    commit = git_commit()
    if not commit:
        return __version__
    sha, _, dirty = commit.partition(".")
    return f"{__version__}+g{sha[:12]}" + (".dirty" if dirty else "")


@functools.cache
def library_versions() -> dict[str, str]:
    """``{"python": "3.11.9", "torch": …, …}``: the installed versions of ``LIBRARIES`` (one not
    installed is left out)."""
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def provenance() -> dict:
    """The ``provenance`` an artifact records: ``code_version``, ``git_commit`` (from a checkout),
    ``git_diff_sha256`` (from a checkout with changes) and ``libraries``."""
    commit, diff = git_commit(), git_diff_digest()
    return {"code_version": code_version(), **({"git_commit": commit} if commit else {}),
            **({"git_diff_sha256": diff} if diff else {}), "libraries": library_versions()}


def hash_file(h, path: str | Path):
    """Feed a file's bytes to the hash ``h`` in 1 MiB blocks (a weights or data file may be large);
    returns ``h``."""
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h


def file_digest(path: str | Path) -> str:
    """``sha256:<hex>`` of a file's bytes (a pre-trained prompt's weights an adapter started from)."""
    return "sha256:" + hash_file(hashlib.sha256(), path).hexdigest()
