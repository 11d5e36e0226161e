"""Flushing written files to the disk before a rename publishes them.

A rename is atomic against a killed process, but after a power loss or an OS crash a renamed
file whose data never reached the disk can come back empty: a resume would then find no usable
checkpoint. Syncing the file before the rename, and the folder after it, closes that window.
"""
from __future__ import annotations

import os
from pathlib import Path


def sync(path: str | Path) -> None:
    """fsync a file, or a folder (its entries); a platform that cannot sync a folder is skipped."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. a folder on Windows
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sync_tree(folder: str | Path) -> None:
    """fsync every file under ``folder``, then every folder (``folder`` itself last): a copied tree
    on the disk before a rename, or a record naming it, publishes it."""
    folder = Path(folder)
    paths = sorted(folder.rglob("*"), key=lambda p: (p.is_dir(), -len(p.parts)))  # files first, deepest folders next
    for path in [*paths, folder]:
        if path.is_file() or path.is_dir():
            sync(path)
