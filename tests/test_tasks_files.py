"""User task YAML files and their data files: the happy paths and every bad input."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from ptv2_core.errors import Ptv2Error
from ptv2_core.tasks import DataSource, TaskSpec, load_task, load_task_yaml

INTENTS = [("hello there", "greet"), ("hi!", "greet"), ("good morning", "greet"), ("hey you", "greet"),
           ("bye now", "bye"), ("see you", "bye"), ("good night", "bye"), ("farewell", "bye")]
TAGGED = [(["Paris", "is", "nice"], ["B-loc", "O", "O"]), (["I", "met", "Ada", "Lovelace"], ["O", "O", "B-per", "I-per"]),
          (["no", "entity", "here"], ["O", "O", "O"]), (["Rome", "and", "Oslo"], ["B-loc", "O", "B-loc"])]


def in_split(rows, split: str):
    """The rows with the split's name in each text: given splits must not copy train."""
    return [(f"{t} ({split})", y) for t, y in rows]


def write_yaml(tmp: Path, body: str, name: str = "task.yaml") -> Path:
    p = tmp / name
    p.write_text(body)
    return p


def write_csv(path: Path, rows, cols=("utterance", "intent")) -> Path:
    pd.DataFrame(rows, columns=list(cols)).to_csv(path, index=False)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


SEQ_YAML = """\
name: my-intents
type: sequence
labels: [greet, bye]
text_column: utterance
label_column: intent
metric: accuracy
max_length: 64
data:
  train: train.csv
  dev: dev.csv
  test: test.csv
"""


def test_sequence_csv_all_splits(tmp_path):
    for split in ("train", "dev", "test"):
        write_csv(tmp_path / f"{split}.csv", in_split(INTENTS, split))
    spec, dd = load_task(str(write_yaml(tmp_path, SEQ_YAML)))
    assert spec == TaskSpec("my-intents", "sequence", ("greet", "bye"), "accuracy", "utterance", "intent", 64)
    assert [len(dd[s]) for s in dd] == [8, 8, 8]
    assert dd["test"]["text"] == [t for t, _ in in_split(INTENTS, "test")]  # given splits keep file order
    assert dd["test"]["label"] == [0, 0, 0, 0, 1, 1, 1, 1]


def test_labels_inferred_and_dev_test_carved(tmp_path):
    rows = [(f"{t} number {i}", y) for i in range(10) for t, y in INTENTS]
    write_csv(tmp_path / "train.csv", rows)
    yml = write_yaml(tmp_path, "name: t\ntype: sequence\ntext_column: utterance\nlabel_column: intent\ndata: {train: train.csv}\n")
    spec, src = load_task_yaml(yml)
    assert spec.labels == ("bye", "greet") and spec.metric == "accuracy" and spec.max_length == 128
    assert src == DataSource(train=tmp_path / "train.csv")
    spec, dd = load_task(str(yml), seed=0)
    assert [len(dd[s]) for s in dd] == [64, 8, 8]
    for s in ("dev", "test"):
        assert sorted(dd[s]["label"]) == [0, 0, 0, 0, 1, 1, 1, 1]  # stratified
    assert not set(dd["train"]["text"]) & set(dd["test"]["text"])
    _, again = load_task(str(yml), seed=0)
    _, other = load_task(str(yml), seed=1)
    assert again["test"]["text"] == dd["test"]["text"] and set(other["test"]["text"]) != set(dd["test"]["text"])


def test_duplicates_in_train_stay_on_one_side_when_carving(tmp_path):
    rows = [(f"Text {i % 20}", "a" if i % 2 else "b") for i in range(60)]  # every text 3 times
    write_csv(tmp_path / "train.csv", rows, ("text", "label"))
    _, dd = load_task(str(write_yaml(tmp_path, "name: d\ntype: sequence\ndata: {train: train.csv}\n")))
    train, dev, test = (set(dd[s]["text"]) for s in ("train", "dev", "test"))
    assert dev and test and not (train & dev or train & test or dev & test)


def test_jsonl_json_parquet_sequence(tmp_path):
    recs = {s: [{"text": t, "label": y} for t, y in in_split(INTENTS, s)] for s in ("train", "dev", "test")}
    write_jsonl(tmp_path / "train.jsonl", recs["train"])
    (tmp_path / "dev.json").write_text(json.dumps(recs["dev"]))
    pd.DataFrame(recs["test"]).to_parquet(tmp_path / "test.parquet")
    yml = write_yaml(tmp_path, "name: m\ntype: sequence\nmetric: macro_f1\ndata: {train: train.jsonl, dev: dev.json, test: test.parquet}\n")
    spec, dd = load_task(str(yml))
    assert spec.metric == "macro_f1" and spec.labels == ("bye", "greet")
    assert [dd[s]["label"] for s in dd] == [[1, 1, 1, 1, 0, 0, 0, 0]] * 3


