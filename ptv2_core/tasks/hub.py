"""``hub:<name>[:<config>][@<revision>]``: a Hugging Face Hub data set, for users online (not reachable in CI here).
A revision (a commit sha, tag or branch) pins the data: an adapter records the reference, so a
later ``eval`` or promotion reads the same rows, not the data set's newest commit.

Columns and labels are guessed the way a task YAML would set them by default (docs/tasks.md): a ``tokens`` +
``*tags`` list pair makes a token task, otherwise the first text-like column and the first
ClassLabel (or label-named) column make a sequence task. Splits: train, validation→dev, test;
missing or unlabeled ones are carved from train with the seed.
"""
from __future__ import annotations

from typing import Any

from datasets import ClassLabel, DatasetDict, LargeList, List

from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks.label_text import label_text
from ptv2_core.tasks.rows import check_token_rows, make_dataset, missing_rows
from ptv2_core.wording import count_of
from ptv2_core.tasks.spec import DEFAULT_MAX_LENGTH, DEFAULT_METRIC, TaskSpec, is_bio_tag, safe_task_name
from ptv2_core.tasks.splits import carve

TEXT_COLUMNS = ("text", "sentence", "content", "document", "review", "question", "utterance")
LABEL_COLUMNS = ("label", "labels", "coarse_label", "category", "intent")
TOKEN_COLUMNS = ("tokens", "words")
TAG_COLUMNS = ("ner_tags", "tags", "labels")
# Columns that hold the second text of a pair (GLUE, SNLI, QQP, BoolQ).
PAIR_COLUMNS = ("sentence1", "sentence2", "premise", "hypothesis", "question1", "question2", "passage")
DEV_NAMES = ("validation", "valid", "dev")


def parse_hub_ref(ref: str) -> tuple[str, str | None, str | None]:
    """``(name, config, revision)`` of ``<name>[:<config>][@<revision>]`` (without ``hub:``). A
    local data-set folder is taken whole, '@' in its path included."""
    from pathlib import Path

    body, at, revision = (ref, "", "") if Path(ref).exists() else ref.rpartition("@") if "@" in ref else (ref, "", "")
    name, _, config = body.partition(":")
    if not name:
        raise Ptv2Error("hub task needs a data set name: hub:<name>, hub:<name>:<config>, hub:<name>@<revision>")
    if at and not revision.strip():
        raise Ptv2Error(f"hub task 'hub:{ref}' has an empty revision after '@': a commit sha, tag or branch")
    return name, config or None, revision or None


def hub_task_name(ref: str) -> str:
    """The task name of ``<name>[:<config>][@<revision>]``: the data set's name made a folder name
    (``user/data`` → ``user-data``; a local folder's path likewise)."""
    return safe_task_name(parse_hub_ref(ref)[0])


def hub_max_length(ref: str) -> int:
    """The ``max_length`` of ``<name>[:<config>][@<revision>]``'s task, known without fetching it:
    a hub task's spec is guessed from its columns, its truncation is always the default."""
    parse_hub_ref(ref)
    return DEFAULT_MAX_LENGTH


