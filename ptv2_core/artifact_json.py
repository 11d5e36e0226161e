"""Reading the JSON half of a ptv2 artifact (adapter, pre-trained prompt): one set of checks."""
from __future__ import annotations

import json
from pathlib import Path

from ptv2_core.errors import Ptv2Error
from ptv2_core.prefix import PromptConfig


def found_instead(folder: Path) -> str:
    """For a 'no <artifact> here' error: what the folder holds instead, if it is another ptv2
    folder (``"; it is … : use …"``), else an empty string."""
    if (folder / "prompt_config.json").is_file():
        return (f"; it is a pre-trained prompt: score it with `ptv2 eval --pretrained {folder}`, "
                f"or train from it with `--init {folder}`")
    if (folder / "best.json").is_file() and (folder / "adapter" / "adapter_config.json").is_file():
        return f"; it is a search's output: its best adapter is '{folder / 'adapter'}'"
    if (folder / "adapter_config.json").is_file():
        return f"; it is an adapter (for `ptv2 eval`, `predict` and `register --adapter {folder}`)"
    return ""


def read_config(path: Path, fmt: str, version: int, what: str, required: tuple[str, ...]) -> dict:
    """Parse ``path`` and check its ``format``, ``format_version`` (at most ``version``) and
    ``required`` keys; every failure is a Ptv2Error naming ``what`` and the file."""
    try:
        config = json.loads(path.read_text())
    except OSError as e:
        raise Ptv2Error(f"{what} config '{path}' cannot be read: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise Ptv2Error(f"corrupt {what} config '{path}': {e}") from None
    except RecursionError:  # '[' nested thousands deep: no config ptv2 writes
        raise Ptv2Error(f"corrupt {what} config '{path}': nested too deeply to be read") from None
    if not isinstance(config, dict) or config.get("format") != fmt:
        raise Ptv2Error(f"'{path}' is not a ptv2 {what} config (format '{fmt}')")
    found = config.get("format_version", 0)
    if isinstance(found, bool) or not isinstance(found, int):
        raise Ptv2Error(f"corrupt {what} config '{path}': 'format_version' must be an integer, got {str(found)[:80]!r}")
    if found > version:
        raise Ptv2Error(f"{what} '{path.parent}' has format version {config['format_version']}; "
                        f"this ptv2 reads up to {version}")
    for key in required:
        if key not in config:
            raise Ptv2Error(f"corrupt {what} config '{path}': missing '{key}'")
    return config


def check_prompt_fits(prompt: PromptConfig, geo, what: str) -> None:
    """A saved prompt must match the base model's layers, key/value heads and head size."""
    if (prompt.num_layers, prompt.num_kv_heads, prompt.head_dim) != (geo.num_layers, geo.num_kv_heads, geo.head_dim):
        raise Ptv2Error(f"{what} prompt shape (layers {prompt.num_layers}, kv heads {prompt.num_kv_heads}, head dim "
                        f"{prompt.head_dim}) does not match the base model's ({geo.num_layers}, {geo.num_kv_heads}, "
                        f"{geo.head_dim})")