def test_numeric_labels_keep_their_spelling(tmp_path):
    for split in ("train", "dev", "test"):
        write_csv(tmp_path / f"{split}.csv", [(t, 1 if y == "greet" else 0) for t, y in in_split(INTENTS, split)],
                  ("text", "label"))
    yml = write_yaml(tmp_path, "name: n\ntype: sequence\nlabels: [0, 1]\ndata: {train: train.csv, dev: dev.csv, test: test.csv}\n")
    spec, dd = load_task(str(yml))
    assert spec.labels == ("0", "1") and dd["train"]["label"][:5] == [1, 1, 1, 1, 0]


def test_token_task_jsonl_and_parquet(tmp_path):
    recs = [{"tokens": w, "tags": t} for w, t in TAGGED]
    write_jsonl(tmp_path / "train.jsonl", [{"tokens": [*r["tokens"], str(i)], "tags": [*r["tags"], "O"]}
                                           for i in range(5) for r in recs])
    pd.DataFrame(recs).to_parquet(tmp_path / "test.parquet")
    yml = write_yaml(tmp_path, "name: ner\ntype: token\ndata: {train: train.jsonl, test: test.parquet}\n")
    spec, dd = load_task(str(yml))
    assert spec.type == "token" and spec.metric == "span_f1"
    assert spec.labels == ("O", "B-loc", "B-per", "I-per")
    assert (spec.text_column, spec.label_column) == ("tokens", "tags")
    assert dd["test"]["tokens"] == [w for w, _ in TAGGED]
    assert dd["test"]["tags"][1] == [0, 0, 2, 3]
    assert len(dd["dev"]) > 0 and len(dd["train"]) + len(dd["dev"]) == 20


def test_task_spec_round_trip():
    spec = TaskSpec("x", "token", ("O", "B-a", "I-a"), "span_f1", "tokens", "tags", 64)
    d = spec.to_dict()
    assert d["labels"] == ["O", "B-a", "I-a"]
    assert TaskSpec.from_dict(json.loads(json.dumps(d))) == spec
    with pytest.raises(Ptv2Error, match="unknown keys.*lables"):
        TaskSpec.from_dict({**d, "lables": []})


@pytest.mark.parametrize("name", ["/tmp/x/owned", "../../x", "a/b", "a\\b", ".", "..", ".hidden", "x\x00y", "tab\there",
                                  "x" * 201])
def test_a_task_name_that_is_not_a_plain_folder_name_is_refused(tmp_path, name):
    """The name becomes the task's folder (prepared data): `name: ../../x` or an absolute path
    wrote train/dev/test.parquet outside the output folder."""
    with pytest.raises(Ptv2Error, match="task name .* (cannot name a folder|is too long)"):
        TaskSpec(name, "sequence", ("a", "b"), "accuracy")
    _good_files(tmp_path)
    with pytest.raises(Ptv2Error, match="task name .* (cannot name a folder|is too long)"):
        load_task_yaml(write_yaml(tmp_path, SEQ_YAML.replace("name: my-intents", f"name: {json.dumps(name)}")))
    assert TaskSpec("café-2 v.1_x", "sequence", ("a", "b"), "accuracy").name == "café-2 v.1_x"  # any other is kept


def test_a_stored_hub_task_name_with_a_slash_loads_under_its_safe_name():
    """Adapters and prompts trained on ``hub:user/data`` before task names had to be folder names
    recorded the name ``user/data``: they still load, named as such a task is named now."""
    d = TaskSpec("x", "sequence", ("a", "b"), "accuracy").to_dict()
    assert TaskSpec.from_dict({**d, "name": "user/data"}).name == "user-data"
    assert TaskSpec.from_dict({**d, "name": "/data/../intents"}).name == "data-..-intents"


@pytest.mark.parametrize("stored, name", [(".hidden", "hidden"), ("a\\b", "a-b"), ("tab\there", "tab-here"),
                                          ("é" * 150, "é" * 100), ("user/data", "user-data"), ("kept", "kept")])
def test_a_stored_task_name_a_task_may_no_longer_have_loads_repaired(tmp_path, stored, name):
    """Task names may no longer start with '.', hold '\\' or control characters, or pass 200
    bytes: an adapter or prompt saved earlier under such a name loads (eval, predict, register)
    under the name such a task gets now, not as a corrupt config."""
    from ptv2_core.tasks.spec import stored_task_name

    d = TaskSpec("x", "sequence", ("a", "b"), "accuracy").to_dict()
    assert TaskSpec.from_dict({**d, "name": stored}).name == name == stored_task_name(stored)


# ---- bad input: every case is a Ptv2Error that names the problem ------------------------------


def _good_files(tmp: Path) -> None:
    for split in ("train", "dev", "test"):
        write_csv(tmp / f"{split}.csv", in_split(INTENTS, split))


