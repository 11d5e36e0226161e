"""An adapter scored on a task: the task must have the adapter's labels, in its order (a label's id
is its position in the list, so another order would score every prediction against another label)."""
from __future__ import annotations

from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks.spec import TaskSpec


def check_adapter_labels(task: TaskSpec, adapter: TaskSpec) -> None:
    """Refuse ``task`` unless its type and label list are ``adapter``'s, saying how they differ."""
    head = f"task '{task.name}'"
    if task.type != adapter.type:
        raise Ptv2Error(f"{head} is a {task.type} task but the adapter's task '{adapter.name}' is a {adapter.type} task")
    if tuple(task.labels) == tuple(adapter.labels):
        return
    if set(task.labels) == set(adapter.labels):
        raise Ptv2Error(f"{head} lists the adapter's labels in another order: {list(task.labels)}, the adapter's "
                        f"{list(adapter.labels)} (a label's id is its place in the list): give labels: "
                        f"{list(adapter.labels)} in the task file")
    new = [x for x in task.labels if x not in adapter.labels]
    gone = [x for x in adapter.labels if x not in task.labels]
    said = "; ".join(part for part in (
        f"labels the adapter was not trained on: {', '.join(map(repr, new))}" if new else "",
        f"adapter labels the task lacks: {', '.join(map(repr, gone))}" if gone else "") if part)
    raise Ptv2Error(f"{head} has other labels than the adapter's task '{adapter.name}': {said}; the adapter predicts "
                    f"{list(adapter.labels)}")
