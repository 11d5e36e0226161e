"""The search's pictures name the score by the task's metric ("dev accuracy", "dev span F1"), not
the objective's key "dev_score"; the pre-training curves name metrics the same way."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from optuna_studies.plots import (length_lr_figure, length_lr_html_figure, length_score_figure, over_time_figure,
                                  write_artifacts)
from ptv2_core.metric_names import objective_name
from ptv2_core.multitask.curves import curves_figure
from test_plots import RECORDS


def test_objective_names():
    assert objective_name("dev_score", "accuracy") == "dev accuracy"
    assert objective_name("dev_score", "span_f1") == "dev span F1"
    assert objective_name("dev_score", "macro_f1") == "dev macro F1"
    assert objective_name("dev_score") == "dev score"
    assert objective_name("dev_macro_f1", "accuracy") == "dev macro F1"  # a space's own metric wins
    assert objective_name("train_loss", "accuracy") == "train loss"


@pytest.mark.parametrize("task_metric, shown", [("accuracy", "dev accuracy"), ("span_f1", "dev span F1")])
def test_every_score_axis_names_the_tasks_metric(task_metric, shown):
    label = f"{shown} (each trial's best epoch)"
    for fig, axis in ((length_lr_figure(RECORDS, "dev_score", "max", "t", task_metric=task_metric),
                       lambda f: f.axes[1].get_ylabel()),
                      (length_score_figure(RECORDS, "dev_score", "max", "t", task_metric=task_metric),
                       lambda f: f.axes[0].get_ylabel()),
                      (over_time_figure(RECORDS, "dev_score", "max", "t", task_metric=task_metric),
                       lambda f: f.axes[0].get_ylabel())):
        try:
            assert axis(fig) == label
            assert "dev_score" not in " ".join(ax.get_title() for ax in fig.axes)
        finally:
            plt.close(fig)
    html = length_lr_html_figure(RECORDS, "dev_score", "max", "t", task_metric=task_metric)
    assert html.data[0].marker.colorbar.title.text == label


def test_written_pictures_name_the_tasks_metric(tmp_path):
    write_artifacts(RECORDS, tmp_path, "dev_score", "max", "rt / minilm", lengths=(4, 8, 16, 32),
                    task_metric="macro_f1")
    html = (tmp_path / "length_lr.html").read_text()
    assert "dev macro F1 (each trial's best epoch)" in html and "dev_score (each" not in html


def test_pretraining_curves_name_metrics_alike():
    history = [{"epoch": 0, "dev": {"wnut16": {"4": {"score": 0.1}}, "trec": {"4": {"score": 0.5}}}}]
    fig = curves_figure(history, {"wnut16": "span_f1", "trec": "accuracy"})
    try:
        assert [ax.get_ylabel() for ax in fig.axes] == ["dev span F1", "dev accuracy"]
    finally:
        plt.close(fig)


@pytest.mark.parametrize("kind", ["packaged", "file"])
def test_a_searchs_pictures_name_its_tasks_metric(tmp_path, kind):
    """What finish draws names the task's metric: trec's accuracy, a task file's macro F1."""
    from optuna_studies.finish import _draw
    from optuna_studies.plan import SearchPlan
    from optuna_studies.space import parse_space

    if kind == "packaged":
        task, shown = "trec", "dev accuracy"
    else:
        (tmp_path / "train.csv").write_text("text,label\na,x\nb,y\n")
        (tmp_path / "t.yaml").write_text("name: t\ntype: sequence\nlabels: [x, y]\nmetric: macro_f1\n"
                                         "data: {train: train.csv, dev: train.csv, test: train.csv}\n")
        task, shown = str(tmp_path / "t.yaml"), "dev macro F1"
    space = parse_space({"prompt_len": [4, 8, 16, 32], "lr": {"low": 1e-3, "high": 1e-1}, "epochs": 1, "trials": 4})
    plan = SearchPlan(task, "t", "m", space, f"sqlite:///{tmp_path}/o.db", "s", tmp_path / "out", tmp_path / "work",
                      None, 1, 0, 1, {"max_eval": 8})
    art = _draw(plan, RECORDS)
    html = (art / "length_lr.html").read_text()
    assert f"{shown} (each trial's best epoch)" in html and "dev score (each" not in html


def test_a_task_file_gone_since_the_plan_is_drawn_with_dev_score(tmp_path):
    from optuna_studies.plan import task_metric

    assert task_metric(str(tmp_path / "gone.yaml")) == ""
    assert task_metric("wnut16") == "span_f1"