def test_unknown_task():
    with pytest.raises(Ptv2Error) as e:
        load_task("imdb")
    assert str(e.value) == "unknown task 'imdb': expected one of trec, rt, wnut16, bbc, a task YAML file, or hub:<name>"


def test_yaml_missing(tmp_path):
    with pytest.raises(Ptv2Error, match=r"task file not found: .*nope\.yaml"):
        load_task(str(tmp_path / "nope.yaml"))


def test_yaml_malformed(tmp_path):
    with pytest.raises(Ptv2Error, match="not valid YAML"):
        load_task(str(write_yaml(tmp_path, "name: [unclosed\ntype: sequence\n")))
    # one line, with where (YAML's own message ran to 4-5 lines with its marker lines)
    with pytest.raises(Ptv2Error) as e:
        load_task(str(write_yaml(tmp_path, "name: x\ntype: sequence: token\n")))
    assert "\n" not in str(e.value) and str(e.value).endswith("not valid YAML: mapping values are not allowed "
                                                              "here (line 2, column 15)"), str(e.value)
    bad = tmp_path / "latin.yaml"
    bad.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(Ptv2Error, match=r"latin\.yaml is not UTF-8 text: byte 0xe9 on line 1 \(Windows-1252 or Latin-1\?\); save it as UTF-8$"):
        load_task(str(bad))
    with pytest.raises(Ptv2Error, match="must hold a mapping"):
        load_task(str(write_yaml(tmp_path, "- just\n- a list\n")))


@pytest.mark.parametrize("body", ["", "# only a comment\n"])
def test_an_empty_task_file_says_so(tmp_path, body):
    path = write_yaml(tmp_path, body)
    with pytest.raises(Ptv2Error) as e:
        load_task(str(path))
    assert str(e.value) == (f"task file {path} is empty: it must hold a mapping (name:, type:, data: ...; "
                            "docs/tasks.md)"), str(e.value)  # it said "got NoneType"


@pytest.mark.parametrize("name, says", [
    ("123", "name must be text, got 123 (YAML read a number): put it in quotes, name: \"...\""),
    ("yes", "name must be text, got True (YAML read a boolean): put it in quotes"),
    ("../x", "task name '../x' cannot name a folder"),
    ('""', "task name must be a non-empty string"),
])
def test_a_bad_name_in_a_task_file_names_the_file(tmp_path, name, says):
    """`name: 123` failed with a message that did not say which file (and YAML had made it a number)."""
    _good_files(tmp_path)
    path = write_yaml(tmp_path, SEQ_YAML.replace("name: my-intents", f"name: {name}"))
    with pytest.raises(Ptv2Error) as e:
        load_task(str(path))
    assert str(e.value).startswith(f"task file {path}: {says}"), str(e.value)


@pytest.mark.parametrize("drop", ["name", "type", "data"])
def test_yaml_missing_required_key(tmp_path, drop):
    _good_files(tmp_path)
    body = "".join(line + "\n" for line in SEQ_YAML.splitlines() if not line.startswith(drop) and not (drop == "data" and line.startswith("  ")))
    with pytest.raises(Ptv2Error, match=f"missing required keys \\['{drop}'\\]"):
        load_task(str(write_yaml(tmp_path, body)))


@pytest.mark.parametrize("labels, shown", [("[yes, no]", "True in labels is a bool"), ("[1.50, 2]", "1.5 in labels is a float"),
                                           ("[a, ~]", "None in labels is a NoneType")])
def test_yaml_labels_that_are_not_text_ask_for_quotes(tmp_path, labels, shown):
    """YAML 1.1 made labels: [yes, no] the labels 'True', 'False': every data label was then
    'outside the label list'."""
    write_csv(tmp_path / "train.csv", [(t, "yes" if y == "greet" else "no") for t, y in INTENTS], ("text", "label"))
    with pytest.raises(Ptv2Error, match=f"label {shown}, not the text in the file .*quote the labels"):
        load_task(str(write_yaml(tmp_path, f"name: q\ntype: sequence\nlabels: {labels}\ndata: {{train: train.csv}}\n")))
    spec, _ = load_task(str(write_yaml(tmp_path, 'name: q\ntype: sequence\nlabels: ["yes", "no"]\ndata: {train: train.csv}\n')))
    assert spec.labels == ("yes", "no")


