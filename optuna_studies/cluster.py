"""A search on a Ray cluster of several machines needs a shared folder.

Ray Tune keeps each trial's checkpoints (its best adapter) in the experiment's storage, written
by the node that ran the trial; the trial records and adapters ``ptv2 search`` collects are
written by Tune's driver, which under Ray Client runs on the head node, not in the process
that called ``run_search``; and trials read the task's files and the pre-trained prompt by
path. On one machine all of these are the same disk. Across machines they must be one folder
that the driver, the head and every worker mount at the same path (NFS, EFS, Filestore, a
ReadWriteMany volume): ``--shared-dir`` or ``PTV2_SHARED_DIR``. Without it, a search that joins
a cluster with nodes on other hosts stops before its first trial with an error that says so,
instead of failing at the first checkpoint a worker writes.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from ptv2_core.errors import Ptv2Error


def other_hosts(nodes: list[dict], me: str) -> list[str]:
    """The addresses of alive Ray nodes that are not on host ``me`` (``ray.nodes()`` rows)."""
    return sorted({n["NodeManagerAddress"] for n in nodes
                   if n.get("Alive") and n.get("NodeManagerAddress") and n["NodeManagerAddress"] != me})


def require_one_host(where: str) -> None:
    """Ptv2Error when the connected Ray cluster (Ray must be initialized) has nodes on hosts other
    than this process's: the caller has no shared folder."""
    import ray

    hosts = other_hosts(ray.nodes(), ray.util.get_node_ip_address())
    if hosts:
        shown = ", ".join(hosts[:3]) + (f" and {len(hosts) - 3} more" if len(hosts) > 3 else "")
        raise Ptv2Error(f"the Ray cluster at '{where}' has nodes on other hosts ({shown}): trial checkpoints, "
                        "trial records and the task's files must be in a folder every node and this process "
                        "mount at the same path; give it with --shared-dir or PTV2_SHARED_DIR")


def check_shared_dir(shared: str | Path) -> Path:
    """The shared folder as an absolute path; it must exist (it is a mount, not created here)."""
    path = Path(shared).expanduser()
    if not path.is_absolute():
        raise Ptv2Error(f"--shared-dir must be an absolute path (the same on every node), got '{shared}'")
    if not path.is_dir():
        raise Ptv2Error(f"--shared-dir '{shared}' is not a folder (it should be a mount every Ray node shares)")
    return path


def is_inside(shared: Path, path: str | Path) -> bool:
    """True when ``path`` is the shared folder or lies below it (links resolved)."""
    p, root = Path(path).resolve(), shared.resolve()
    return p == root or root in p.parents


def require_inside(shared: Path, label: str, path: str | None) -> None:
    """Ptv2Error when a file input the trials read (``path``) lies outside the shared folder."""
    if path is not None and not is_inside(shared, path):
        raise Ptv2Error(f"the {label} '{path}' is outside --shared-dir '{shared}': trials on other nodes could "
                        f"not read it; copy it into the shared folder")


def file_store_path(uri: str) -> Path | None:
    """The file behind a sqlite URL or an MLflow file store; None for a server or a database server."""
    if uri.startswith("sqlite:///"):
        name = uri[len("sqlite:///"):].split("?", 1)[0]
        return None if name in ("", ":memory:") else Path(name).resolve()
    if uri.startswith("file:"):
        return Path(urlparse(uri).path).resolve()
    return None if "://" in uri else Path(uri).resolve()


def require_stores_in_shared(shared: Path, address: str, stores: dict[str, str]) -> None:
    """Ptv2Error when, under Ray Client (``ray://``: Tune's driver runs on the head, so the head opens
    the study storage and the MLflow store), a store is a file outside the shared folder."""
    for label, uri in stores.items():
        path = file_store_path(uri)
        if path is not None and not is_inside(shared, path):
            raise Ptv2Error(f"with Ray Client ('{address}') the {label} is opened on the cluster's head, so the "
                            f"file '{path}' must be inside --shared-dir '{shared}'; or use a server URL")
