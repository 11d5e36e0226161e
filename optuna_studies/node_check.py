"""Every node of a joined Ray cluster must see the shared folder and run the same code.

Trials run ptv2, torch and transformers as installed on the node that runs them (the trainable
is imported there by name, not shipped from this process), and write their checkpoints into the
shared folder as that node mounts it. A node that does not mount it failed each trial it got only
at the trial's first checkpoint, after an epoch of training, with Ray's 60-line traceback (and
the search called it a lost worker and retried it, perhaps on the same node); a node with another
ptv2 or torch trained with other code than the search records. So once joined, the search runs
one small task on each live node (no CPU reserved) and refuses, in one line, a node that does not
see a file this process wrote into the shared folder, or cannot write there, or whose versions
differ from this process's. Nodes that join later (an autoscaler's) are not probed.
"""
from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from ptv2_core.errors import Ptv2Error

PROBE_TIMEOUT_S = 60.0
# what must match between this process and every node: the ptv2 version and the libraries that train
COMPARED = ("ptv2", "python", "torch", "transformers", "tokenizers", "safetensors")


def node_facts(marker: str | None) -> dict:
    """What a node runs (the versions in ``COMPARED``; a local build label such as torch's ``+cpu``
    or ``+cu128`` dropped, a CPU driver may serve GPU workers) and, given ``marker`` (a file in the
    shared folder), whether it sees that file and may write beside it."""
    from ptv2_core import __version__
    from ptv2_core.provenance import library_versions

    versions = {"ptv2": __version__} | library_versions()
    facts: dict = {"versions": {k: versions[k].split("+", 1)[0] for k in COMPARED if k in versions}}
    if marker is not None:
        folder = Path(marker).parent
        for _ in range(10):  # a network file system may show a new file to other machines a moment later
            if Path(marker).is_file():
                break
            time.sleep(0.5)
        facts["sees"] = Path(marker).is_file()
        facts["writes"] = os.access(folder, os.W_OK | os.X_OK)
    return facts


def problems(mine: dict, facts: dict, shared: Path | None) -> list[str]:
    """What is wrong with one node's ``facts`` against this process's (``mine``), as phrases."""
    if "error" in facts:
        return [f"could not run ptv2's node check ({facts['error']})"]
    found = []
    if shared is not None and not facts.get("sees"):
        found.append(f"does not see --shared-dir '{shared}' (a file this process wrote there is missing)")
    elif shared is not None and not facts.get("writes"):
        found.append(f"cannot write into --shared-dir '{shared}'")
    skew = [f"{k} {v} (here {mine['versions'][k]})" for k, v in sorted(facts["versions"].items())
            if mine["versions"].get(k, v) != v]
    if skew:
        found.append("runs " + ", ".join(skew))
    return found


def check_nodes(address: str, shared: Path | None) -> None:
    """Ptv2Error naming the nodes of the joined cluster (Ray initialized) that do not see ``shared``
    (when given) or run other versions than this process. A node that does not answer within
    ``PROBE_TIMEOUT_S`` is not judged (the trials will find it as they do)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = {n["NodeID"]: n.get("NodeManagerAddress", "?") for n in ray.nodes() if n.get("Alive")}
    marker = None if shared is None else shared / f".ptv2-node-check-{uuid.uuid4().hex}"
    probe = ray.remote(num_cpus=0, max_retries=0)(node_facts)
    try:
        if marker is not None:
            try:
                marker.write_text("ptv2 node check\n")
            except OSError as e:
                raise Ptv2Error(f"cannot write into --shared-dir '{shared}': {e.strerror or e}") from None
        refs = {probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(
            None if marker is None else str(marker)): node for node in nodes}
        done, _ = ray.wait(list(refs), num_returns=len(refs), timeout=PROBE_TIMEOUT_S)
        answers = {}
        for ref in done:
            try:
                answers[refs[ref]] = ray.get(ref)
            except Exception as e:  # noqa: BLE001 (a node without ptv2, or with one older than this check)
                answers[refs[ref]] = {"error": _last_line(e)}
    finally:
        if marker is not None:
            marker.unlink(missing_ok=True)
    mine = node_facts(None)
    bad = sorted((nodes[node], p) for node, facts in answers.items() if (p := problems(mine, facts, shared)))
    if bad:
        said = "; ".join(f"node {host} {', '.join(p)}" for host, p in bad[:3])
        more = f" (and {len(bad) - 3} more nodes)" if len(bad) > 3 else ""
        phrases = [x for _, p in bad for x in p]
        fix = "; ".join(f for f, needed in (
            ("mount the shared folder at the same path on every Ray node", any("--shared-dir" in x for x in phrases)),
            ("run one image (the same ptv2 and libraries) on every Ray node and here",
             any("--shared-dir" not in x for x in phrases))) if needed)
        raise Ptv2Error(f"the Ray cluster at '{address}' cannot run this search's trials: {said}{more}: {fix}")


def _last_line(e: BaseException) -> str:
    """A remote error's reason: the last non-empty line of its text (Ray prefixes the traceback)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[-1] if lines else type(e).__name__
