"""Registered model names: the default one of a task, and what MLflow's registry, its model URIs
and its search filters let a name hold (every name ptv2 writes or lists goes through here)."""
from __future__ import annotations

from ptv2_core.errors import Ptv2Error

NAME_PREFIX = "ptv2-"

# characters a registered model name cannot hold (a default name has '-' instead): MLflow's registry
# refuses the first four; in a models:/ URI MLflow reads what follows '?' as a query (the name is cut there)
_NOT_IN_NAMES = "/:@%?"
# ...nor these: MLflow's search filters (``name = '...'``) strip a value's quotes but never unescape
# it, so a name holding one cannot be listed, and a registration could not clean up after itself
_UNQUOTABLE = "'\"\\"


def default_name(task: str, prefix: str = NAME_PREFIX) -> str:
    """The registered model name of a task name: ``<prefix><task>`` (``ptv2-trec``), with the
    characters a model name cannot hold as '-' (a hub task is named like ``user/data``)."""
    name = task if task.startswith(prefix) else f"{prefix}{task}"
    return "".join("-" if c in _NOT_IN_NAMES else c for c in name)


def check_name(name: str) -> str:
    """``name`` if MLflow's registry can hold it and its search filters can quote it, else Ptv2Error
    naming the character (every registered model name ptv2 writes or lists goes through here)."""
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise Ptv2Error(f"invalid registered model name {name!r}: it must be 1 to 200 characters, not all blank")
    bad = next((c for c in name if c in _NOT_IN_NAMES + _UNQUOTABLE), None)
    if bad is not None:
        raise Ptv2Error(f"invalid registered model name {name!r}: it holds {bad!r}; a name cannot hold "
                        "/ : @ % ? (MLflow's registry, model URIs) nor ' \" \\ (MLflow's search filters cannot quote them)")
    # a models:/ URI loses tabs and line breaks in MLflow's parser (urllib drops them): the name would not load
    control = next((c for c in name if not c.isprintable() and c != " "), None)
    if control is not None:
        raise Ptv2Error(f"invalid registered model name {name!r}: it holds {control!r}, a control or other "
                        "non-printing character (models:/ URIs cannot carry it)")
    return name


def name_filter(name: str) -> str:
    """The search filter for the versions (or the registered model) named ``name``."""
    return f"name = '{check_name(name)}'"