@pytest.mark.parametrize("labels, data, shown", [
    ("[010, 011]", ("010", "011"), 'label 010 in labels is the number 8 to YAML, not the text "010"'),
    ("[\"a\", 0x1F]", ("a", "0x1F"), 'label 0x1F in labels is the number 31 to YAML'),
    ("[1_000, 2000]", ("1_000", "2000"), 'label 1_000 in labels is the number 1000 to YAML'),
    ("[+5, 6]", ("+5", "6"), 'label \\+5 in labels is the number 5 to YAML'),
    ("[1:30, 2:00]", ("1:30", "2:00"), 'label 1:30 in labels is the number 90 to YAML'),
])
def test_yaml_labels_read_as_other_numbers_ask_for_quotes(tmp_path, labels, data, shown):
    """YAML 1.1 read labels: [010, 011] as 8 and 9: the data's "010" rows were then 'outside the
    label list [8, 9]', a message that hid the cause. A number written as itself stays allowed."""
    write_csv(tmp_path / "train.csv", [(t, data[y == "bye"]) for t, y in INTENTS] * 3, ("text", "label"))
    body = f"name: q\ntype: sequence\nlabels: {labels}\ndata: {{train: train.csv}}\n"
    quoted = f"labels: [{', '.join(map(json.dumps, data))}]"
    with pytest.raises(Ptv2Error, match=f"{shown}.* quote the labels: {re.escape(quoted)}$"):
        load_task(str(write_yaml(tmp_path, body)))
    quoted = body.replace(f"labels: {labels}", quoted)
    spec, dd = load_task(str(write_yaml(tmp_path, quoted)))
    assert spec.labels == data and len(dd["train"]) + len(dd["dev"]) + len(dd["test"]) == 24


def test_yaml_bad_values(tmp_path):
    _good_files(tmp_path)
    cases = {
        SEQ_YAML.replace("type: sequence", "type: regression"): "type must be one of sequence, token",
        SEQ_YAML.replace("metric: accuracy", "metric: span_f1"): "metric 'span_f1' is not one of accuracy, macro_f1",
        SEQ_YAML.replace("max_length: 64", "max_length: many"): "max_length must be an integer",
        SEQ_YAML + "lables: [a]\n": "unknown keys \\['lables'\\]",
        SEQ_YAML.replace("  train: train.csv\n", ""): "missing required key data.train",
    }
    for body, msg in cases.items():
        with pytest.raises(Ptv2Error, match=msg):
            load_task(str(write_yaml(tmp_path, body)))


def test_data_file_missing(tmp_path):
    _good_files(tmp_path)
    (tmp_path / "dev.csv").unlink()
    with pytest.raises(Ptv2Error, match=r"data file not found: .*dev\.csv \(dev"):
        load_task(str(write_yaml(tmp_path, SEQ_YAML)))


def test_unsupported_extension(tmp_path):
    _good_files(tmp_path)
    (tmp_path / "train.tsv").write_text("a\tb\n")
    with pytest.raises(Ptv2Error, match=r"unsupported extension '\.tsv'"):
        load_task(str(write_yaml(tmp_path, SEQ_YAML.replace("train.csv", "train.tsv"))))


def test_column_missing(tmp_path):
    _good_files(tmp_path)
    write_csv(tmp_path / "dev.csv", INTENTS, ("utterance", "label"))
    with pytest.raises(Ptv2Error) as e:
        load_task(str(write_yaml(tmp_path, SEQ_YAML)))
    msg = str(e.value)
    assert "'intent'" in msg and "dev.csv" in msg and "['utterance', 'label']" in msg


def test_labels_outside_the_list(tmp_path):
    _good_files(tmp_path)
    write_csv(tmp_path / "test.csv", INTENTS + [(f"x{i}", f"odd{i}") for i in range(7)])
    with pytest.raises(Ptv2Error) as e:
        load_task(str(write_yaml(tmp_path, SEQ_YAML)))
    msg = str(e.value)
    assert "test.csv" in msg and "'odd5'" not in msg
    assert "'odd0' (first at row 9), 'odd1' (first at row 10), 'odd2' (first at row 11), 'odd3' (first at row 12), " \
           "'odd4' (first at row 13) and 2 more" in msg


def test_dev_label_missing_from_inferred_train_labels(tmp_path):
    write_csv(tmp_path / "train.csv", INTENTS)
    write_csv(tmp_path / "dev.csv", INTENTS + [("what?", "ask")])
    yml = "name: t\ntype: sequence\ntext_column: utterance\nlabel_column: intent\ndata: {train: train.csv, dev: dev.csv}\n"
    with pytest.raises(Ptv2Error, match="dev.csv.*'ask'"):
        load_task(str(write_yaml(tmp_path, yml)))


def test_empty_split(tmp_path):
    _good_files(tmp_path)
    write_csv(tmp_path / "dev.csv", [])
    with pytest.raises(Ptv2Error, match=r"dev\.csv.*0 rows"):
        load_task(str(write_yaml(tmp_path, SEQ_YAML)))
    (tmp_path / "e.jsonl").write_text("")
    with pytest.raises(Ptv2Error, match=r"e\.jsonl: 0 rows"):
        load_task(str(write_yaml(tmp_path, "name: e\ntype: sequence\ndata: {train: e.jsonl}\n")))


