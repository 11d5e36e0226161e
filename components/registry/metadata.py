"""What a registered version says about itself: the adapter folder read and checked, its tags.

Tags carry the task, prompt length, learning rate, study, dev and test metrics, the hash of
the test split the metrics came from, the base model (name + weight fingerprint), the code
that trained it (the adapter's provenance) and the code registering it and, for a search's adapter, the search's MLflow runs (``lineage.py``), so a version can
be judged and reproduced from the registry alone.
"""
from __future__ import annotations

import json
import math
import posixpath
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from components.registry.labels import label_tags, labels_line
from components.registry.lineage import FIELDS as _LINEAGE_FIELDS
from components.registry.lineage import lineage_tags
from optuna_studies.code_version import code_version, git_commit
from ptv2_core.adapter import CONFIG, read_adapter_config, read_adapter_weights, split_seed_of
from ptv2_core.errors import Ptv2Error
from ptv2_core.metrics import METRIC_NAMES
from ptv2_core.tasks.subsample import RULE as SUBSET_RULE
from ptv2_core.tasks.splits import split_hash
from ptv2_core.tasks import TaskSpec, absolute_ref, load_task

METRICS_FILE = "metrics.json"
LINEAGE_TAGS = frozenset(_LINEAGE_FIELDS.values())
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


def _count(value, path: Path, key: str, least: int) -> int:
    """A whole number from metrics.json (a pipeline's JSON may carry 100.0), at least ``least``."""
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or value != int(value) or value < least):
        raise Ptv2Error(f"corrupt {path}: {key} must be a whole number of at least {least}, got {value!r}")
    return int(value)


def _split_settings(adapter_dir: Path, metrics: dict, config: dict) -> tuple[int, int | None]:
    """``(split seed, max_eval)`` the adapter's test metrics were scored with: metrics.json's, else
    its training config's; a value that is no such number is a corrupt metrics.json."""
    from ptv2_core.settings import check_seed

    path = adapter_dir / METRICS_FILE
    recorded = split_seed_of(config)
    seed = _count(metrics.get("seed", 0 if recorded is None else recorded), path, "seed", 0)
    try:
        check_seed(seed, "seed")
    except Ptv2Error as e:
        raise Ptv2Error(f"corrupt {path}: {e}") from None
    if "max_eval" in metrics:
        max_eval = metrics["max_eval"]
    else:  # recorded by training, in the adapter's config: a bad value is named in that file
        max_eval, path = ((config.get("extra") or {}).get("train_config") or {}).get("max_eval"), adapter_dir / CONFIG
    return seed, None if max_eval is None else _count(max_eval, path, "max_eval", 1)


def _random_subset(metrics: dict, train_cfg: dict) -> bool:
    """Whether a capped adapter's rows were drawn as before 2026-12-06 (a plain random subset): neither
    its training config (``ptv2 train``) nor its metrics.json (a pipeline step's, whose trial trained on
    prepared rows uncapped) records the subset rule."""
    return "subset" not in train_cfg and "subset" not in metrics


def _check_test_split(adapter_dir: Path, metrics: dict, train_cfg: dict, task: str, spec, test, data_hash: str,
                      seed: int, max_eval: int | None) -> None:
    """Refuse an adapter whose recorded test split (metrics.json's ``test_data_hash``) is not the one
    ``task`` gives now: rows added to or removed from the task's data move rows between the seeded
    splits, so today's test rows may be rows it trained on, and promotion would score them. An
    adapter that records no hash (written before ptv2 did) registers, with a warning."""
    recorded = metrics.get("test_data_hash")
    if recorded is None:
        print(f"warning: adapter '{adapter_dir}' records no test split hash (its {METRICS_FILE} was written before "
              "ptv2 recorded one): whether the task's data changed since it was trained is not checked", file=sys.stderr,
              flush=True)
        return
    if not isinstance(recorded, str) or not recorded.startswith("sha256:"):
        raise Ptv2Error(f"corrupt {adapter_dir / METRICS_FILE}: test_data_hash must be a 'sha256:…' text, got "
                        f"{str(recorded)[:80]!r}")
    if recorded == data_hash:
        return
    if max_eval and _random_subset(metrics, train_cfg):  # capped before 2026-12-06: the random subset drawn then
        from ptv2_core.tasks.splits import TEST_STREAM
        from ptv2_core.tasks.subsample import random_subset

        _, full = load_task(task, seed=seed, max_train=1)
        if split_hash(spec, random_subset(full["test"], max_eval, seed, TEST_STREAM)) == recorded:
            return
    raise Ptv2Error(f"adapter '{adapter_dir}': the data of task '{task}' changed since the adapter was trained: its test split "
                    f"(split seed {seed}{f', max_eval {max_eval}' if max_eval else ''}) no longer hashes to the "
                    f"test_data_hash in its {METRICS_FILE}, so its test rows may include rows it trained on and its "
                    "scores would be too high; retrain it on the data as it is now (nothing was registered)")


