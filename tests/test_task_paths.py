"""Data paths in a task YAML are relative to the YAML's folder; one written relative to the current
folder instead is pointed at, not just 'not found'."""
from __future__ import annotations

import pytest

from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks import load_task

ROWS = "text,label\n" + "".join(f"hello {i},greet\nbye {i},bye\n" for i in range(6))


def test_a_path_relative_to_the_current_folder_is_pointed_at(tmp_path, monkeypatch):
    (tmp_path / "proj" / "data").mkdir(parents=True)
    (tmp_path / "proj" / "data" / "train.csv").write_text(ROWS)
    (tmp_path / "proj" / "task.yaml").write_text("name: t\ntype: sequence\ndata: {train: proj/data/train.csv}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Ptv2Error) as e:
        load_task("proj/task.yaml")
    assert str(e.value) == ("data file not found: proj/proj/data/train.csv (train, named in proj/task.yaml); paths in "
                            "a task file are relative to its folder (proj): proj/data/train.csv from here is "
                            "data/train.csv there")


def test_a_path_relative_to_the_yaml_folder_loads_from_any_folder(tmp_path, monkeypatch):
    (tmp_path / "proj" / "data").mkdir(parents=True)
    (tmp_path / "proj" / "data" / "train.csv").write_text(ROWS)
    (tmp_path / "proj" / "task.yaml").write_text("name: t\ntype: sequence\ndata: {train: data/train.csv}\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    spec, dd = load_task("../proj/task.yaml")
    assert spec.labels == ("bye", "greet") and sum(len(dd[s]) for s in dd) == 12
