"""The search's closing line names its score by the task's metric ("dev accuracy 0.1875"), as its
pictures do, and says "dev score" where the metric is not known (a hub data set)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from optuna_studies.finish import SearchResult


def result(tmp_path: Path, task: str, metric: str = "dev_score") -> SearchResult:
    out = tmp_path / "out"
    out.mkdir()
    # best.json as finish_search writes it: the task's reference and the objective the search maximised
    (out / "best.json").write_text(json.dumps({"task": task, "metric": metric, "best_score": 0.1875}))
    return SearchResult({"prompt_len": 8, "lr": 0.00988}, 0.1875, out / "adapter", [{}, {}, {}], "run1",
                        "ptv2-trec-minilm", "sqlite:///x.db", out, {"score": 0.25})


@pytest.mark.parametrize("task, metric, shown", [("trec", "dev_score", "dev accuracy"),
                                                 ("wnut16", "dev_score", "dev span F1"),
                                                 ("trec", "dev_macro_f1", "dev macro F1"),
                                                 ("hub:someone/data", "dev_score", "dev score")])
def test_the_closing_line_names_the_tasks_metric(tmp_path, task, metric, shown):
    from pipelines.cli.search_cmds import best_line

    assert best_line(result(tmp_path, task, metric)) == (
        f"best: prompt_len 8, lr 0.00988, {shown} 0.1875, test 0.2500 (3 trials, study 'ptv2-trec-minilm'); "
        f"written to {tmp_path / 'out'}")


def test_a_task_file_gone_since_reads_dev_score(tmp_path):
    from pipelines.cli.search_cmds import best_line

    line = best_line(result(tmp_path, str(tmp_path / "gone" / "task.yaml")))
    assert ", dev score 0.1875, test 0.2500 " in line
