"""A tampered adapter (config values of the wrong type or range, non-finite or integer weights) is
one `error:` line naming the file and the field, exit 2, for predict, eval and register alike; a
register leaves no version behind."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import run_cli as run
from test_bad_input import copy_adapter, tiny_adapter  # noqa: F401  (the module-scoped fixture)


def _set(field: str, value):
    """An edit of adapter_config.json's ``field`` (dotted) to ``value``."""
    def edit(config: dict, text: str) -> str:
        *parents, key = field.split(".")
        node = config
        for p in parents:
            node = node[p]
        node[key] = value
        return json.dumps(config)
    return edit


def _raw(old: str, new: str):
    """An edit of the config's JSON text (for what json.dumps does not write, e.g. NaN)."""
    def edit(config: dict, text: str) -> str:
        compact = json.dumps(config)
        assert old in compact
        return compact.replace(old, new)
    return edit


def _int_labels(config: dict, text: str) -> str:
    config["task"]["labels"] = list(range(1, len(config["task"]["labels"]) + 1))
    return json.dumps(config)


CONFIG_CASES = {
    "prompt_len-string": (_set("prompt.prompt_len", "4"), "prompt.prompt_len"),
    "prompt_len-float": (_set("prompt.prompt_len", 4.0), "prompt.prompt_len"),
    "prompt_len-bool": (_set("prompt.prompt_len", True), "prompt.prompt_len"),
    "prompt_len-nan": (_raw('"prompt_len": 4', '"prompt_len": NaN'), "prompt.prompt_len"),
    "prompt_len-zero": (_set("prompt.prompt_len", 0), "prompt.prompt_len"),
    "head-dropout-2": (_set("head.dropout", 2.0), "head.dropout"),
    "prompt-dropout-neg": (_set("prompt.dropout", -1), "prompt.dropout"),
    "pooling-max": (_set("head.pooling", "max"), "head.pooling"),
    "format_version-string": (_set("format_version", "1"), "format_version"),
    "labels-ints": (_int_labels, "task.labels"),
    # a branch is no commit: recorded, it would load the branch's newest, which moves
    "revision-branch": (_set("base_model.revision", "main"), "base_model.revision"),
    "deeply-nested": (lambda c, t: "[" * 100000 + "]" * 100000, "adapter_config.json"),
}


def _weights(how: str):
    def edit(adapter: Path) -> None:
        path = adapter / "adapter.safetensors"
        state = load_file(str(path))
        if how == "int32":
            state = {k: v.to(torch.int32) for k, v in state.items()}
        else:
            state = {k: torch.full_like(v, float(how)) for k, v in state.items()}
        save_file(state, str(path), metadata={"format": "ptv2-adapter"})
    return edit


WEIGHT_CASES = {"nan": "not finite", "inf": "not finite", "int32": "int32"}

COMMANDS = {
    "predict": lambda a: ["predict", "--adapter", str(a), "hello"],
    "eval": lambda a: ["eval", "--adapter", str(a), "--max-eval", "2"],
    "register": lambda a: ["register", "--adapter", str(a)],
}


@pytest.fixture
def registry_home(tmp_path, monkeypatch) -> Path:
    """An empty default store (sqlite under PTV2_HOME) for register."""
    home = tmp_path / "home"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("PTV2_HOME", str(home))
    yield home
    import mlflow

    mlflow.set_tracking_uri(None)


def _registered_versions(home: Path) -> int:
    if not (home / "mlflow.db").is_file():
        return 0
    from mlflow import MlflowClient

    uri = f"sqlite:///{home / 'mlflow.db'}"
    c = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return sum(len(c.search_model_versions(f"name = '{m.name}'")) for m in c.search_registered_models())


def _assert_one_error_line(res, *needles: str) -> None:
    # register may warn first (this adapter's metrics.json records no test split hash): not an error line
    lines = [x for x in res.stderr.strip().splitlines() if not x.startswith("warning: ")]
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def _registrable(tiny_adapter: Path, dst: Path) -> Path:  # noqa: F811
    bad = copy_adapter(tiny_adapter, dst)
    (bad / "metrics.json").write_text(json.dumps({"dev": {}, "test": {}}))
    return bad


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", CONFIG_CASES)
def test_a_tampered_config_value_is_one_error_line(tiny_adapter, tmp_path, registry_home, command, case):  # noqa: F811
    edit, field = CONFIG_CASES[case]
    bad = _registrable(tiny_adapter, tmp_path / "bad")
    path = bad / "adapter_config.json"
    path.write_text(edit(json.loads(path.read_text()), path.read_text()))
    _assert_one_error_line(run(*COMMANDS[command](bad)), str(path), field)
    assert _registered_versions(registry_home) == 0


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("how", WEIGHT_CASES)
def test_non_finite_or_integer_weights_are_refused(tiny_adapter, tmp_path, registry_home, command, how):  # noqa: F811
    bad = _registrable(tiny_adapter, tmp_path / "bad")
    _weights(how)(bad)
    # the user's file, not the copy register loads back
    _assert_one_error_line(run(*COMMANDS[command](bad)), str(bad / "adapter.safetensors"), "tensor '",
                           WEIGHT_CASES[how])
    assert _registered_versions(registry_home) == 0


def test_the_untampered_adapter_still_loads(tiny_adapter):  # noqa: F811
    from ptv2_core.adapter import load_adapter

    assert load_adapter(tiny_adapter).spec.name == "trec"
