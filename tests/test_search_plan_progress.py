"""A task file's data is loaded whole by the search's plan before anything starts (22 s, silent, for a
65 MB 400k-row CSV): the search says so in one progress line first when the files are large; a packaged task loads nothing and
says nothing."""
from __future__ import annotations

import os

import pytest
import yaml


def search_stderr(tmp_path, monkeypatch, capsys, task: str) -> list[str]:
    """The stderr lines of ``ptv2 search`` refused at its next check (an MLflow server nothing
    answers at), after the plan's data check: nothing is made."""
    from pipelines.cli import main

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("PTV2_HOME", str(work / ".ptv2"))
    with pytest.raises(SystemExit) as exc:
        main(["search", "--task", task, "--out", str(work / "out"), "--mlflow-uri", "http://127.0.0.1:1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and sorted(os.listdir(work)) == [], err
    assert err[-1].startswith("error: ") and "http://127.0.0.1:1 does not answer" in err[-1], err
    return err[:-1]


@pytest.mark.parametrize("large", [True, False])
def test_a_large_task_files_data_check_says_so_once(tmp_path, monkeypatch, capsys, large):
    """Large: the data's bytes at the threshold (lowered to this file's size, not 8 MB written);
    small: no line, so bad data stays one error line."""
    from optuna_studies import plan

    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("text,label\n" + "".join(f"row number {i},{'ab'[i % 2]}\n" for i in range(20)))
    task = data / "task.yaml"
    task.write_text(yaml.safe_dump({"name": "mine", "type": "sequence", "data": {"train": "train.csv"}}))
    size = (data / "train.csv").stat().st_size
    monkeypatch.setattr(plan, "SAY_DATA_BYTES", size if large else size + 1)
    assert search_stderr(tmp_path, monkeypatch, capsys, str(task)) == (
        [f"checking the data of task file {task} (loading its rows as each trial will)"] if large else [])


def test_a_packaged_task_has_no_data_check_line(tmp_path, monkeypatch, capsys):
    assert search_stderr(tmp_path, monkeypatch, capsys, "trec") == []
