"""``hub:<name>[:<config>]``: a Hugging Face Hub data set, for users online (not reachable in CI here).

Columns and labels are guessed the way a task YAML would set them by default: a ``tokens`` +
``*tags`` list pair makes a token task, otherwise the first text-like column and the first
ClassLabel (or label-named) column make a sequence task. Splits: train, validation→dev, test;
missing or unlabeled ones are carved from train with the seed.
"""
from __future__ import annotations

from typing import Any

from datasets import ClassLabel, DatasetDict

from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks.rows import make_dataset
from ptv2_core.tasks.spec import DEFAULT_METRIC, TaskSpec
from ptv2_core.tasks.splits import carve

TEXT_COLUMNS = ("text", "sentence", "content", "document", "review", "question", "utterance")
LABEL_COLUMNS = ("label", "labels", "coarse_label", "category", "intent")
TOKEN_COLUMNS = ("tokens", "words")
TAG_COLUMNS = ("ner_tags", "tags", "labels")
DEV_NAMES = ("validation", "valid", "dev")


def _fetch(name: str, config: str | None) -> DatasetDict:
    import datasets

    try:
        dd = datasets.load_dataset(name, config) if config else datasets.load_dataset(name)
    except Exception as e:  # offline, unknown name, bad config: all user-facing
        raise Ptv2Error(
            f"could not load hub dataset '{name}'{f' (config {config!r})' if config else ''}: "
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} — offline (HF_HUB_OFFLINE=1) "
            "or no such data set? Use a packaged task or a task YAML file instead."
        ) from None
    if not isinstance(dd, DatasetDict) or "train" not in dd:
        raise Ptv2Error(f"hub dataset '{name}' has no train split (splits: {list(dd) if isinstance(dd, dict) else '?'})")
    return dd


def _names(feature: Any) -> list[str] | None:
    """Label names of a ClassLabel, or of a list-of-ClassLabel feature."""
    inner = getattr(feature, "feature", feature)
    return list(inner.names) if isinstance(inner, ClassLabel) else None


def _guess(name: str, dd: DatasetDict) -> tuple[TaskSpec, bool]:
    feats = dd["train"].features
    cols = list(feats)
    tok = next((c for c in TOKEN_COLUMNS if c in feats), None)
    tag = next((c for c in cols if c in TAG_COLUMNS or c.endswith("_tags")), None)
    if tok and tag and tag != tok:
        names = _names(feats[tag])
        by_index = names is not None
        labels = names or ["O", *sorted({str(t) for ts in dd["train"][tag] for t in ts} - {"O"})]
        return TaskSpec(name, "token", tuple(labels), DEFAULT_METRIC["token"], tok, tag), by_index
    text = next((c for c in TEXT_COLUMNS if c in feats), None) or next(
        (c for c in cols if getattr(feats[c], "dtype", None) in ("string", "large_string")), None
    )
    label = next((c for c in cols if isinstance(feats[c], ClassLabel)), None) or next(
        (c for c in LABEL_COLUMNS if c in feats), None
    )
    if text is None or label is None:
        raise Ptv2Error(
            f"hub dataset '{name}': cannot tell the text and label columns apart (columns: {cols}); "
            "download it and write a task YAML that names text_column and label_column"
        )
    names = _names(feats[label])
    labels = names or sorted({str(v) for v in dd["train"][label]})
    return TaskSpec(name, "sequence", tuple(labels), DEFAULT_METRIC["sequence"], text, label), names is not None


def load_hub(ref: str, seed: int = 0) -> tuple[TaskSpec, DatasetDict]:
    """Load ``<name>[:<config>]`` from the Hub and normalize it like a packaged task."""
    name, _, config = ref.partition(":")
    if not name:
        raise Ptv2Error("hub task needs a data set name: hub:<name> or hub:<name>:<config>")
    dd = _fetch(name, config or None)
    spec, by_index = _guess(name, dd)

    def as_strings(values: list) -> list:
        if spec.type == "sequence":
            return [spec.labels[v] if by_index and v >= 0 else str(v) for v in values]
        return [[spec.labels[t] if by_index else str(t) for t in ts] for ts in values]

    rows: dict[str, tuple[list, list]] = {}
    for split, src in (("train", "train"), ("dev", next((d for d in DEV_NAMES if d in dd), None)), ("test", "test")):
        if src is None or src not in dd:
            continue
        ys = dd[src][spec.label_column]
        if spec.type == "sequence" and by_index and any(v < 0 for v in ys):
            continue  # hidden test labels (-1, as in GLUE): carve instead
        rows[split] = (dd[src][spec.text_column], as_strings(ys))
    missing = [s for s in ("dev", "test") if s not in rows]
    if missing:
        rows.update(carve(spec.type, *rows["train"], seed, missing))
    return spec, DatasetDict({s: make_dataset(spec, *rows[s], f"{s} split of hub dataset '{name}'") for s in ("train", "dev", "test")})
