"""Notes on a task's labels: listed ones its train split never shows (the model cannot learn them),
and labels so uneven that the default metric, accuracy, would hide a rare one."""
from __future__ import annotations

from collections import Counter

from datasets import DatasetDict

from ptv2_core.tasks.spec import TaskSpec


def unseen_labels_note(spec: TaskSpec, dd: DatasetDict, listed: str = "listed under labels:") -> str | None:
    """A note naming the labels of ``spec.labels`` (a token task's entity types) that no train row
    has, None when train has them all. Only a given list can hold such a label (an inferred one comes
    from train): a task file's ``labels:``, a hub data set's label names (``listed`` says which), e.g.
    a label only dev or test rows have."""
    train = dd["train"]
    if spec.type == "sequence":
        seen = {spec.labels[i] for i in set(train["label"][:])}
        unseen, what = [x for x in spec.labels if x not in seen], ("label", "labels")
    else:
        seen = {spec.labels[t][2:] for row in train["tags"][:] for t in row if spec.labels[t] != "O"}
        types = list(dict.fromkeys(x[2:] for x in spec.labels if x != "O"))
        unseen, what = [x for x in types if x not in seen], ("entity type", "entity types")
    if not unseen:
        return None
    names = ", ".join(repr(x) for x in unseen)
    one = len(unseen) == 1
    return (f"task '{spec.name}': {what[0] if one else what[1]} {names} ({listed}) "
            f"{'has' if one else 'have'} no train row, so the model cannot learn to predict {'it' if one else 'them'}")


RARE_OF_EVEN = 1 / 3  # a label on this part of an even share of the rows or less is rare: accuracy barely sees it


def uneven_labels_note(spec: TaskSpec, dd: DatasetDict) -> str | None:
    """A note for a sequence task on accuracy (a task file's default) whose rarest label is on
    ``RARE_OF_EVEN`` of an even share of its rows or less (an even share: 1 / the number of labels
    on some row), counted over every split: a model that never predicts it scores well, and training
    and a search select by it. None otherwise: 12 even labels are 8% of the rows each, and no rare one."""
    if spec.type != "sequence" or spec.metric != "accuracy":
        return None
    counts = Counter(i for split in dd.values() for i in split["label"][:])
    total = sum(counts.values())
    if not counts:
        return None
    # a listed label on no row at all is unseen_labels_note's (or the label list's) matter
    rare, n = min(counts.items(), key=lambda x: (x[1], x[0]))
    even = 1 / len(counts)
    if n / total > RARE_OF_EVEN * even:
        return None
    return (f"task '{spec.name}': label '{spec.labels[rare]}' is {round(100 * n / total)}% of the rows (an even "
            f"share: {round(100 * even)}%), and the task's metric is accuracy (the default), which a model that "
            "never predicts it scores well on: metric: macro_f1 in the task file weighs every label alike")
