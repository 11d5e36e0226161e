"""What a registered version says about itself: the adapter folder read and checked, its tags.

Tags carry the task, prompt length, learning rate, study, dev and test metrics, the hash of
the test split the metrics came from, the base model (name + weight fingerprint), the code
version and, for a search's adapter, the search's MLflow runs (``lineage.py``), so a version can
be judged and reproduced from the registry alone.
"""
from __future__ import annotations

import functools
import json
import posixpath
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from components.registry.lineage import lineage_tags
from ptv2_core import __version__
from ptv2_core.adapter import read_adapter_config, split_seed_of
from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks.subsample import RULE as SUBSET_RULE
from ptv2_core.tasks.splits import split_hash
from ptv2_core.tasks import TaskSpec, absolute_ref, load_task

METRICS_FILE = "metrics.json"
MAX_TAG = 4000  # below the 5000 characters a SQL store allows per tag value


@dataclass(frozen=True)
class AdapterInfo:
    """An adapter folder, validated against its task, with everything registration needs."""

    adapter_dir: Path
    config: dict
    metrics: dict
    spec: TaskSpec
    task_ref: str
    seed: int
    max_eval: int | None
    data_hash: str
    examples: list[str]
    tags: dict[str, str] = field(default_factory=dict)


@functools.cache
def code_version() -> str:
    """``<ptv2 version>`` plus ``+g<commit>[.dirty]`` when the code runs from a git checkout."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{sha}" + (".dirty" if dirty else "")


def _read_metrics(adapter_dir: Path) -> dict:
    path = adapter_dir / METRICS_FILE
    if not path.is_file():
        raise Ptv2Error(f"adapter '{adapter_dir}' has no {METRICS_FILE} (write it with `ptv2 train --out`)")
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        raise Ptv2Error(f"{path} cannot be read: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise Ptv2Error(f"corrupt {path}: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("test"), dict) or not isinstance(doc.get("dev"), dict):
        raise Ptv2Error(f"{path} lacks dev and test metrics")
    return doc


def _flat(prefix: str, metrics: dict) -> dict[str, str]:
    return {f"{prefix}_{k}": f"{v:.6g}" if isinstance(v, float) else str(v)
            for k, v in metrics.items() if isinstance(v, (int, float))}


_TAG_KEY = re.compile(r"[\w\-. /:]+")
# Keys ptv2 computes, some only for some adapters or later (a promotion's record, the registration
# id, lineage, metrics): a user tag cannot pass for one, whether or not this adapter has it
RESERVED_PREFIXES = ("promotion.", "ptv2.", "dev_", "test_")
COMPUTED_TAGS = frozenset({"metrics_subset", "subset"})


def describe_adapter(adapter_dir: str | Path, task: str, extra_tags: dict | None = None) -> AdapterInfo:
    """Read and check an adapter folder for registration under ``task`` (a packaged task name,
    a task YAML file, or hub:<name>). Raises ``Ptv2Error`` on any mismatch; writes nothing."""
    adapter_dir = Path(adapter_dir)
    if not adapter_dir.is_dir():
        raise Ptv2Error(f"adapter folder '{adapter_dir}' does not exist")
    config = read_adapter_config(adapter_dir)
    metrics = _read_metrics(adapter_dir)
    try:
        adapter_spec = TaskSpec.from_dict(config["task"])
    except (TypeError, KeyError) as e:
        raise Ptv2Error(f"corrupt adapter config in '{adapter_dir}': {e}") from None
    train_cfg = (config.get("extra") or {}).get("train_config") or {}
    recorded = split_seed_of(config)
    seed = int(metrics.get("seed", 0 if recorded is None else recorded))
    max_eval = metrics.get("max_eval", train_cfg.get("max_eval"))
    max_eval = int(max_eval) if max_eval is not None else None  # JSON from a pipeline may carry 100.0
    spec, data = load_task(task, seed=seed, max_eval=max_eval, max_train=1)
    if (spec.name, spec.type, tuple(spec.labels)) != (adapter_spec.name, adapter_spec.type, tuple(adapter_spec.labels)):
        raise Ptv2Error(f"adapter '{adapter_dir}' was trained for task '{adapter_spec.name}', not '{spec.name}' "
                        "(or the label lists differ)")
    test = data["test"]
    examples = (test["text"] if spec.type == "sequence" else [" ".join(t) for t in test["tokens"]])[:3]
    base = config["base_model"]
    study = (extra_tags or {}).get("study") or metrics.get("study") or (config.get("extra") or {}).get("study") or "none"
    tags = {
        "task": spec.name,
        "task_ref": absolute_ref(str(task)),  # a relative path would name no file from another folder
        "task_type": spec.type,
        "metric": spec.metric,
        "prompt_len": str(config["prompt"].get("prompt_len", metrics.get("prompt_len", ""))),
        "lr": str(metrics.get("lr", train_cfg.get("lr", ""))),
        "study": str(study),
        "split_seed": str(seed),
        "test_examples": str(len(test)),
        "data_hash": split_hash(spec, test),
        "subset": SUBSET_RULE,  # how max_eval picks the rows data_hash covers (random before 2026-12-06)
        # an adapter trained before then with a cap: its dev_*/test_* tags come from a random subset
        **({"metrics_subset": "random"} if max_eval and "subset" not in train_cfg else {}),
        "base_model": str(base["name"]),
        "base_fingerprint": str(base["fingerprint"]),
        "code_version": code_version(),
        "ptv2_adapter_version": str(config.get("ptv2_version", "")),
        **_flat("dev", metrics["dev"]),
        **_flat("test", metrics["test"]),
        **lineage_tags(adapter_dir, metrics),  # the search's parent run and the best trial's run, when known
    }
    for k in map(str, extra_tags or {}):  # checked before any run exists (MLflow's rule, said by MLflow after it)
        norm = posixpath.normpath(k)
        if not _TAG_KEY.fullmatch(k) or len(k) > 250 or norm != k or norm == "." or norm.startswith(("..", "/")):
            raise Ptv2Error(f"tag key {k[:60]!r} is not one MLflow takes: 1-250 letters, digits and _ - . / : or "
                            "spaces, a normalised relative path (no leading '/' or '..', no '//', './' or trailing '/')")
    taken = sorted(k for k in map(str, extra_tags or {}) if k != "study" and (k in tags or k in COMPUTED_TAGS
                                                                             or k.startswith(RESERVED_PREFIXES)))
    if taken:
        raise Ptv2Error(f"tags {taken} are set by ptv2 (keys starting with {', '.join(RESERVED_PREFIXES[:-1])} or "
                        f"{RESERVED_PREFIXES[-1]}, and the computed ones) and cannot be given")
    for k, v in (extra_tags or {}).items():
        tags[str(k)] = str(v)
    tags = {k: v[:MAX_TAG] for k, v in tags.items()}
    return AdapterInfo(adapter_dir, config, metrics, spec, str(task), seed, max_eval, tags["data_hash"],
                       list(examples), tags)