def test_too_small_to_carve(tmp_path):
    write_csv(tmp_path / "train.csv", [("only one", "a")], ("text", "label"))
    with pytest.raises(Ptv2Error, match="too few distinct rows"):
        load_task(str(write_yaml(tmp_path, "name: s\ntype: sequence\nlabels: [a, b]\ndata: {train: train.csv}\n")))


def test_token_length_mismatch(tmp_path):
    recs = [{"tokens": w, "tags": t} for w, t in TAGGED] + [{"tokens": ["a", "b", "c"], "tags": ["O", "O"]}]
    write_jsonl(tmp_path / "train.jsonl", recs)
    with pytest.raises(Ptv2Error, match=r"train\.jsonl.*row 5 has 3 tokens but 2 tags"):
        load_task(str(write_yaml(tmp_path, "name: t\ntype: token\ndata: {train: train.jsonl, dev: train.jsonl, test: train.jsonl}\n")))
    with pytest.raises(Ptv2Error, match=r"train\.jsonl: row 5 has 3 tokens but 2 tags"):  # file row (from 1), also when carving
        load_task(str(write_yaml(tmp_path, "name: t\ntype: token\ndata: {train: train.jsonl}\n")))


def test_token_rows_with_no_tokens_or_a_null_name_their_file_row(tmp_path):
    """An empty word list was reported at its row in the carved train split (row 37 of a file's row
    3); a null in a list became the word or tag 'None'."""
    recs = [{"tokens": [f"w{i}", "x"], "tags": ["B-a" if i % 2 else "O", "O"]} for i in range(60)]
    recs[2] = {"tokens": [], "tags": []}
    write_jsonl(tmp_path / "train.jsonl", recs)
    yml = str(write_yaml(tmp_path, "name: t\ntype: token\ndata: {train: train.jsonl}\n"))
    with pytest.raises(Ptv2Error, match=r"train\.jsonl: row 3 has no tokens$"):
        load_task(yml)
    for column, i, value in (("tokens", 4, None), ("tags", 6, float("nan"))):
        recs[2] = {"tokens": ["a", "b"], "tags": ["O", "O"]}
        recs[i] = {"tokens": ["a", "b", "c"], "tags": ["O", "O", "O"]} | {column: ["a", value, "O"]}
        write_jsonl(tmp_path / "train.jsonl", recs)
        with pytest.raises(Ptv2Error, match=f"train\\.jsonl: row {i + 1} of column '{column}' has a missing value "
                                            r"\(null\) at position 2"):
            load_task(yml)
        recs[i] = {"tokens": ["a"], "tags": ["O"]}


def test_token_task_needs_lists(tmp_path):
    write_csv(tmp_path / "train.csv", [("Paris is nice", "B-loc O O")], ("tokens", "tags"))
    with pytest.raises(Ptv2Error, match="column 'tokens' is str, not a list"):
        load_task(str(write_yaml(tmp_path, "name: t\ntype: token\nlabels: [O, B-loc]\ndata: {train: train.csv}\n")))


def test_token_labels_must_be_bio(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"tokens": ["a"], "tags": ["LOC"]}])
    with pytest.raises(Ptv2Error, match=r"train\.jsonl: row 1 of column 'tags' holds the tag 'LOC', which is not BIO"):
        load_task(str(write_yaml(tmp_path, "name: t\ntype: token\ndata: {train: train.jsonl}\n")))
    with pytest.raises(Ptv2Error, match=r"task\.yaml: token tags must be BIO.*not BIO: \['LOC'\]"):  # labels given
        load_task(str(write_yaml(tmp_path, "name: t\ntype: token\nlabels: [O, LOC]\ndata: {train: train.jsonl}\n")))


def test_bad_max_train():
    with pytest.raises(Ptv2Error, match="max_train must be a positive integer"):
        load_task("trec", max_train=0)


def test_an_empty_cell_is_named_by_its_data_row_counted_from_one(tmp_path):
    """The second data row was reported as "row 1" (counted from 0), and one row as "1 rows"."""
    write_csv(tmp_path / "train.csv", [("hello", "a"), ("", "b"), ("bye", "a")])
    with pytest.raises(Ptv2Error, match=r"train\.csv: 1 row with an empty 'utterance' \(first at row 2\)$"):
        load_task(str(write_yaml(tmp_path, "name: s\ntype: sequence\ntext_column: utterance\nlabel_column: intent\n"
                                           "data: {train: train.csv}\n")))


