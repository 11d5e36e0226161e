"""`ptv2 predict --file` on a table (.csv, .jsonl, .json, .parquet): its text column is labelled and
the table written back with prediction columns. Before, each raw line was labelled: the header, a
quoted field's second line and the JSON syntax each got a label."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import run_cli as run

CSV = 'id,text,source\n1,"Who wrote Hamlet, the play?",web\n2,"How far is the moon?\nAsked twice",forum\n3,,web\n4,What is CPU ?,web\n'


def _adapter(root: Path, task: str) -> Path:
    """A real adapter on MiniLM, prompt untrained: the labels are arbitrary but deterministic."""
    from ptv2_core.adapter import save_adapter
    from ptv2_core.backbone import load_backbone
    from ptv2_core.build import build_model
    from ptv2_core.tasks import load_task

    spec, _ = load_task(task, max_train=1, max_eval=1)
    backbone, _ = load_backbone("minilm")
    return save_adapter(build_model(backbone, spec, 4, max_length=spec.max_length), root / "adapter", spec, "minilm")


@pytest.fixture(scope="module")
def trec(tmp_path_factory, minilm_path, one_torch_thread) -> Path:
    return _adapter(tmp_path_factory.mktemp("trec"), "trec")


@pytest.fixture(scope="module")
def wnut(tmp_path_factory, minilm_path, one_torch_thread) -> Path:
    return _adapter(tmp_path_factory.mktemp("wnut"), "wnut16")


def _user_error(res, *needles: str) -> None:
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def _line_labels(adapter: Path, *texts: str) -> list[str]:
    res = run("predict", "--adapter", str(adapter), *texts)
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()


def test_a_csv_gets_one_label_per_row_its_columns_kept(trec, tmp_path):
    (tmp_path / "data.csv").write_text(CSV)
    res = run("predict", "--adapter", str(trec), "--file", str(tmp_path / "data.csv"), "--scores")
    assert res.returncode == 0, res.stderr
    rows = list(csv.reader(io.StringIO(res.stdout, newline="")))
    assert rows[0] == ["id", "text", "source", "pred_label", "pred_score"]
    assert [r[:3] for r in rows[1:]] == [r[:3] for r in csv.reader(io.StringIO(CSV, newline=""))][1:]
    texts = ["Who wrote Hamlet, the play?", "How far is the moon?\nAsked twice", "What is CPU ?"]
    # the text column labelled as the same texts are on the command line (the score tells texts apart)
    assert [f"{rows[i][3]}\t{float(rows[i][4]):.4f}" for i in (1, 2, 4)] == _line_labels(trec, *texts, "--scores")
    assert rows[3][3:] == ["", ""]  # an empty text: no made-up label


def test_json_lines_keep_their_values_as_written_and_the_out_file_is_refused_unless_overwrite(trec, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text('{"id": 1, "text": "Who wrote Hamlet?", "ok": true, "w": 1.50, "meta": {"n": [1, false]}}\n\n'
                    '{"id": 2, "text": null}\n{"id": 3, "text": "How far is the moon?", "extra": "x"}\n')
    out = tmp_path / "out.jsonl"
    res = run("predict", "--adapter", str(trec), "--file", str(data), "--out", str(out))
    assert res.returncode == 0 and res.stdout == "", res.stderr
    assert '"w": 1.50, "meta": {"n": [1, false]}' in out.read_text()  # the number's text, not 1.5
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    labels = _line_labels(trec, "Who wrote Hamlet?", "How far is the moon?")
    assert rows == [{"id": 1, "text": "Who wrote Hamlet?", "ok": True, "w": 1.5, "meta": {"n": [1, False]},
                     "pred_label": labels[0]},
                    {"id": 2, "text": None, "pred_label": None},
                    {"id": 3, "text": "How far is the moon?", "extra": "x", "pred_label": labels[1]}]  # no "extra": NaN
    before = out.read_bytes()
    _user_error(run("predict", "--adapter", str(trec), "--file", str(data), "--out", str(out), "--scores"),
                "exists (pass --overwrite")
    assert out.read_bytes() == before
    res = run("predict", "--adapter", str(trec), "--file", str(data), "--out", str(out), "--scores", "--overwrite")
    assert res.returncode == 0, res.stderr
    assert "pred_score" in json.loads(out.read_text().splitlines()[0])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


@pytest.mark.parametrize("name", ["d.jsonl", "d.json"])
def test_json_numbers_come_back_byte_for_byte_never_as_infinity(trec, tmp_path, name):
    numbers = '"big": 1e400, "long": 12345678901234567.5, "w": 1.50, "e": -0.0E+01, "n": [100000000000000000001, 2E-3]'
    row = '{"text": "Who wrote Hamlet?", ' + numbers + '}'
    (tmp_path / name).write_text(row + "\n" if name == "d.jsonl" else f"[{row}]")
    res = run("predict", "--adapter", str(trec), "--file", str(tmp_path / name), "--scores")
    assert res.returncode == 0, res.stderr
    assert numbers in res.stdout and "Infinity" not in res.stdout, res.stdout
    back = json.loads(res.stdout, parse_constant=lambda c: pytest.fail(f"{c} is no JSON"))  # valid JSON
    assert (back if name == "d.jsonl" else back[0])["pred_label"] == _line_labels(trec, "Who wrote Hamlet?")[0]


def test_a_json_list_and_a_parquet_table_come_back_in_their_format(trec, tmp_path):
    (tmp_path / "d.json").write_text(json.dumps([{"body": "Who wrote Hamlet?", "n": 1}, {"body": "Why?", "n": 2}]))
    res = run("predict", "--adapter", str(trec), "--file", str(tmp_path / "d.json"), "--text-column", "body")
    assert res.returncode == 0, res.stderr
    assert [r["pred_label"] for r in json.loads(res.stdout)] == _line_labels(trec, "Who wrote Hamlet?", "Why?")
    pd.DataFrame({"text": ["Who wrote Hamlet?", "Why?"], "n": [1, 2]}).to_parquet(tmp_path / "d.parquet")
    _user_error(run("predict", "--adapter", str(trec), "--file", str(tmp_path / "d.parquet")), "--out PATH only")
    res = run("predict", "--adapter", str(trec), "--file", str(tmp_path / "d.parquet"), "--out", str(tmp_path / "o.parquet"))
    assert res.returncode == 0, res.stderr
    back = pd.read_parquet(tmp_path / "o.parquet")
    assert list(back.columns) == ["text", "n", "pred_label"] and back["n"].tolist() == [1, 2]
    assert back["pred_label"].tolist() == _line_labels(trec, "Who wrote Hamlet?", "Why?")


def test_ner_tags_one_per_word_from_a_list_of_words_or_a_text(wnut, tmp_path):
    (tmp_path / "d.jsonl").write_text('{"tokens": ["Paris", "rocks", "!"]}\n{"tokens": []}\n')
    res = run("predict", "--adapter", str(wnut), "--file", str(tmp_path / "d.jsonl"), "--scores")
    assert res.returncode == 0, res.stderr
    first, empty = (json.loads(line) for line in res.stdout.splitlines())
    line = _line_labels(wnut, "Paris rocks !")[0]  # word/TAG pairs
    assert first["pred_tags"] == [pair.rsplit("/", 1)[1] for pair in line.split()]
    assert len(first["pred_scores"]) == 3 and empty["pred_tags"] is None
    (tmp_path / "d.csv").write_text("text\nParis rocks !\n")
    res = run("predict", "--adapter", str(wnut), "--file", str(tmp_path / "d.csv"))
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["text,pred_tags", "Paris rocks !," + " ".join(first["pred_tags"])]
    (tmp_path / "bad.jsonl").write_text('{"tokens": ["New York", "rocks"]}\n')
    _user_error(run("predict", "--adapter", str(wnut), "--file", str(tmp_path / "bad.jsonl")),
                "row 1 of column 'tokens'", "white space")


@pytest.mark.parametrize("name,content,args,needle", [
    ("d.csv", "id,body\n1,hi\n", [], "has no column 'text'"),
    ("d.csv", "id,body\n1,hi\n", ["--text-column", "Body"], "no column 'Body'; its columns: id, body"),
    ("d.csv", "", [], "holds no rows to label"),
    ("d.csv", "id;text\n1;hi\n", [], "its fields look separated by ';': ptv2 reads a CSV's fields separated by commas"),
    ("d.csv", "text\nhello, world\n", [], "must be in double quotes"),  # not a CSV of one column
    ("d.jsonl", "hello\n", [], "line 1 is not JSON"),
    ("d.jsonl", '{"text": "hi"}\n{"text": "ho", "x": [NaN]}\n', [], "row 2 holds a number JSON cannot write"),
    ("d.tsv", "text\tlabel\nhi\tgreet\n", [], "looks like a table ptv2 does not read (.tsv)"),
    ("d.csv", "text,pred_label\nhi,x\n", [], "has a column 'pred_label' already"),
    ("d.csv", "a,text,a,b,b\n1,hi,2,3,4\n", [], "repeats column names: 'a', 'b'"),
    ("d.csv", "text\nhi\n", ["--json"], "--json applies to texts and text lines"),
    ("d.csv", "text\nhi\n", ["--out", "o.jsonl"], "must end in .csv"),
    ("d.txt", "hi\n", ["--out", "o.csv"], "--out applies to a table --file"),
    ("d.txt", "hi\n", ["--text-column", "text"], "--text-column applies to a table --file"),
])
def test_bad_tables_and_options_are_one_error_line_and_nothing_written(trec, tmp_path, name, content, args, needle):
    (tmp_path / name).write_text(content)
    args = [str(tmp_path / a) if a.startswith("o.") else a for a in args]
    _user_error(run("predict", "--adapter", str(trec), "--file", str(tmp_path / name), *args), needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_plain_text_lines_are_still_labelled_one_per_line(trec, tmp_path):
    (tmp_path / "d.txt").write_text("text,source\nWho wrote Hamlet?,web\n")
    res = run("predict", "--adapter", str(trec), "--file", str(tmp_path / "d.txt"))
    assert res.returncode == 0 and len(res.stdout.splitlines()) == 2, res.stderr


def test_ctrl_c_while_labelling_leaves_the_out_file_as_it_was(trec, tmp_path, monkeypatch, python_sigint):
    import os
    import signal

    import ptv2_core.predict

    real = ptv2_core.predict.predict

    def interrupted_after_a_batch(loaded, texts, batch_size, on_batch=None, **options):
        def then_ctrl_c(n):
            on_batch(n)
            os.kill(os.getpid(), signal.SIGINT)  # as a terminal's Ctrl-C, after the first real batch
        return real(loaded, texts, batch_size, on_batch=then_ctrl_c, **options)

    (tmp_path / "d.csv").write_text("text\n" + "".join(f"question {i} ?\n" for i in range(8)))
    out = tmp_path / "o.csv"
    out.write_text("old\n")
    monkeypatch.setattr(ptv2_core.predict, "predict", interrupted_after_a_batch)
    res = run("predict", "--adapter", str(trec), "--file", str(tmp_path / "d.csv"), "--out", str(out), "--overwrite",
              "--batch-size", "2")
    assert res.returncode == 130 and res.stderr.strip().splitlines()[-1].startswith("error: interrupted"), res.stderr
    assert "nothing was written" in res.stderr and out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "o.csv"]


def test_the_default_column_is_the_adapters_task_text_column_else_text(tmp_path, minilm_path, one_torch_thread):
    (tmp_path / "train.csv").write_text("utterance,label\n" + "".join(f"hi {i},greet\nbye {i},bye\n" for i in range(4)))
    (tmp_path / "task.yaml").write_text(json.dumps({"name": "mine", "type": "sequence", "text_column": "utterance",
                                                    "label_column": "label", "metric": "accuracy",
                                                    "data": {"train": "train.csv"}}))
    adapter = _adapter(tmp_path, str(tmp_path / "task.yaml"))
    (tmp_path / "both.csv").write_text("text,utterance\nignored,hello there\n")
    res = run("predict", "--adapter", str(adapter), "--file", str(tmp_path / "both.csv"), "--scores")
    assert res.returncode == 0, res.stderr
    label, score = res.stdout.splitlines()[1].split(",")[2:]
    # the score tells the texts apart (an untrained prompt may give both texts one label)
    assert f"{label}\t{float(score):.4f}" == _line_labels(adapter, "hello there", "--scores")[0]
    assert f"{label}\t{float(score):.4f}" != _line_labels(adapter, "ignored", "--scores")[0]
    (tmp_path / "text.jsonl").write_text('{"text": "hello there"}\n')
    res = run("predict", "--adapter", str(adapter), "--file", str(tmp_path / "text.jsonl"))
    assert json.loads(res.stdout)["pred_label"] == _line_labels(adapter, "hello there")[0], res.stderr
    (tmp_path / "none.csv").write_text("body\nhello\n")
    _user_error(run("predict", "--adapter", str(adapter), "--file", str(tmp_path / "none.csv")),
                "no column 'utterance' or 'text' (the adapter's task's text column, or the default); its columns: body")


def test_a_table_is_labelled_and_written_in_chunks_the_same_as_whole(trec, tmp_path, monkeypatch):
    import ptv2_core.predict
    from pipelines.cli import predict_table

    texts = [f"question {i} ?" for i in range(7)]
    (tmp_path / "d.csv").write_text("id,text\n" + "".join(f"{i},{t}\n" for i, t in enumerate(texts)) + "7,\n")
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))
    whole = {n: run("predict", "--adapter", str(trec), "--file", str(tmp_path / n), "--scores") for n in ("d.csv", "d.jsonl")}
    real, sizes = ptv2_core.predict.predict, []

    def counted(loaded, todo, batch_size, on_batch=None, **options):
        sizes.append(len(todo))
        return real(loaded, todo, batch_size, on_batch=on_batch, **options)

    monkeypatch.setattr(ptv2_core.predict, "predict", counted)
    monkeypatch.setattr(predict_table, "CHUNK", 3)
    for name in ("d.csv", "d.jsonl"):
        sizes.clear()
        out = tmp_path / f"o{Path(name).suffix}"
        res = run("predict", "--adapter", str(trec), "--file", str(tmp_path / name), "--scores", "--out", str(out))
        assert res.returncode == 0, res.stderr
        assert sizes == [3, 3, 1]  # the CSV's last row has no text: not labelled
        # the same table as labelled at once: the same rows, columns and labels; the scores to float32's
        # precision (batches of other sizes pad to other lengths, and sum in another order)
        got, want = _rows(out.read_text(), name), _rows(whole[name].stdout, name)
        assert [{k: v for k, v in r.items() if k != "pred_score"} for r in got] == \
            [{k: v for k, v in r.items() if k != "pred_score"} for r in want]
        assert [r["pred_score"] == "" or r["pred_score"] is None for r in got] == \
            [r["pred_score"] == "" or r["pred_score"] is None for r in want]
        assert all(float(g["pred_score"]) == pytest.approx(float(w["pred_score"]), rel=1e-5)
                   for g, w in zip(got, want) if w["pred_score"] not in ("", None))


def _rows(text: str, name: str) -> list[dict]:
    import csv
    import io

    if name.endswith(".csv"):
        return list(csv.DictReader(io.StringIO(text)))
    return [json.loads(line) for line in text.splitlines()]


def test_a_file_written_at_out_meanwhile_is_kept_not_replaced(trec, tmp_path, monkeypatch):
    import ptv2_core.durable

    real, out = ptv2_core.durable.sync, tmp_path / "o.csv"

    def then_someone_writes_out(path):
        real(path)
        if Path(path).name.endswith(".tmp"):  # the labelled table is written: another program saves --out now
            out.write_text("theirs\n")

    (tmp_path / "d.csv").write_text("text\nhi\n")
    monkeypatch.setattr(ptv2_core.durable, "sync", then_someone_writes_out)
    _user_error(run("predict", "--adapter", str(trec), "--file", str(tmp_path / "d.csv"), "--out", str(out)),
                f"--out '{out}' exists", "--overwrite")
    assert out.read_text() == "theirs\n" and sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "o.csv"]
    res = run("predict", "--adapter", str(trec), "--file", str(tmp_path / "d.csv"), "--out", str(out), "--overwrite")
    assert res.returncode == 0 and out.read_text().startswith("text,pred_label\n"), res.stderr


@pytest.mark.parametrize("content,needle", [("text,pred_label\nhi,x\n", "has a column 'pred_label' already"),
                                            ("body\nhi\n", "has no column 'text'"),
                                            ("text\nhi\n", "corrupt adapter weights")])  # the control
def test_a_table_it_cannot_label_is_refused_before_the_model_loads(trec, tmp_path, content, needle):
    import shutil

    from ptv2_core.adapter import WEIGHTS

    broken = Path(shutil.copytree(trec, tmp_path / "adapter"))
    (broken / WEIGHTS).write_bytes(b"not safetensors")  # loading the model fails, saying so
    (tmp_path / "d.csv").write_text(content)
    res = run("predict", "--adapter", str(broken), "--file", str(tmp_path / "d.csv"))
    _user_error(res, needle)


def test_a_csv_header_comes_back_as_written_a_blank_name_too(trec, tmp_path):
    (tmp_path / "d.csv").write_text("text,,note \nhi,x,y\n")
    res = run("predict", "--adapter", str(trec), "--file", str(tmp_path / "d.csv"))
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0] == "text,,note ,pred_label"  # not 'Unnamed: 1'
