"""A tampered pre-trained prompt (prompt_config.json values of the wrong type or range, non-finite
or integer tensors in prompt.safetensors) is one `error:` line naming the file and the field, exit
2, for every command that uses it: eval --pretrained, train --init, search --init and the same
`ptv2 pretrain` again on the finished folder. Before, most crashed with a TypeError/AttributeError
traceback, and NaN/int32 weights were scored, trained from or taken as "finished already"."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import run_cli as run
from test_multitask import _csv_task, tiny_bert

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def made(tmp_path_factory, minilm_path):
    """A finished pre-trained prompt (tiny BERT, two CSV tasks), its model, tasks and a space."""
    from transformers import AutoTokenizer

    root = tmp_path_factory.mktemp("pre")
    mp = pytest.MonkeyPatch()
    mp.setenv("PTV2_HOME", str(root / "home"))
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    model = root / "tiny"
    tiny_bert(tokenizer).save_pretrained(model)
    tokenizer.save_pretrained(model)
    tasks = (_csv_task(root / "a", "alpha", 40), _csv_task(root / "b", "beta", 40))
    space = root / "space.yaml"
    space.write_text("metric: dev_score\ndirection: maximize\nprompt_len: [2, 4]\n"
                     "lr: {low: 3.0e-3, high: 5.0e-2, log: true}\nepochs: 1\ntrials: 1\n")
    made = dict(root=root, model=model, tasks=tasks, space=space, prompt=root / "prompt")
    res = run(*_pretrain(made, made["prompt"]))
    assert res.returncode == 0, res.stderr
    yield made
    mp.undo()


def _pretrain(made: dict, out: Path) -> list[str]:
    return ["pretrain", "--tasks", ",".join(made["tasks"]), "--model", str(made["model"]), "--max-prompt-len", "4",
            "--lengths", "2,4", "--epochs", "1", "--batch-size", "8", "--device", "cpu", "--out", str(out),
            "--quiet", "--no-track"]


COMMANDS = {
    "eval": lambda m, d, tmp: ["eval", "--pretrained", str(d), "--max-eval", "4", "--device", "cpu"],
    "train": lambda m, d, tmp: ["train", "--task", m["tasks"][0], "--model", str(m["model"]), "--init", str(d),
                                "--prompt-len", "2", "--epochs", "1", "--max-train", "8", "--max-eval", "8",
                                "--device", "cpu", "--out", str(tmp / "out"), "--quiet"],
    # a storage URL refused after the prompt is checked: an untampered prompt never starts Ray here
    "search": lambda m, d, tmp: ["search", "--task", m["tasks"][0], "--model", str(m["model"]), "--init", str(d),
                                 "--space", str(m["space"]), "--out", str(tmp / "out"), "--storage", "bogus://x"],
    "pretrain": lambda m, d, tmp: _pretrain(m, d),  # the same command again: "finished already" before
}


def _set(field: str, value):
    """An edit of prompt_config.json's ``field`` (dotted; a number indexes a list) to ``value``."""
    def edit(config: dict) -> None:
        *parents, key = field.split(".")
        node = config
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        node[key] = value
    return edit


