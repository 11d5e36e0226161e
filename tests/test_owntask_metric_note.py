"""A user sequence task left on the default metric (accuracy) whose train labels are very uneven: a
model that never predicts the rare label scores high on accuracy, and training keeps its best epoch
and a search its best trial by it. Loading says so once and names metric: macro_f1."""
from __future__ import annotations

from ptv2_core.tasks import load_task
from task_files import csv_rows, write_task

UNEVEN = [(f"hello there {i}", "greet") for i in range(30)] + [(f"see you {i}", "bye") for i in range(12)]
UNEVEN += [(f"what is it {i}", "ask") for i in range(3)]  # 3 of 45 rows: 7 %


def _named(tmp_path, name: str, extra: str = ""):
    path = write_task(tmp_path, "text,label\n" + csv_rows(UNEVEN), extra=extra)
    path.write_text(path.read_text().replace("name: t\n", f"name: {name}\n"))
    return str(path)


def test_uneven_labels_on_the_default_metric_are_noted_once(tmp_path, capsys):
    load_task(_named(tmp_path, "t-uneven"), label_notes=True)
    load_task(_named(tmp_path, "t-uneven"), label_notes=True)  # a search loads its task in every trial
    err = capsys.readouterr().err
    assert err.count("note:") == 1
    assert ("note: task 't-uneven': label 'ask' is 7% of the rows (an even share: 33%), and the task's metric is accuracy (the "
            "default), which a model that never predicts it scores well on: metric: macro_f1 in the task file weighs "
            "every label alike") in err


def test_a_metric_the_task_file_chose_or_even_labels_give_no_note(tmp_path, capsys):
    load_task(_named(tmp_path, "t-chosen", "metric: accuracy\n"), label_notes=True)
    load_task(_named(tmp_path, "t-macro", "metric: macro_f1\n"), label_notes=True)
    even = [(f"hello there {i}", "greet") for i in range(6)] + [(f"see you {i}", "bye") for i in range(6)]
    load_task(str(write_task(tmp_path, "text,label\n" + csv_rows(even))), label_notes=True)
    assert "note:" not in capsys.readouterr().err


def test_twelve_even_labels_give_no_note_and_one_rare_among_many_does(tmp_path, capsys):
    """Each of 12 even labels is 8% of the rows: a fair share, not a rare label (the note compared
    every label with 10% of the rows, so any balanced task of 10 labels or more got it)."""
    even = [(f"row {c} {i}", f"c{c}") for c in range(12) for i in range(6)]
    path = write_task(tmp_path, "text,label\n" + csv_rows(even))
    path.write_text(path.read_text().replace("name: t\n", "name: t-even12\n"))
    load_task(str(path), label_notes=True)
    assert "note:" not in capsys.readouterr().err
    uneven = [(f"row {c} {i}", f"c{c}") for c in range(1, 12) for i in range(12)] + [(f"odd {i}", "c0") for i in range(3)]
    (tmp_path / "train.csv").write_text("text,label\n" + csv_rows(uneven))
    path.write_text(path.read_text().replace("name: t-even12\n", "name: t-uneven12\n"))
    load_task(str(path), label_notes=True)
    assert ("note: task 't-uneven12': label 'c0' is 2% of the rows (an even share: 8%), and the task's metric is "
            "accuracy") in capsys.readouterr().err


def test_a_reader_of_the_task_gets_no_label_notes_by_default(tmp_path, capsys):
    """The notes are training's: load_task's default (eval, register, promote, a multi-task eval)
    leaves them out, and training's callers ask for them."""
    from ptv2_core import tasks

    tasks._NOTED.clear()
    load_task(_named(tmp_path, "t-reader"))
    assert "note:" not in capsys.readouterr().err
    load_task(_named(tmp_path, "t-reader"), label_notes=True)
    assert "label 'ask' is 7% of the rows" in capsys.readouterr().err


def test_eval_does_not_repeat_the_label_notes_training_gave(tmp_path, tiny_model_dir, capsys):
    """The uneven-labels and unseen-labels notes are about what training learns and selects by:
    ptv2 eval of the adapter printed them again on every run."""
    from conftest import run_cli
    from ptv2_core import tasks

    path = _named(tmp_path, "t-evalnote", "labels: [ask, bye, greet, never]\n")
    out = tmp_path / "adapter"
    tasks._NOTED.clear()
    r = run_cli("train", "--task", path, "--model", tiny_model_dir, "--prompt-len", "2", "--epochs", "1",
                "--max-train", "8", "--max-eval", "8", "--quiet", "--device", "cpu", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "label 'ask' is 7% of the rows" in r.stderr and "'never' (listed under labels:) has no train row" in r.stderr
    tasks._NOTED.clear()  # a fresh process, as ptv2 eval is
    r = run_cli("eval", "--adapter", str(out), "--max-eval", "8")
    assert r.returncode == 0, r.stderr
    assert "note: task" not in r.stderr, r.stderr
    # register and promote read the task too (the metadata check, the test split they score on)
    from components.registry.scoring import test_split

    tasks._NOTED.clear()
    capsys.readouterr()
    test_split(path, 0, 8)
    assert "note: task" not in capsys.readouterr().err
