"""A max length over the model's positions: the error says what to lower and where it is set."""
from __future__ import annotations

import pytest

from ptv2_core.errors import Ptv2Error

WHERE = ("lower it to at most 512: `max_length:` in the task file, or `max_length` under `fixed:` in a "
         "search space (the only place for a packaged or hub task's own)")


def test_the_message_names_the_key_and_the_files_it_is_set_in():
    from transformers import AutoConfig

    from ptv2_core.build import check_prompt_len

    with pytest.raises(Ptv2Error) as e:
        check_prompt_len(4, AutoConfig.for_model("bert", max_position_embeddings=512), 1024)
    assert str(e.value) == f"max length 1024 is too long for this model: it has 512 positions; {WHERE}"


def test_train_on_a_task_file_with_max_length_1024_names_its_key(tmp_path):
    """`ptv2 train` on a task YAML with `max_length: 1024` and MiniLM (512 positions) said only
    'max length 1024 is too long for this model', naming neither the file's key nor the search
    space's, where a packaged task's length is lowered."""
    from conftest import run_cli

    (tmp_path / "train.csv").write_text("text,label\n" + "".join(f"hi {i},a\nbye {i},b\n" for i in range(6)))
    task = tmp_path / "task.yaml"
    task.write_text("name: t\ntype: sequence\nmax_length: 1024\ndata: {train: train.csv}\n")
    res = run_cli("train", "--task", str(task), "--out", str(tmp_path / "out"), "--model", "minilm",
                  "--prompt-len", "4", "--epochs", "1", "--quiet")
    assert res.returncode == 2, res.stderr
    assert res.stderr.splitlines() == [
        f"error: max length 1024 is too long for this model: it has 512 positions; {WHERE}"], res.stderr
    assert not (tmp_path / "out").exists()
