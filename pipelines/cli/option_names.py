"""The core's setting checks name settings in words (``mixing temperature``); a command names
them as the options the user typed (``--temperature``)."""
from __future__ import annotations

import contextlib


def flag(field: str) -> str:
    """A setting's command-line option: ``max_prompt_len`` -> ``--max-prompt-len``."""
    return "--" + field.replace("_", "-")


@contextlib.contextmanager
def options_named():
    """A ``BadSetting`` raised inside names its settings as options."""
    from ptv2_core.settings import BadSetting

    try:
        yield
    except BadSetting as e:
        raise e.naming(flag) from None


def comma_list(text: str, option: str) -> list[str]:
    """``a,b`` -> ``['a', 'b']`` (items stripped); an empty item (``a,,b``, a trailing comma) is
    refused: a typo, which read without it would run on less than was meant."""
    from ptv2_core.errors import Ptv2Error

    items = [x.strip() for x in text.split(",")]
    if "" in items:
        raise Ptv2Error(f"{option} has an empty item in '{text}': give comma-separated values, none empty")
    return items