def test_a_data_file_given_as_the_task_and_a_csv_for_a_token_task_say_what_to_do(tmp_path):
    write_csv(tmp_path / "train.csv", [("hello", "a"), ("bye", "b")])
    with pytest.raises(Ptv2Error, match=r"train\.csv is a data file, not a task file: write a task YAML that names it"):
        load_task(str(tmp_path / "train.csv"))
    write_csv(tmp_path / "ner.csv", [("Paris is nice", "B-loc O O")], ("words", "labels"))
    with pytest.raises(Ptv2Error, match="column 'tokens' not found.*a token task's rows are lists of words and tags: "
                                        "JSONL, JSON or Parquet, not CSV"):
        load_task(str(write_yaml(tmp_path, "name: t\ntype: token\ndata: {train: ner.csv}\n")))


def test_given_splits_that_copy_train_are_refused_and_a_small_overlap_noted(tmp_path, capsys):
    """A dev or test file was never compared with train: data {train: a.csv, dev: a.csv} loaded
    silently, and its dev scores measured memory."""
    rows = [(f"sample {i}", "a" if i % 2 else "b") for i in range(40)]
    write_csv(tmp_path / "train.csv", rows, ("text", "label"))
    write_csv(tmp_path / "other.csv", in_split(rows[:20], "other"), ("text", "label"))
    few = [("SAMPLE  3", "a"), ("sample 4", "b")] + in_split(rows[:18], "dev")  # case and spacing aside
    write_csv(tmp_path / "dev.csv", few, ("text", "label"))
    cases = {"{train: train.csv, dev: train.csv}": "task 'copy': 36 of 40 dev rows are also in train",
             "{train: train.csv, test: train.csv}": "task 'copy': 36 of 40 test rows are also in train",
             "{train: train.csv, dev: other.csv, test: other.csv}": "task 'copy': 20 of 20 test rows are also in dev"}
    for data, message in cases.items():
        with pytest.raises(Ptv2Error, match=f"{message} \\(the same text\\): the .* split is mostly a copy"):
            load_task(str(write_yaml(tmp_path, f"name: copy\ntype: sequence\ndata: {data}\n")))
    capsys.readouterr()
    _, dd = load_task(str(write_yaml(tmp_path, "name: overlap-note\ntype: sequence\ndata: {train: train.csv, dev: dev.csv}\n")))
    assert len(dd["dev"]) == 20
    assert capsys.readouterr().err == ("note: task 'overlap-note': 2 of 20 dev rows are also in train (the same text); "
                                       "their scores may be somewhat too high\n")
    load_task(str(write_yaml(tmp_path, "name: overlap-note\ntype: sequence\ndata: {train: train.csv, dev: dev.csv}\n")))
    assert capsys.readouterr().err == ""  # once per process: a search loads its task in every trial
    recs = [{"tokens": w, "tags": t} for w, t in TAGGED] * 3
    write_jsonl(tmp_path / "train.jsonl", [{"tokens": [*r["tokens"], str(i)], "tags": [*r["tags"], "O"]}
                                           for i, r in enumerate(recs)])
    with pytest.raises(Ptv2Error, match="task 'copy-ner': 12 of 12 dev rows are also in train"):
        load_task(str(write_yaml(tmp_path, "name: copy-ner\ntype: token\ndata: {train: train.jsonl, dev: train.jsonl, "
                                           "test: train.jsonl}\n")))


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet"])
@pytest.mark.parametrize("column, value, what", [("label", ["a"], "a list"), ("label", {"x": 1}, "a mapping"),
                                                 ("text", ["hello", "there"], "a list")])
