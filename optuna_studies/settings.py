"""Where things live: embedded defaults on one machine, real services by configuration.

| concern        | default (nothing to start)            | cluster (environment)          |
| -------------- | ------------------------------------- | ------------------------------ |
| tracking       | sqlite:///$PTV2_HOME/mlflow.db        | MLFLOW_TRACKING_URI            |
| artifacts      | $PTV2_HOME/mlartifacts                | PTV2_ARTIFACT_ROOT (or server) |
| study storage  | sqlite:///$PTV2_HOME/optuna.db        | PTV2_OPTUNA_STORAGE            |
| trials         | local Ray (ray.init())                | RAY_ADDRESS                    |
| shared folder  | none: one machine                     | PTV2_SHARED_DIR (a mount)      |

``PTV2_HOME`` defaults to ``./.ptv2`` in the working directory. Explicit arguments (command-line
options, pipeline parameters) win over the environment, which wins over the defaults.
No import of mlflow/optuna/ray here: this module is read by every layer above the core.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn


def home_path() -> Path:
    """Where the local state folder is (``home()`` creates it)."""
    return Path(os.environ.get("PTV2_HOME", ".ptv2")).resolve()


def home() -> Path:
    """The local state folder (created on first use)."""
    path = home_path()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        _cannot_create(path, e)
    return path


def check_home() -> Path:
    """The local state folder, refused as ``home()`` would refuse it but without creating it (a
    command that creates it only when it has something to keep there): ``writable_probe``."""
    from ptv2_core.adapter import writable_probe

    path = home_path()
    _, error = writable_probe(path)
    if error is not None:
        _cannot_create(path, error)
    return path


def _cannot_create(path: Path, e: OSError) -> NoReturn:
    """The one wording of a state folder that cannot be made, for every command."""
    from ptv2_core.errors import Ptv2Error

    from ptv2_core.adapter import not_a_folder

    why = f"it {not_a_folder(path)}" if path.exists() and not path.is_dir() else e.strerror or e
    raise Ptv2Error(f"cannot create the state folder {path} (PTV2_HOME): {why}") from None


def mlflow_tracking_uri(explicit: str | None = None) -> str:
    """The store's URI; naming the default one creates nothing (a read of a store that was never
    written leaves no state folder behind): ``open_local_store`` makes its folder, when it opens it."""
    if explicit or os.environ.get("MLFLOW_TRACKING_URI"):
        return explicit or os.environ["MLFLOW_TRACKING_URI"]
    path = home_path()
    return f"sqlite:///{(path if path.is_dir() else check_home()) / 'mlflow.db'}"  # refused as home() would


def is_local_store(uri: str) -> bool:
    """True for a store this process opens itself (sqlite, another database, file), False for a server."""
    return not uri.startswith(("http://", "https://", "databricks"))


def artifact_root(explicit: str | None = None, tracking_uri: str | None = None) -> str | None:
    """Artifact location for new experiments in the store ``tracking_uri`` (default: the one in
    force). A local store gets ``$PTV2_HOME/mlartifacts``; a server chooses its own (None)."""
    if explicit or os.environ.get("PTV2_ARTIFACT_ROOT"):
        return explicit or os.environ["PTV2_ARTIFACT_ROOT"]
    if is_local_store(mlflow_tracking_uri(tracking_uri)):
        return (home() / "mlartifacts").as_uri()
    return None


def optuna_storage(explicit: str | None = None) -> str:
    return explicit or os.environ.get("PTV2_OPTUNA_STORAGE") or f"sqlite:///{home() / 'optuna.db'}"


def shared_dir(explicit: str | None = None) -> str | None:
    """A folder every node of a multi-machine Ray cluster mounts at the same path (searches keep
    their work there); None on one machine."""
    return explicit or os.environ.get("PTV2_SHARED_DIR") or None


def ray_address(explicit: str | None = None) -> str | None:
    """A Ray cluster to join, or None for a local Ray."""
    return explicit or os.environ.get("RAY_ADDRESS") or None