def _fetch(name: str, config: str | None, revision: str | None = None) -> DatasetDict:
    import datasets

    try:
        dd = datasets.load_dataset(name, config, revision=revision)
    except Exception as e:  # offline, unknown name, bad config or revision: all user-facing
        raise Ptv2Error(
            f"could not load hub dataset '{name}'{f' (config {config!r})' if config else ''}"
            f"{f' at revision {revision!r}' if revision else ''}: "
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


def _is_list(feature: Any) -> bool:
    return isinstance(feature, (List, LargeList))


def _is_bio(tags: list[str]) -> bool:
    return "O" in tags and all(is_bio_tag(t) for t in tags)


def _tag_column(name: str, dd: DatasetDict) -> str | None:
    """The tag column of a token task: the first of TAG_COLUMNS, else the first ``*_tags`` column
    whose tags are BIO (conll2003's pos_tags and chunk_tags come before its ner_tags)."""
    feats = dd["train"].features
    known = next((c for c in TAG_COLUMNS if c in feats and _is_list(feats[c])), None)
    if known:
        return known
    others = [c for c in feats if c.endswith("_tags") and _is_list(feats[c])]
    for c in others:
        tags = _names(feats[c]) or sorted({label_text(t) for ts in dd["train"][c][:] for t in ts})
        if _is_bio(tags):
            return c
    if others:
        raise Ptv2Error(f"hub dataset '{name}': none of the tag columns {others} holds BIO tags (\"O\", \"B-<type>\", "
                        "\"I-<type>\"); download it and write a task YAML whose label_column holds BIO tags")
    return None


def _is_string(feature: Any) -> bool:
    return getattr(feature, "dtype", None) in ("string", "large_string")


def _text_column(name: str, feats: Any, label: str | None) -> str | None:
    """The one text column of a sequence task. Several texts per row (sentence1/sentence2,
    premise/hypothesis, question/sentence) are a pair task, which would silently train on one."""
    strings = [c for c in feats if _is_string(feats[c]) and c != label and not _id_like(c)]
    known = [c for c in TEXT_COLUMNS if c in feats]
    pair = [c for c in strings if c in PAIR_COLUMNS]
    if len(known) > 1 or pair or (not known and len(strings) > 1):
        shown = [c for c in strings if c in known or c in pair] if (len(known) > 1 or pair) else strings
        raise Ptv2Error(f"hub dataset '{name}' has several text columns per row ({', '.join(shown)}): a sentence-pair "
                        "task? ptv2 classifies one text per row and would train on one column alone; download it and "
                        "write a task YAML whose text_column holds the whole input (e.g. the texts joined)")
    return known[0] if known else (strings[0] if strings else None)


def _id_like(column: str) -> bool:
    return column.lower() in ("id", "idx", "guid", "uid", "key") or column.lower().endswith("_id")


def _guess(name: str, dd: DatasetDict) -> tuple[TaskSpec, bool]:
    feats = dd["train"].features
    cols = list(feats)
    tok = next((c for c in TOKEN_COLUMNS if c in feats), None)
    tag = _tag_column(name, dd) if tok else None
    if tok and tag and tag != tok:
        names = _names(feats[tag])
        by_index = names is not None
        labels = names or ["O", *sorted({label_text(t) for ts in dd["train"][tag][:] for t in ts} - {"O"})]
        return (TaskSpec(safe_task_name(name), "token", tuple(labels), DEFAULT_METRIC["token"], tok, tag,
                         DEFAULT_MAX_LENGTH), by_index)
    label = next((c for c in cols if isinstance(feats[c], ClassLabel)), None) or next(
        (c for c in LABEL_COLUMNS if c in feats), None
    )
    if label is not None and (_is_list(feats[label]) or any(isinstance(v, list) for v in dd["train"].select(range(min(100, len(dd["train"]))))[label])):
        raise Ptv2Error(f"hub dataset '{name}': its label column '{label}' holds a list of labels per row (a "
                        "multi-label task); ptv2 trains one label per text (sequence) or one BIO tag per word (token)")
    text = _text_column(name, feats, label)
    if text is None or label is None:
        raise Ptv2Error(
            f"hub dataset '{name}': cannot tell the text and label columns apart (columns: {cols}); "
            "download it and write a task YAML that names text_column and label_column"
        )
    names = _names(feats[label])
    labels = names or sorted({label_text(v) for v in dd["train"][label][:] if v is not None})
    return (TaskSpec(safe_task_name(name), "sequence", tuple(labels), DEFAULT_METRIC["sequence"], text, label,
                     DEFAULT_MAX_LENGTH), names is not None)


def load_hub(ref: str, seed: int = 0) -> tuple[TaskSpec, DatasetDict]:
    """Load ``<name>[:<config>][@<revision>]`` from the Hub and normalize it like a packaged task."""
    name, config, revision = parse_hub_ref(ref)
    dd = _fetch(name, config, revision)
    spec, by_index = _guess(name, dd)

    def as_strings(values: list) -> list:
        if spec.type == "sequence":
            return [spec.labels[v] if by_index and v >= 0 else label_text(v) for v in values]
        return [[spec.labels[t] if by_index else label_text(t) for t in ts] for ts in values]

    rows: dict[str, tuple[list, list]] = {}
    for split, src in (("train", "train"), ("dev", next((d for d in DEV_NAMES if d in dd), None)), ("test", "test")):
        if src is None or src not in dd:
            continue
        if split != "train" and not {spec.text_column, spec.label_column} <= set(dd[src].column_names):
            continue  # an unlabeled test split (a competition's): carve instead
        # [:]: each column in one read (a datasets Column is read row by row on every pass below)
        xs, ys = dd[src][spec.text_column][:], dd[src][spec.label_column][:]
        if split != "train" and all(v is None for v in ys):
            continue  # likewise (a data folder's test file without the label column reads as all None)
        if spec.type == "sequence" and by_index and any(v is not None and v < 0 for v in ys):
            continue  # hidden test labels (-1, as in GLUE): carve instead
        where = f"{src} split of hub dataset '{name}'"
        for col, values in ((spec.text_column, xs), (spec.label_column, ys)):
            bad = missing_rows(values) if spec.type == "sequence" else [i for i, v in enumerate(values) if v is None]
            if bad:
                raise Ptv2Error(f"{where}: {count_of(len(bad), 'row')} with an empty '{col}' (first at row {bad[0] + 1})")
        if spec.type == "token":  # checked here, while row numbers are still the split's
            check_token_rows(xs, ys, where, (spec.text_column, spec.label_column))
        rows[split] = (xs, as_strings(ys))
    missing = [s for s in ("dev", "test") if s not in rows]
    if missing:
        rows.update(carve(spec.type, *rows["train"], seed, missing))
    return spec, DatasetDict({s: make_dataset(spec, *rows[s], f"{s} split of hub dataset '{name}'") for s in ("train", "dev", "test")})