CONFIG_CASES = {
    "max_prompt_len-string": (_set("max_prompt_len", "4"), "'max_prompt_len'"),
    "max_prompt_len-zero": (_set("max_prompt_len", 0), "'max_prompt_len'"),
    "lengths-string": (_set("lengths", "2,4"), "'lengths'"),
    "lengths-string-entry": (_set("lengths", [2, "4"]), "'lengths'"),
    "lengths-zero-entry": (_set("lengths", [0, 4]), "'lengths'"),
    "lengths-beyond-max": (_set("lengths", [2, 8]), "'lengths'"),
    "prompt_len-string": (_set("prompt.prompt_len", "4"), "'prompt.prompt_len'"),
    "num_layers-float": (_set("prompt.num_layers", 2.0), "'prompt.num_layers'"),
    "tasks-string": (_set("tasks", "alpha"), "'tasks'"),
    "tasks-entry-int": (_set("tasks", [1, 2]), "'tasks[0]'"),
    "head-num_labels-string": (_set("tasks.0.head.num_labels", "2"), "'tasks[0].head.num_labels'"),
    "head-pooling-max": (_set("tasks.0.head.pooling", "max"), "'tasks[0].head.pooling'"),
    "spec-labels-ints": (_set("tasks.1.spec.labels", [1, 2]), "'tasks[1].spec.labels'"),
    "ref-int": (_set("tasks.0.ref", 3), "'tasks[0].ref'"),
    "pretrain_config-list": (_set("pretrain_config", []), "'pretrain_config'"),
    "seed-string": (_set("pretrain_config.seed", "0"), "'pretrain_config.seed'"),
    "base-name-int": (_set("base_model.name", 3), "'base_model.name'"),
    "task_keys-list": (_set("task_keys", []), "'task_keys'"),
}


def _weights(how: str, only: str = ""):
    def edit(path: Path) -> None:
        state = load_file(str(path))
        for k, v in state.items():
            if k.startswith(only):
                state[k] = v.to(torch.int32) if how == "int32" else torch.full_like(v, float(how))
        save_file(state, str(path), metadata={"format": "ptv2-pretrained-prompt"})
    return edit


WEIGHT_CASES = {
    "nan": (_weights("nan"), "not finite"),
    "inf": (_weights("inf"), "not finite"),
    "int32": (_weights("int32"), "int32, not floating point"),
    "nan-prefix-only": (_weights("nan", "prefix."), "tensor 'prefix.embedding.weight' holds values that are not finite"),
}


def _copy(made: dict, tmp_path: Path) -> Path:
    return Path(shutil.copytree(made["prompt"], tmp_path / "prompt"))


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _assert_one_error_line(res, *needles: str) -> None:
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def _check(made: dict, tmp_path: Path, prompt: Path, command: str, *needles: str) -> None:
    before = _files(prompt)
    res = run(*COMMANDS[command](made, prompt, tmp_path))
    _assert_one_error_line(res, *needles)
    assert not (tmp_path / "out").exists()  # nothing half-written
    assert _files(prompt) == before


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", CONFIG_CASES)
def test_a_tampered_prompt_config_value_is_one_error_line(made, tmp_path, command, case):
    edit, field = CONFIG_CASES[case]
    prompt = _copy(made, tmp_path)
    path = prompt / "prompt_config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))
    _check(made, tmp_path, prompt, command, f"corrupt pre-trained prompt config '{path}'", field)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("how", WEIGHT_CASES)
def test_non_finite_or_integer_prompt_weights_are_refused(made, tmp_path, command, how):
    edit, needle = WEIGHT_CASES[how]
    prompt = _copy(made, tmp_path)
    edit(prompt / "prompt.safetensors")
    _check(made, tmp_path, prompt, command, f"corrupt pre-trained prompt weights '{prompt / 'prompt.safetensors'}'",
           "tensor '", needle)


def test_the_untampered_prompt_still_serves_every_command(made, tmp_path):
    prompt = _copy(made, tmp_path)
    res = run(*COMMANDS["eval"](made, prompt, tmp_path))
    assert res.returncode == 0 and set(json.loads(res.stdout)["tasks"]) == {"alpha", "beta"}, res.stderr
    res = run(*COMMANDS["pretrain"](made, prompt, tmp_path))
    assert res.returncode == 0 and "finished already" in res.stderr, res.stderr
    res = run(*COMMANDS["search"](made, prompt, tmp_path))  # past the prompt's checks, to the storage URL
    _assert_one_error_line(res, "unsupported study storage 'bogus'")
    res = run(*COMMANDS["train"](made, prompt, tmp_path))
    assert res.returncode == 0 and (tmp_path / "out" / "adapter_config.json").is_file(), res.stderr