def test_a_list_or_mapping_in_a_sequence_row_is_refused_naming_its_row(tmp_path, fmt, column, value, what):
    """A list label (multi-label) became the label text "['a']", a mapping "{'x': 1}": the task
    trained on them as classes. Hub data sets already refuse multi-label columns."""
    recs = [{"text": f"text {i}", "label": "ab"[i % 2]} for i in range(20)]
    recs[6] = recs[6] | {column: value}
    path = tmp_path / f"train.{fmt}"
    if fmt == "jsonl":
        write_jsonl(path, recs)
    elif fmt == "json":
        path.write_text(json.dumps(recs))
    else:  # a Parquet column holds one type: every row a list (or a struct), the first one named
        pd.DataFrame([r | {column: value} for r in recs]).to_parquet(path)
    with pytest.raises(Ptv2Error) as e:
        load_task(str(write_yaml(tmp_path, f"name: s\ntype: sequence\ndata: {{train: train.{fmt}}}\n")))
    one = "one label per row (multi-label rows are not supported)" if column == "label" else "one text per row"
    row = 1 if fmt == "parquet" else 7
    assert str(e.value) == f"data file {path}: row {row} of column '{column}' holds {what}, not {one}", str(e.value)


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_json_labels_are_the_text_the_file_writes(tmp_path, fmt):
    """pandas made a JSON label column of 1.0 and 2 a float column: the labels became '1.0', '2.0'
    (predict then answered 2.0 for data that said 2). A number and a text of one spelling (1, "1")
    are one label: labels are text, as a CSV's are."""
    def write(name, labels):  # labels: JSON texts
        recs = [f'{{"text": "text {i} {name}", "label": {labels[i % len(labels)]}}}' for i in range(20)]
        (tmp_path / f"{name}.{fmt}").write_text("\n".join(recs) if fmt == "jsonl" else f"[{', '.join(recs)}]")
        return write_yaml(tmp_path, f"name: {name}\ntype: sequence\ndata: {{train: {name}.{fmt}}}\n", f"{name}.yaml")

    spec, dd = load_task(str(write("spelt", ["1.0", "2", "1e3", "12345678901234567890"])))
    assert spec.labels == ("1.0", "12345678901234567890", "1e3", "2")
    assert {spec.labels[y] for y in dd["train"]["label"]} == set(spec.labels)
    spec, _ = load_task(str(write("merged", ["1", '"1"', "2"])))
    assert spec.labels == ("1", "2")
    path = write("one", ["1", '"1"'])
    with pytest.raises(Ptv2Error) as e:
        load_task(str(path))
    assert str(e.value) == (f"data file {tmp_path / f'one.{fmt}'}: column 'label' holds one label, '1', in all 20 rows; "
                            "a task needs at least 2 (labels are text: the number 1 and the text \"1\" are one "
                            "label)"), str(e.value)
    with pytest.raises(Ptv2Error, match=r"one\.csv: column 'label' holds one label, 'a', in all 2 rows; a task needs "
                                        r"at least 2$"):
        write_csv(tmp_path / "one.csv", [("x", "a"), ("y", "a")], ("text", "label"))
        load_task(str(write_yaml(tmp_path, "name: one\ntype: sequence\ndata: {train: one.csv}\n")))


@pytest.mark.parametrize("body, key, first, line", [
    (SEQ_YAML + "name: other\n", "name", 1, 12),
    (SEQ_YAML.replace("  test: test.csv\n", "  dev: test.csv\n"), "dev", 10, 11),
    ("name: x\ntype: sequence\ndata: {train: train.csv, train: dev.csv}\n", "train", 3, 3),
])
def test_a_key_given_twice_in_a_task_file_is_refused(tmp_path, body, key, first, line):
    """The last of two `name:` (or `data: dev:`) lines won silently."""
    _good_files(tmp_path)
    path = write_yaml(tmp_path, body)
    with pytest.raises(Ptv2Error) as e:
        load_task(str(path))
    assert re.fullmatch(f"task file {re.escape(str(path))} is not valid YAML: key '{key}' is given twice \\(first at "
                        f"line {first}\\) \\(line {line}, column \\d+\\)", str(e.value)), str(e.value)
    # a YAML merge key may still override what it merges
    spec, _ = load_task(str(write_yaml(tmp_path, SEQ_YAML.replace("data:\n", "data:\n  <<: {dev: nothing.csv}\n"))))
    assert spec.name == "my-intents"


@pytest.mark.parametrize("value, says", [('""', "data.dev is empty: give a data file's path, or leave dev: out"),
                                         ('"  "', "data.dev is empty: give a data file's path, or leave dev: out"),
                                         ("[a.csv]", "data.dev must be a data file's path, got a list"),
                                         ('""', "data.train is empty")])
def test_an_empty_or_odd_data_path_says_so(tmp_path, value, says):
    """`dev: ""` said "data file <the YAML's folder> (dev): unsupported extension '(none)'"."""
    _good_files(tmp_path)
    split = says.split(".")[1].split(" ")[0]
    path = write_yaml(tmp_path, SEQ_YAML.replace(f"  {split}: {split}.csv", f"  {split}: {value}"))
    with pytest.raises(Ptv2Error) as e:
        load_task(str(path))
    assert str(e.value).startswith(f"task file {path}: {says}"), str(e.value)