def _flat(prefix: str, metrics: dict) -> dict[str, str]:
    return {f"{prefix}_{k}": f"{v:.6g}" if isinstance(v, float) else str(v)
            for k, v in metrics.items() if isinstance(v, (int, float))}


_TAG_KEY = re.compile(r"[\w\-. /:]+")
# Keys ptv2 computes, some only for some adapters or later (a promotion's record, the registration
# id, lineage, metrics): a user tag cannot pass for one, whether or not this adapter has it
RESERVED_PREFIXES = ("promotion.", "ptv2.")
# the dev_*/test_* metric tags ptv2 writes for any task type (a user's own test_suite=nightly is not one)
METRIC_TAGS = frozenset(f"{split}_{name}" for split in ("dev", "test")
                        for name in (*{n for names in METRIC_NAMES.values() for n in names}, "score", "loss", "examples"))
COMPUTED_TAGS = frozenset({"metrics_subset", "subset", "git_commit", "git_diff_sha256", "base_revision"}) | METRIC_TAGS
# code_version_source of an adapter from before adapters recorded their provenance (2026-12-07)
NO_PROVENANCE = "ptv2_version: the adapter records no provenance (trained before adapters did): no commit"


def code_tags(config: dict) -> dict[str, str]:
    """Which code trained the adapter: its ``provenance`` (``code_version``, ``git_commit``,
    ``git_diff_sha256``), or, for an adapter from before adapters recorded one, its ``ptv2_version``
    alone (``code_version_source`` says which); and ``registered_code_version``, the code registering
    it (the tag was that code's alone, whatever had trained the adapter)."""
    prov = config.get("provenance")
    prov = prov if isinstance(prov, dict) else {}
    trained = prov.get("code_version")
    if isinstance(trained, str) and trained:
        tags = {"code_version": trained, "code_version_source": "provenance"}
        tags |= {k: prov[k] for k in ("git_commit", "git_diff_sha256") if isinstance(prov.get(k), str) and prov[k]}
    else:
        tags = {"code_version": str(config.get("ptv2_version") or "unknown"), "code_version_source": NO_PROVENANCE}
    return tags | {"registered_code_version": code_version()}


