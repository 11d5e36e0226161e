"""What a pre-training run is, for a resume and for "finished already": the run key's parts that
name its tasks' rows and specs and the base's tokenizer, how two keys differ, and why, in words."""
from __future__ import annotations

from ptv2_core.tasks import TaskSpec
from ptv2_core.tasks.splits import split_hash


def differing_keys(a: dict, b: dict) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


# in a run key since 2026-12: the base's tokenizer (the same weights fed other ids train another prompt)
TOKENIZER_KEY = "tokenizer_fingerprint"


# in a run key since 2026-12: per task (``task_data:<name>``), its train row count and the hashes of its
# train and dev rows (a task YAML's CSV edited between a stop and the resume is other training)
TASK_DATA = "task_data:"


def task_data_key(spec: TaskSpec, data) -> dict:
    """What a resume must find of one task's rows: how many train rows, and which train and dev rows."""
    return {f"{TASK_DATA}{spec.name}": {"train_rows": len(data["train"]), "train": split_hash(spec, data["train"]),
                                        "dev": split_hash(spec, data["dev"])}}


# in a run key since 2026-12: per task (``task_spec:<name>``), the fields of its spec that change what is
# trained or how it is scored: type, labels (their order is the head's class ids), metric, max_length. Not
# the name (in the key's) nor the column names: what those columns hold is in the rows' hashes above
TASK_SPEC = "task_spec:"
UNKEYED_SPEC_FIELDS = ("name", "text_column", "label_column")


def task_spec_key(spec: TaskSpec) -> dict:
    """What a resume must find of one task's spec (a task YAML's max_length or labels edited between a
    stop and the resume is other training)."""
    return {f"{TASK_SPEC}{spec.name}": {k: v for k, v in spec.to_dict().items() if k not in UNKEYED_SPEC_FIELDS}}


def task_keys(loaded) -> dict:
    """The run key's part for the tasks ``loaded`` (``[(spec, splits)]``): their rows and specs."""
    keys: dict = {}
    for spec, data in loaded:
        keys |= task_data_key(spec, data) | task_spec_key(spec)
    return keys


def tasks_changed(differ: list[str], saved: dict, now: dict, since: str) -> str:
    """Why the keys ``differ`` in a task's rows or spec, in words (empty when none does)."""
    why = ""
    changed = [k[len(TASK_DATA):] for k in differ if k.startswith(TASK_DATA)]
    if changed:
        tasks = ", ".join(f"'{n}'" for n in changed)
        why += f" (the train or dev rows of task{'s' if len(changed) > 1 else ''} {tasks} changed since {since})"
    specs = [k for k in differ if k.startswith(TASK_SPEC)]
    if specs:
        fields = {k[len(TASK_SPEC):]: ", ".join(differing_keys(saved.get(k) or {}, now.get(k) or {})) for k in specs}
        if len(fields) == 1:
            (name, what), = fields.items()
            why += f" (the spec of task '{name}' changed since {since}: {what})"
        else:
            why += (" (the specs of tasks " + ", ".join(f"'{n}' ({w})" for n, w in fields.items())
                    + f" changed since {since})")
    return why


def run_key_diff(saved: dict, now: dict) -> list[str]:
    """The keys in which a checkpoint's run key ``saved`` differs from this run's ``now``. The
    tokenizer's fingerprint counts only where both hold one: a checkpoint written before it was
    keyed, or a base given as a model object rather than loaded by name, leaves it unknown. So do
    the tasks' rows and specs: a checkpoint written before they were keyed holds no ``task_data:``
    (or no ``task_spec:``) key."""
    if TOKENIZER_KEY not in saved or TOKENIZER_KEY not in now:
        saved, now = ({k: v for k, v in d.items() if k != TOKENIZER_KEY} for d in (saved, now))
    for prefix in (TASK_DATA, TASK_SPEC):
        if not any(k.startswith(prefix) for k in saved):
            now = {k: v for k, v in now.items() if not k.startswith(prefix)}
    return differing_keys(saved, now)


def _per_task(key: str) -> str | None:
    """The task a ``task_data:``/``task_spec:`` key is about (None: another key)."""
    for prefix in (TASK_DATA, TASK_SPEC):
        if key.startswith(prefix):
            return key[len(prefix):]
    return None


def shown_keys(differ: list[str], saved: dict, now: dict) -> list[str]:
    """``differ`` without the per-task keys of a task that is not in both runs (the task list differs:
    that one says it)."""
    def names(key: dict) -> set:
        return {t for k in key if (t := _per_task(k)) is not None}
    both = names(saved) & names(now)
    return [k for k in differ if _per_task(k) is None or _per_task(k) in both]


# keys whose values say nothing to a reader (hashes) or are told in words elsewhere
_NO_VALUES = ("subset", "base_fingerprint", TOKENIZER_KEY)


def settings_values(differ: list[str], saved: dict, now: dict, then: str) -> str:
    """The differing settings' values, both sides (``then``: whose the saved ones are, "the
    checkpoint's"), so the user can type the command that matches; empty when none is a plain setting."""
    keys = [k for k in differ if k not in _NO_VALUES and _per_task(k) is None]

    def form(v) -> str:
        if isinstance(v, (list, tuple)):
            return ",".join(map(str, v))
        return "none" if v is None else str(v)
    if not keys:
        return ""
    return (f"; {then} " + ", ".join(f"{k} {form(saved.get(k))}" for k in keys)
            + "; now " + ", ".join(f"{k} {form(now.get(k))}" for k in keys))
