"""Labels a task lists that its train split never shows: the model cannot learn them."""
from __future__ import annotations

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