def describe_adapter(adapter_dir: str | Path, task: str, extra_tags: dict | None = None) -> AdapterInfo:
    """Read and check an adapter folder for registration under ``task`` (a packaged task name,
    a task YAML file, or hub:<name>). Raises ``Ptv2Error`` on any mismatch; writes nothing."""
    adapter_dir = Path(adapter_dir)
    if not adapter_dir.is_dir():
        raise Ptv2Error(f"adapter folder '{adapter_dir}' does not exist")
    config = read_adapter_config(adapter_dir)
    read_adapter_weights(adapter_dir)  # refused here, naming this folder's file, not the load-back's copy
    metrics = _read_metrics(adapter_dir)
    try:
        adapter_spec = TaskSpec.from_dict(config["task"])
    except (TypeError, KeyError) as e:
        raise Ptv2Error(f"corrupt adapter config in '{adapter_dir}': {e}") from None
    train_cfg = (config.get("extra") or {}).get("train_config") or {}
    seed, max_eval = _split_settings(adapter_dir, metrics, config)
    spec, data = load_task(task, seed=seed, max_eval=max_eval, max_train=1)
    if (spec.name, spec.type, tuple(spec.labels)) != (adapter_spec.name, adapter_spec.type, tuple(adapter_spec.labels)):
        raise Ptv2Error(f"adapter '{adapter_dir}' was trained for task '{adapter_spec.name}', not '{spec.name}' "
                        "(or the label lists differ)")
    test = data["test"]
    data_hash = split_hash(spec, test)
    _check_test_split(adapter_dir, metrics, train_cfg, task, spec, test, data_hash, seed, max_eval)
    examples = (test["text"] if spec.type == "sequence" else [" ".join(t) for t in test["tokens"]])[:3]
    base = config["base_model"]
    study = (extra_tags or {}).get("study") or metrics.get("study") or (config.get("extra") or {}).get("study") or "none"
    tags = {
        "task": spec.name,
        "task_ref": absolute_ref(str(task)),  # a relative path would name no file from another folder
        "task_type": spec.type,
        "metric": spec.metric,
        **label_tags(spec.labels, MAX_TAG),  # which labels (token tasks: BIO tags) it answers with
        "prompt_len": str(config["prompt"].get("prompt_len", metrics.get("prompt_len", ""))),
        "lr": str(metrics.get("lr", train_cfg.get("lr", ""))),
        "study": str(study),
        "split_seed": str(seed),
        "test_examples": str(len(test)),
        "data_hash": data_hash,
        "subset": SUBSET_RULE,  # how max_eval picks the rows data_hash covers (random before 2026-12-06)
        # an adapter trained before then with a cap: its dev_*/test_* tags come from a random subset
        **({"metrics_subset": "random"} if max_eval and _random_subset(metrics, train_cfg) else {}),
        "base_model": str(base["name"]),
        # a hub model's commit, which serving loads (not the hub's newest)
        **({"base_revision": str(base["revision"])} if base.get("revision") else {}),
        "base_fingerprint": str(base["fingerprint"]),
        # the tokenizer's, where the adapter records it (serving refuses a base whose tokenizer changed)
        **({"base_tokenizer_fingerprint": str(base["tokenizer_fingerprint"])} if base.get("tokenizer_fingerprint") else {}),
        **code_tags(config),  # the code that trained it (its provenance) and the code registering it
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
        raise Ptv2Error(f"tags {taken} are set by ptv2 (keys starting with {' or '.join(RESERVED_PREFIXES)}, the "
                        "dev_/test_ metrics and the other computed ones) and cannot be given")
    for k, v in (extra_tags or {}).items():
        tags[str(k)] = str(v)
    tags = {k: v[:MAX_TAG] for k, v in tags.items()}
    return AdapterInfo(adapter_dir, config, metrics, spec, str(task), seed, max_eval, tags["data_hash"],
                       list(examples), tags)


def version_description(info: AdapterInfo) -> str:
    """The registered version's description, what the MLflow UI shows on its page: the task, the
    configuration, the dev and test scores (on how many test rows), the base model and, for a
    search's adapter, the study and the runs that made it (it said only ``task trec, test accuracy 0.59``)."""
    t = info.tags
    metric = info.spec.metric
    lines = [f"ptv2 adapter for task {t['task']} ({t['task_type']}): prompt_len {t['prompt_len']}, lr {t['lr']}, "
             f"base model {t['base_model']}.",
             f"dev {metric} {t.get(f'dev_{metric}', t.get('dev_score', '?'))}, test {metric} "
             f"{t.get(f'test_{metric}', t.get('test_score', '?'))} on {t['test_examples']} test examples "
             f"(split seed {t['split_seed']}).",
             labels_line(info.spec.labels, info.spec.type),
             _code_line(t)]
    if t.get("study") and t["study"] != "none":
        lines.append(f"study {t['study']}.")
    if t.get("ptv2.search_run_id"):
        lines.append(f"search run {t['ptv2.search_run_id']}, trial run {t.get('ptv2.trial_run_id', '?')} "
                     f"(store {t.get('ptv2.search_tracking_uri', '?')}).")
    return "\n".join(lines)


def _code_line(t: dict[str, str]) -> str:
    """``trained by code 0.1.0+g<commit>, registered by 0.1.0+g<commit>.``; an adapter from before
    adapters recorded their code: its ptv2 version, and that it records no commit."""
    if "registered_code_version" not in t:  # tags written before the two were told apart
        return f"code {t['code_version']}."
    unknown = " (the adapter records no commit: trained before adapters recorded their code)" if (
        t.get("code_version_source") == NO_PROVENANCE) else ""
    return f"trained by code {t['code_version']}{unknown}, registered by {t['registered_code_version']}."


def registration_run_tags(info: AdapterInfo) -> dict[str, str]:
    """Tags of the run a registration creates (the version's source run, which the version page links
    to): the search runs that made the adapter, when a search did, and the code that ran (the run's:
    the registering code, ``registered_code_version``), so that run leads on to the search (it held
    only the registered model's name)."""
    commit = (git_commit() or "").partition(".")[0]
    ran = info.tags.get("registered_code_version", info.tags["code_version"])
    tags = {k: v for k, v in info.tags.items() if k in LINEAGE_TAGS} | {"ptv2.code_version": ran}
    return tags | ({"mlflow.source.git.commit": commit} if commit else {})