def test_a_ragged_csv_is_one_error_line(tmp_path):
    """pandas' ParserError ended in a line feed: the error printed an empty second line. The row is
    named by its data row and its line in the file (since the CSV is read with the csv module)."""
    (tmp_path / "train.csv").write_text("text,label\na,x\nb,y\nc,x,extra\n")
    path = write_yaml(tmp_path, "name: r\ntype: sequence\ndata: {train: train.csv}\n")
    with pytest.raises(Ptv2Error) as e:
        load_task(str(path))
    assert str(e.value) == (f"data file {tmp_path / 'train.csv'}: row 3 (line 4) has 3 fields but the header has 2 "
                            "('text', 'label'): a text that holds a comma must be in double quotes, as in "
                            "\"hello, world\""), repr(str(e.value))


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_json_booleans_are_the_text_the_file_writes(tmp_path, fmt):
    """A JSON label `true` became Python's True and the label 'True': a task YAML's labels: ["true",
    "false"] then found every row 'outside the label list', and predict answered True. A word
    `false` in a token row was likewise the word 'False'. A null label is a missing one."""
    def write(name, labels, kind="sequence", extra=""):  # labels: JSON texts
        if kind == "sequence":
            recs = [f'{{"text": "text {i} {name}", "label": {labels[i % len(labels)]}}}' for i in range(20)]
        else:
            recs = [f'{{"tokens": ["w{i}", {labels[i % len(labels)]}], "tags": ["O", "B-x"]}}' for i in range(20)]
        (tmp_path / f"{name}.{fmt}").write_text("\n".join(recs) if fmt == "jsonl" else f"[{', '.join(recs)}]")
        return write_yaml(tmp_path, f"name: {name}\ntype: {kind}\n{extra}data: {{train: {name}.{fmt}}}\n", f"{name}.yaml")

    spec, dd = load_task(str(write("spelt", ["true", "false"])))
    assert spec.labels == ("false", "true")
    assert {spec.labels[y] for y in dd["train"]["label"]} == {"false", "true"}
    spec, dd = load_task(str(write("listed", ["true", "false", '"true"'], extra='labels: ["true", "false"]\n')))
    assert spec.labels == ("true", "false") and sorted({spec.labels[y] for y in dd["train"]["label"]}) == ["false", "true"]
    with pytest.raises(Ptv2Error, match="label True in labels is a bool, not the text in the file"):
        load_task(str(write("unquoted", ["true", "false"], extra="labels: [true, false]\n")))
    _, dd = load_task(str(write("words", ["false", "true"], kind="token")))
    assert {words[1] for s in dd for words in dd[s]["tokens"]} == {"false", "true"}
    with pytest.raises(Ptv2Error) as e:
        load_task(str(write("one", ["true", '"true"'])))
    assert str(e.value) == (f"data file {tmp_path / f'one.{fmt}'}: column 'label' holds one label, 'true', in all 20 "
                            "rows; a task needs at least 2 (labels are text: the boolean true and the text \"true\" "
                            "are one label)"), str(e.value)
    with pytest.raises(Ptv2Error) as e:
        load_task(str(write("nulls", ['"a"', '"b"', '"a"', "null"])))
    assert str(e.value) == (f"data file {tmp_path / f'nulls.{fmt}'}: 5 rows with an empty 'label' (first at row 4)"), \
        str(e.value)


def test_parquet_booleans_are_true_and_false_as_in_json(tmp_path):
    """A Parquet bool label column gave the labels 'True', 'False' (str of Python's, or numpy's,
    bool) where a JSON file's true/false give 'true', 'false': a task YAML's labels: ["true",
    "false"] found every Parquet row outside its list. Token words alike."""
    recs = [{"text": f"text {i}", "label": bool(i % 2)} for i in range(20)]
    pd.DataFrame(recs).to_parquet(tmp_path / "train.parquet")
    assert pd.read_parquet(tmp_path / "train.parquet")["label"].dtype == bool  # numpy.bool_ cells
    spec, dd = load_task(str(write_yaml(tmp_path, "name: b\ntype: sequence\ndata: {train: train.parquet}\n")))
    assert spec.labels == ("false", "true")
    spec, dd = load_task(str(write_yaml(tmp_path, 'name: b\ntype: sequence\nlabels: ["true", "false"]\n'
                                                  "data: {train: train.parquet}\n", "listed.yaml")))
    assert spec.labels == ("true", "false") and sorted({spec.labels[y] for y in dd["train"]["label"]}) == ["false", "true"]
    pd.DataFrame([{"tokens": [i % 2 == 0, True] * (i + 1), "tags": ["B-x", "O"] * (i + 1)} for i in range(20)]).to_parquet(
        tmp_path / "tok.parquet")
    _, dd = load_task(str(write_yaml(tmp_path, "name: t\ntype: token\ndata: {train: tok.parquet}\n", "tok.yaml")))
    assert {w for s in dd for words in dd[s]["tokens"] for w in words} == {"false", "true"}


@pytest.mark.parametrize("value, what", [("true", "a boolean"), ("2", "a number")])
def test_a_json_boolean_or_number_where_a_list_belongs_is_named_in_words(tmp_path, value, what):
    """The message named an internal class: "row 3 of column 'tokens' is JsonBool, not a list"."""
    recs = [f'{{"tokens": ["w{i}", "x"], "tags": ["O", "B-x"]}}' for i in range(5)]
    recs[2] = f'{{"tokens": {value}, "tags": ["O", "B-x"]}}'
    (tmp_path / "train.jsonl").write_text("\n".join(recs))
    with pytest.raises(Ptv2Error) as e:
        load_task(str(write_yaml(tmp_path, "name: t\ntype: token\ndata: {train: train.jsonl}\n")))
    assert f"row 3 of column 'tokens' is {what}, not a list;" in str(e.value), str(e.value)
