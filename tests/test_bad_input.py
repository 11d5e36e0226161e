"""Every bad input: one `error:` line on stderr naming the problem, exit 2, nothing written."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import interruptible, make_tiny_gpt2, run_cli as run

PTV2 = [sys.executable, "-m", "pipelines.cli"]


def run_process(*args: str) -> subprocess.CompletedProcess:
    """The installed command as a separate process: exit status and stderr as a shell sees them."""
    return subprocess.run([*PTV2, *args], capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))


def assert_user_error(res: subprocess.CompletedProcess, *needles: str) -> None:
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr  # one line, no traceback
    for n in needles:
        assert n in lines[0], lines[0]


def write_task(tmp: Path, rows: str, **spec) -> Path:
    (tmp / "train.csv").write_text(rows)
    doc = {"name": "mine", "type": "sequence", "text_column": "text", "label_column": "label",
           "metric": "accuracy", "data": {"train": "train.csv"}} | spec
    path = tmp / "task.yaml"
    path.write_text(json.dumps(doc))  # JSON is YAML
    return path


def train(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return run("train", "--model", "minilm", "--epochs", "1", "--max-train", "8", "--out", str(tmp / "out"), "--quiet", *args)


ROWS = "text,label\n" + "".join(f"question {i},{'a' if i % 2 else 'b'}\n" for i in range(40))


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--task", "nope"], ["unknown task 'nope'"]),
        (["--task", "trec", "--prompt-len", "0"], ["--prompt-len must be a positive integer"]),
        (["--task", "trec", "--prompt-len", "-3"], ["--prompt-len"]),
        (["--task", "trec", "--prompt-len", "600"], ["too long", "at most its context size, 512"]),
        (["--task", "trec", "--epochs", "0"], ["epochs"]),
        (["--task", "trec", "--eval-batch-size", "0"], ["--eval-batch-size must be a positive integer, got 0"]),
        (["--task", "trec", "--lr", "-1"], ["--lr must be a positive number"]),
        (["--task", "trec", "--model", "./no-such-model"], ["no-such-model", "does not exist"]),
        (["--task", "trec", "--pooling", "max"], ["pooling 'max'"]),
        (["--task", "trec", "--device", "cuda"], ["cuda"]),
        (["--task", "trec", "--no-such-flag"], ["--no-such-flag"]),
        (["--task", "trec", "--prompt-len", "abc"], ["--prompt-len", "integer"]),
        (["--task", "trec", "--seed", "-1"], ["--seed must be an integer in 0..4294967295, got -1"]),  # was numpy's traceback
        (["--task", "trec", "--data-seed", str(2**32)], ["--data-seed must be an integer"]),
        (["--task", "trec", "--patience", "0"], ["--patience must be a positive integer"]),  # stopped after epoch 1
        # a learning rate too high: was a traceback (the loss check), or, with one step per epoch, an adapter
        # written with a NaN dev loss and a meaningless score (the last update went unchecked)
        (["--task", "trec", "--lr", "1e30", "--batch-size", "2"], ["training diverged: loss became nan", "lower --lr"]),
        # (8 dev rows: any dev row's loss is nan; the whole dev split cost 3 s of CPU more)
        (["--task", "trec", "--lr", "1e29", "--max-eval", "8"],
         ["training diverged: dev loss became nan after epoch 1", "lower --lr"]),
    ],
)
def test_train_rejects_bad_arguments(tmp_path, args, needles):
    if "--device" in args:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a GPU is present here, so --device cuda is valid")
    res = train(tmp_path, *args)
    assert_user_error(res, *needles)
    assert not (tmp_path / "out").exists()


def test_missing_data_file(tmp_path):
    task = write_task(tmp_path, ROWS)
    (tmp_path / "train.csv").unlink()
    assert_user_error(train(tmp_path, "--task", str(task)), "train.csv")
    assert not (tmp_path / "out").exists()


def test_missing_task_yaml(tmp_path):
    assert_user_error(train(tmp_path, "--task", str(tmp_path / "absent.yaml")), "absent.yaml")


def test_missing_column(tmp_path):
    task = write_task(tmp_path, ROWS, text_column="utterance")
    assert_user_error(train(tmp_path, "--task", str(task)), "utterance")
    assert not (tmp_path / "out").exists()


def test_labels_outside_label_list(tmp_path):
    task = write_task(tmp_path, ROWS + "odd one,zebra\n", labels=["a", "b"])
    assert_user_error(train(tmp_path, "--task", str(task)), "zebra")
    assert not (tmp_path / "out").exists()


def test_labels_yaml_reads_as_other_numbers(tmp_path):
    """labels: [010, 011] was read as 8 and 9: every "010" row was 'outside the label list'."""
    task = write_task(tmp_path, ROWS.replace(",a\n", ",010\n").replace(",b\n", ",011\n"))
    task.write_text(task.read_text().replace('"data"', '"labels": [010, 011], "data"'))  # YAML, not JSON, now
    assert_user_error(train(tmp_path, "--task", str(task)), "label 010 in labels is the number 8 to YAML",
                      'quote the labels: labels: ["010", "011"]')
    assert not (tmp_path / "out").exists()


def test_empty_data(tmp_path):
    task = write_task(tmp_path, "text,label\n")
    res = train(tmp_path, "--task", str(task))
    assert_user_error(res, f"data file {tmp_path / 'train.csv'}: 0 rows (empty data)")
    assert not (tmp_path / "out").exists()


def test_unknown_model_type(tmp_path):
    from transformers import AutoConfig

    folder = tmp_path / "t5"
    AutoConfig.for_model("t5").save_pretrained(folder)
    assert_user_error(train(tmp_path, "--task", "trec", "--model", str(folder)), "unsupported model type 't5'")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, needle", [
    (["train", "--task", "nope", "--out", "OUT"], "unknown task 'nope'"),
    (["train", "--task", "trec", "--bogus", "--out", "OUT"], "--bogus"),
    (["predict", "--adapter", "OUT", "hi"], "adapter folder '"),  # OUT does not exist: said so
    (["eval", "--adapter", "OUT", "--seed", "-1"], "--seed must be an integer in 0..4294967295"),
    (["eval", "--adapter", "OUT", "--model", "models:/ptv2-trec@champion"],
     "give exactly one of --adapter, --model and --pretrained"),
    (["eval", "--model", "ptv2-trec"], "model URI 'ptv2-trec' is not models:/NAME@ALIAS or models:/NAME/VERSION"),
    (["pretrain", "--tasks", "trec,rt", "--seed", "-1", "--out", "OUT"], "--seed must be an integer in 0..4294967295"),
    (["pretrain", "--tasks", "trec", "--lr", "1e29", "--epochs", "1", "--max-train", "4", "--max-eval", "8",
      "--max-prompt-len", "8", "--lengths", "4,8", "--batch-size", "4", "--quiet", "--out", "OUT"],
     "training diverged: dev loss became nan after epoch 1"),
])
def test_as_a_separate_process(tmp_path, args, needle):
    res = run_process(*[str(tmp_path / "out") if a == "OUT" else a for a in args])
    assert_user_error(res, needle)
    assert "Traceback" not in res.stderr and not (tmp_path / "out").exists()


def test_out_not_empty_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    assert_user_error(train(tmp_path, "--task", "trec"), "not empty")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


@pytest.fixture(scope="module")
def tiny_adapter(tmp_path_factory, minilm_path) -> Path:
    """A real adapter on MiniLM (untrained prompt: only the files matter here)."""
    from ptv2_core.adapter import save_adapter
    from ptv2_core.backbone import load_backbone
    from ptv2_core.build import build_model
    from ptv2_core.tasks import load_task

    spec, _ = load_task("trec", max_train=1, max_eval=1)
    backbone, _ = load_backbone("minilm")
    model = build_model(backbone, spec, 4, max_length=spec.max_length)
    return save_adapter(model, tmp_path_factory.mktemp("a") / "adapter", spec, "minilm")


def copy_adapter(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_corrupt_adapter_weights(tiny_adapter, tmp_path):
    bad = copy_adapter(tiny_adapter, tmp_path / "bad")
    data = (bad / "adapter.safetensors").read_bytes()
    (bad / "adapter.safetensors").write_bytes(data[: len(data) // 2])
    assert_user_error(run("predict", "--adapter", str(bad), "hello"), "corrupt adapter weights")


def test_corrupt_adapter_config(tiny_adapter, tmp_path):
    bad = copy_adapter(tiny_adapter, tmp_path / "bad")
    (bad / "adapter_config.json").write_text("{not json")
    assert_user_error(run("predict", "--adapter", str(bad), "hello"), "corrupt adapter config")


def test_an_adapter_saved_under_a_task_name_now_refused_loads_under_its_repaired_name(tiny_adapter, tmp_path):
    """An adapter trained before task names had to be plain folder names (``.hidden``, ``a\\b``)
    loads under the name such a task gets now (it was 'corrupt adapter config')."""
    from ptv2_core.adapter import load_adapter

    for stored, name in ((".hidden", "hidden"), ("a\\b", "a-b")):
        old = copy_adapter(tiny_adapter, tmp_path / name)
        config = json.loads((old / "adapter_config.json").read_text())
        config["task"]["name"] = stored
        (old / "adapter_config.json").write_text(json.dumps(config))
        assert load_adapter(old).spec.name == name


def test_an_adapter_whose_head_does_not_fit_its_task_is_refused(tiny_adapter, tmp_path):
    # tensors and head agree (6 labels) but the task names 7: the 7th could never be predicted
    bad = copy_adapter(tiny_adapter, tmp_path / "bad")
    config = json.loads((bad / "adapter_config.json").read_text())
    config["task"]["labels"] = [*config["task"]["labels"], "EXTRA"]
    (bad / "adapter_config.json").write_text(json.dumps(config))
    assert_user_error(run("predict", "--adapter", str(bad), "hello"), "corrupt adapter config",
                      "its head (sequence, 6 labels, width 384) does not fit its task (sequence, 7 labels)")


def test_an_unreadable_adapter_file_and_a_text_that_is_not_utf8_are_one_line(tiny_adapter, tmp_path, monkeypatch):
    """Both ended in tracebacks: a PermissionError (a file mode 000 for another user; injected
    here, as root reads any file) and a TypeError from the tokenizer on lone surrogates."""
    real = Path.read_text

    def denied(self, *a, **kw):
        if self.name == "adapter_config.json":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *a, **kw)

    with monkeypatch.context() as m:
        m.setattr(Path, "read_text", denied)
        assert_user_error(run("predict", "--adapter", str(tiny_adapter), "hello"),
                          "adapter config", "cannot be read: Permission denied")


    def no_access(*a, **kw):
        raise PermissionError(13, "Permission denied", "/some/where")

    with monkeypatch.context() as m:  # anywhere else, the last resort: one line naming the file
        m.setattr("ptv2_core.predict.predict", no_access)
        assert_user_error(run("predict", "--adapter", str(tiny_adapter), "hello"), "permission denied: '/some/where'")
    # what the shell hands over for the bytes b"caf\xe9" (Latin-1): a lone surrogate
    assert_user_error(run("predict", "--adapter", str(tiny_adapter), "fine", "caf\udce9"),
                      "text 2 on the command line is not valid UTF-8")


def test_a_ptv2_folder_of_the_wrong_kind_is_named_in_the_error(tiny_adapter, tmp_path):
    """An adapter where a pre-trained prompt is wanted, a search's output or a pre-trained prompt
    where an adapter is wanted: the one error line says what the folder is and what to pass."""
    search_out = tmp_path / "search"
    search_out.mkdir()
    (search_out / "best.json").write_text("{}")
    copy_adapter(tiny_adapter, search_out / "adapter")
    pre = tmp_path / "pre"
    pre.mkdir()
    (pre / "prompt_config.json").write_text("{}")
    assert_user_error(run("predict", "--adapter", str(search_out), "hello"),
                      "adapter_config.json is missing", f"its best adapter is '{search_out / 'adapter'}'")
    assert_user_error(run("eval", "--adapter", str(pre)), "it is a pre-trained prompt", f"--pretrained {pre}")
    assert_user_error(run("eval", "--pretrained", str(tiny_adapter)), "prompt_config.json is missing",
                      "it is an adapter")
    assert_user_error(train(tmp_path, "--task", "trec", "--init", str(tiny_adapter)), "it is an adapter")
    assert not (tmp_path / "out").exists()


def test_a_model_that_is_not_a_model_says_what_it_is(tiny_adapter, tmp_path):
    """A folder without config.json was reported as "Unrecognized model ... (offline: HF_HUB_OFFLINE
    is set)", and a mistyped alias as a failed connection to the hub."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text(ROWS)
    for command in (["train", "--task", "trec", "--out", str(tmp_path / "out")],
                    ["search", "--task", "trec", "--out", str(tmp_path / "out")]):
        assert_user_error(run(*command, "--model", str(tiny_adapter)), f"model folder '", "holds no config.json: not a "
                          "transformers model (it holds an adapter: give it to --adapter or --init)")
        assert_user_error(run(*command, "--model", str(data)), "holds no config.json: not a transformers model")
        assert_user_error(run(*command, "--model", "minlm"), "model 'minlm' is not a model folder here, a bundled "
                          "alias (minilm), or a hub model in the local cache (HF_HUB_OFFLINE=1")
    assert not (tmp_path / "out").exists()


def test_a_model_folder_needs_its_tokenizer_and_weights(tmp_path, minilm_path):
    """A folder from ``model.save_pretrained()`` alone trained on all-[UNK] input: AutoTokenizer made
    a 5-token BertTokenizer from nothing. A folder without weights was an OSError traceback."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerFast

    config = AutoConfig.for_model("bert", hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=37, vocab_size=30522)
    bare, no_weights, small = tmp_path / "bare", tmp_path / "no-weights", tmp_path / "small-tokenizer"
    AutoModel.from_config(config).save_pretrained(bare)
    config.save_pretrained(no_weights)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(no_weights)
    AutoModel.from_config(config).save_pretrained(small)
    words = Tokenizer(models.WordLevel({"[UNK]": 0, "hello": 1, "world": 2}, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=words, unk_token="[UNK]").save_pretrained(small)
    for command in (["train", "--task", "trec", "--out", str(tmp_path / "out")],
                    ["search", "--task", "trec", "--out", str(tmp_path / "out")]):  # search: before any trial
        assert_user_error(run(*command, "--model", str(bare)), f"model folder '{bare}' holds no tokenizer",
                          "tokenizer.save_pretrained(folder)")
    assert_user_error(train(tmp_path, "--task", "trec", "--model", str(no_weights)),
                      f"cannot load model '{no_weights}'", "model.safetensors")
    assert_user_error(train(tmp_path, "--task", "trec", "--model", str(small)),
                      "its tokenizer has 3 tokens but the model 30522", "tokenizer.save_pretrained(folder)")
    assert not (tmp_path / "out").exists()


def test_a_model_folder_with_pickled_weights_only_is_refused(tmp_path, minilm_path):
    """A base model is named by a folder, or by an adapter's JSON (which anyone may hand over): its
    pytorch_model.bin, a pickle that can run code as it loads, was read. Only safetensors weights are."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    config = AutoConfig.for_model("bert", hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=37, vocab_size=30522)
    folder = tmp_path / "pickled"
    config.save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(folder)
    torch.save(AutoModel.from_config(config).state_dict(), folder / "pytorch_model.bin")
    assert_user_error(train(tmp_path, "--task", "trec", "--model", str(folder)),
                      f"model folder '{folder}' holds its weights as a pickle (pytorch_model.bin), which ptv2 does "
                      "not load", "model.safetensors")
    assert not (tmp_path / "out").exists()


def test_eval_and_predict_refuse_a_batch_size_below_one(tiny_adapter):
    for command in (["eval", "--adapter", str(tiny_adapter)], ["predict", "--adapter", str(tiny_adapter), "hi"]):
        assert_user_error(run(*command, "--batch-size", "0"), "--batch-size must be a positive integer, got 0")


def test_predict_needs_texts_or_a_readable_file(tiny_adapter, tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    a = ["predict", "--adapter", str(tiny_adapter)]
    assert_user_error(run(*a), "nothing to label")
    assert_user_error(run(*a, "hi", "--file", str(tmp_path / "empty.txt")), "not both")
    assert_user_error(run(*a, "--file", str(tmp_path / "missing.txt")), "missing.txt' does not exist")
    assert_user_error(run(*a, "--file", str(tmp_path / "empty.txt")), "holds no lines")
    assert_user_error(run(*a, "--file", str(tmp_path)), "is a folder")
    assert_user_error(run(*a, "--file", str(tmp_path / "latin1.txt")), "is not UTF-8 text: line 1, byte 4")


def test_eval_scores_an_adapter_of_a_task_yaml_on_that_file_or_asks_for_it(tmp_path):
    """``ptv2 eval --adapter DIR`` without --task scores the adapter's own task: for a task YAML,
    the file training read (its ``name:`` alone is no task reference: it was "unknown task")."""
    task = write_task(tmp_path, ROWS)
    assert train(tmp_path, "--task", str(task), "--max-eval", "4").returncode == 0
    trained = json.loads((tmp_path / "out" / "metrics.json").read_text())
    res = run("eval", "--adapter", str(tmp_path / "out"), "--max-eval", "4")
    assert res.returncode == 0, res.stderr
    scored = json.loads(res.stdout)
    assert scored["task"] == "mine" and scored["dev"]["accuracy"] == trained["dev"]["accuracy"]
    assert scored["test"]["loss"] == pytest.approx(trained["test"]["loss"], abs=1e-6)
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for f in ("task.yaml", "train.csv"):
        (tmp_path / f).rename(moved / f)
    assert_user_error(run("eval", "--adapter", str(tmp_path / "out"), "--max-eval", "4"),
                      f"the adapter's task 'mine' was read from '{task}'", "pass --task PATH")
    res = run("eval", "--adapter", str(tmp_path / "out"), "--max-eval", "4", "--task", str(moved / "task.yaml"))
    assert res.returncode == 0 and json.loads(res.stdout)["test"]["loss"] == scored["test"]["loss"], res.stderr


def test_a_task_yaml_and_a_model_folder_given_as_relative_paths_are_recorded_absolute(tmp_path, monkeypatch,
                                                                                      minilm_path):
    """`train --task my/intents.yaml` recorded the relative path: eval, register and promote of the
    adapter then failed from any other folder ("task file not found"); `--model ./folder` likewise."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    task = write_task(tmp_path, ROWS)
    config = AutoConfig.for_model("bert", hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=37, vocab_size=30522)
    AutoModel.from_config(config).save_pretrained(tmp_path / "tiny")
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(tmp_path / "tiny")
    monkeypatch.chdir(tmp_path)
    assert train(tmp_path, "--task", "task.yaml", "--max-eval", "4", "--model", "tiny").returncode == 0
    saved = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert saved["extra"]["train_config"]["task"] == str(task.resolve())
    assert saved["base_model"]["name"] == str((tmp_path / "tiny").resolve())
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    res = run("eval", "--adapter", str(tmp_path / "out"), "--max-eval", "4")
    assert res.returncode == 0 and json.loads(res.stdout)["task"] == "mine", res.stderr
    assert "note:" not in res.stderr
    # another split seed scores it on other splits: said, not silent, also when --task names its own
    # task file by another path (the note compared the path with the task's name: it vanished)
    for own in ([], ["--task", "../task.yaml"]):
        res = run("eval", "--adapter", str(tmp_path / "out"), "--max-eval", "4", "--seed", "3", *own)
        assert res.returncode == 0 and res.stderr.strip().startswith(
            "note: it was trained on the splits of seed 0; with --seed 3 its dev and test rows may include rows"), \
            res.stderr
    # another task file of the same rows and labels with another metric: "score" is that metric's
    f1 = tmp_path / "f1.yaml"
    f1.write_text(task.read_text().replace('"accuracy"', '"macro_f1"'))
    res = run("eval", "--adapter", str(tmp_path / "out"), "--max-eval", "4", "--task", str(f1))
    scored = json.loads(res.stdout)
    assert scored["metric"] == "macro_f1", res.stderr
    assert all(scored[s]["score"] == scored[s]["macro_f1"] for s in ("dev", "test")), scored


def test_predict_from_standard_input_names_a_wrong_adapter_before_any_input_comes(tmp_path):
    """It waited for the first line (or the end of input) before it looked at --adapter."""
    proc = subprocess.Popen([*PTV2, "predict", "--adapter", str(tmp_path / "nope"), "--file", "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, HF_HUB_OFFLINE="1"))
    try:
        rc = proc.wait(timeout=60)  # standard input stays open and empty
        err = proc.stderr.read()
    finally:
        proc.kill()
        proc.stdin.close()
    assert rc == 2 and err.strip().splitlines() == [f"error: adapter folder '{tmp_path / 'nope'}' does not exist"], err


def test_adapter_tensor_shape_mismatch(tiny_adapter, tmp_path):
    bad = copy_adapter(tiny_adapter, tmp_path / "bad")
    cfg = json.loads((bad / "adapter_config.json").read_text())
    cfg["prompt"]["prompt_len"] = 7
    (bad / "adapter_config.json").write_text(json.dumps(cfg))
    assert_user_error(run("predict", "--adapter", str(bad), "hello"), "shape")


def test_adapter_for_another_base_model_is_refused(tiny_adapter, tmp_path):
    """Same architecture, other weights: the fingerprint tells them apart."""
    from transformers import AutoModel

    from ptv2_core.adapter import load_adapter
    from ptv2_core.errors import Ptv2Error
    from ptv2_core.backbone import resolve_model_name

    other = AutoModel.from_pretrained(resolve_model_name("minilm"))
    with __import__("torch").no_grad():
        other.encoder.layer[0].attention.self.query.weight.mul_(1.01)
    with pytest.raises(Ptv2Error, match="refusing a different base model"):
        load_adapter(tiny_adapter, backbone=other)
    # and through the CLI: an adapter config naming another base's fingerprint
    bad = copy_adapter(tiny_adapter, tmp_path / "bad")
    cfg = json.loads((bad / "adapter_config.json").read_text())
    cfg["base_model"]["fingerprint"] = "sha256:" + "0" * 64
    (bad / "adapter_config.json").write_text(json.dumps(cfg))
    assert_user_error(run("predict", "--adapter", str(bad), "hello"), "refusing a different base model")


UNWRITABLE = [("under-a-file", "is not a folder")]
if Path("/proc").is_dir():  # a virtual file system: no new folders there, whoever runs the test (root too)
    UNWRITABLE.append(("/proc/ptv2-out", "cannot be written"))


@pytest.mark.parametrize("where, needle", UNWRITABLE)
@pytest.mark.parametrize("command", [
    ["train", "--task", "trec", "--epochs", "1", "--max-train", "8", "--quiet"],
    ["search", "--task", "trec", "--trials", "1"],
    ["pretrain", "--tasks", "trec", "--epochs", "1", "--max-train", "8", "--quiet"],
    ["compile"],
])
def test_an_out_that_cannot_be_written_is_refused_before_any_work(tmp_path, command, where, needle):
    """Found before training starts, not by a traceback when the result is saved."""
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "out" if where == "under-a-file" else Path(where)
    if command == ["compile"]:
        out = out / "p.yaml"
    res = run(*command, "--out", str(out))
    assert_user_error(res, str(out), needle)
    assert (tmp_path / "afile").read_text() == "x" and list(tmp_path.iterdir()) == [tmp_path / "afile"]


def _train_holding_its_lock(tmp_path, out: Path, *extra: str) -> subprocess.Popen:
    """A `ptv2 train` into ``out`` in another process, returned once it holds its lock file."""
    import time

    proc = subprocess.Popen([*PTV2, "train", "--task", "trec", "--model", "minilm", "--out", str(out), "--quiet",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, HF_HUB_OFFLINE="1"), preexec_fn=interruptible)
    try:
        deadline = time.time() + 120
        while not any(tmp_path.rglob("*.train.lock")) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None and any(tmp_path.rglob("*.train.lock")), proc.poll()
    except BaseException:  # not left running when it never took the lock
        proc.kill()
        proc.wait()
        raise
    return proc


def _signal_train_after_its_first_epoch(sig: int, out: Path, *extra: str) -> tuple[int, str]:
    """A `ptv2 train` into ``out`` in another process, sent ``sig`` once its first epoch's line is
    out; its exit status and the rest of its stderr."""
    proc = subprocess.Popen([*PTV2, "train", "--task", "trec", "--model", "minilm", "--out", str(out), *extra,
                             "--epochs", "50", "--max-train", "64", "--max-eval", "32"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"),
                            preexec_fn=interruptible)
    try:
        seen = []
        for line in proc.stderr:  # training has started: its first epoch's line
            seen.append(line)
            if line.startswith("epoch 1:"):
                break
        assert proc.poll() is None, "".join(seen)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, err


def test_ctrl_c_is_one_error_line_exit_130_and_writes_nothing(tmp_path):
    """typer turns a KeyboardInterrupt into a silent exit code 130; the command line says so. While
    the first runs, a second `ptv2 train` to the same folder (even with --overwrite) is refused at
    once: it would train for nothing and then replace the first one's adapter."""
    import signal
    import time

    from ptv2_core.busy_lock import beside

    out = tmp_path / "runs" / "trec"  # its parent does not exist yet: the lock creates no folder
    proc = _train_holding_its_lock(tmp_path, out, "--epochs", "50", "--max-train", "4000")  # the first holds the lock
    try:
        time.sleep(1)  # and is past taking it
        assert proc.poll() is None and beside(out, "train").exists(), proc.poll()
        for extra in ([], ["--overwrite"]):
            second = run("train", "--task", "trec", "--model", "minilm", "--out", str(out), "--quiet", "--epochs", "1",
                         "--max-train", "8", *extra)  # in this process: refused as well
            assert second.returncode == 2 and second.stderr.strip() == (
                f"error: another `ptv2 train` is writing to '{out}': wait for it to end, or stop it first"), second.stderr
        assert proc.poll() is None  # the first still runs
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and err.strip().splitlines() == [
        f"error: interrupted; no adapter was written to {out}: run the same command again to train it (it starts "
        "over)"], err
    assert "Traceback" not in err and list(tmp_path.iterdir()) == []  # no output, no folder, no lock file left


def test_sigterm_is_handled_as_ctrl_c_is_one_error_line_exit_143_and_writes_nothing(tmp_path):
    """SIGTERM (`kill`, `timeout`, a pod or Kubeflow run being stopped) killed `ptv2 train` outright:
    no clean-up (its lock file left beside --out), no error line. It now ends as Ctrl-C does, with
    its own line and the status of a process ended by SIGTERM (128 + 15)."""
    import signal

    out = tmp_path / "runs" / "trec"
    returncode, err = _signal_train_after_its_first_epoch(signal.SIGTERM, out)
    assert returncode == 143 and err.strip().splitlines() == [
        f"error: terminated (SIGTERM); no adapter was written to {out}: run the same command again to train it (it "
        "starts over)"], (returncode, err)
    assert list(tmp_path.iterdir()) == []  # no output, no folder, no lock file left


def test_ctrl_c_of_train_with_overwrite_says_the_folder_is_as_it_was(tmp_path):
    """With --overwrite, --out may hold an earlier adapter: a Ctrl-C before the new one is written
    leaves it untouched, and the line says so (not that nothing is there)."""
    import signal

    out = tmp_path / "trec"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    returncode, err = _signal_train_after_its_first_epoch(signal.SIGINT, out, "--overwrite")
    assert returncode == 130 and err.strip().splitlines() == [
        f"error: interrupted; no new adapter was written ({out} is as it was): run the same command again to "
        "train it (it starts over)"], (returncode, err)
    assert os.listdir(out) == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trec"]  # no lock file left


def test_a_second_train_to_the_same_new_folder_is_refused_once_its_parent_exists(tmp_path):
    """The lock was beside the nearest folder that existed: `./.runs.trec.train.lock` while `runs`
    did not exist, `runs/.trec.train.lock` once it did; a second `ptv2 train --out runs/trec` then
    took the other file, trained beside the first and replaced its adapter without --overwrite."""
    import signal

    out = tmp_path / "runs" / "trec"
    first = _train_holding_its_lock(tmp_path, out, "--epochs", "50", "--max-train", "4000")
    try:
        (tmp_path / "runs").mkdir(exist_ok=True)  # as the user, or another program, may make it
        second = run("train", "--task", "trec", "--model", "minilm", "--out", str(out), "--quiet", "--epochs", "1",
                     "--max-train", "8")
        assert second.returncode == 2 and second.stderr.strip() == (
            f"error: another `ptv2 train` is writing to '{out}': wait for it to end, or stop it first"), second.stderr
        assert not out.exists() and first.poll() is None
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    finally:
        first.kill()
        first.wait()


def test_train_does_not_save_into_a_folder_filled_while_it_trained(tmp_path):
    """--out was checked once, before the run: a folder that another program (or a run that held
    the lock before this one took it) filled in the meantime was written into without --overwrite."""
    out = tmp_path / "trec"
    proc = _train_holding_its_lock(tmp_path, out, "--epochs", "1", "--max-train", "200", "--max-eval", "50")
    try:
        out.mkdir(exist_ok=True)
        (out / "notes.txt").write_text("mine")
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
        proc.wait()
    lines = err.strip().splitlines()  # refused as it took the lock, or as it was to save (filled while it trained)
    assert proc.returncode == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"error: --out '{out}' is not empty (pass --overwrite to replace it)"), err
    assert sorted(os.listdir(out)) == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trec"]  # no lock file left


def test_ctrl_c_landing_in_code_run_from_a_string_still_exits_130(tmp_path):
    """Ctrl-C that lands while Python runs code from a string (dataclasses and namedtuple build
    their methods with exec, so every lazy import does) was handled as any other, and then
    `python -m pipelines.cli` died of SIGINT after its own sys.exit(130): a parent saw -2 (the test
    above, once in a full suite; 18 of 82 runs of `ptv2 train` given SIGINT 0.2-1.6 s after taking
    its lock, while it imports). Here the real SIGINT handler raises inside exec'd code, at a
    moment that does not depend on timing."""
    (tmp_path / "ctrl_c_in_exec.py").write_text(
        "import pipelines.cli as cli\n"
        "def interrupted_in_exec(argv):  # the first thing main() runs, inside its try\n"
        "    exec('import signal; signal.raise_signal(signal.SIGINT)')\n"
        "cli.empty_option = interrupted_in_exec\n"
        "cli.main(['train'])\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]), str(tmp_path)]))
    proc = subprocess.run([sys.executable, "-m", "ctrl_c_in_exec"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, preexec_fn=interruptible, timeout=120)
    assert (proc.returncode, proc.stderr) == (130, "error: interrupted\n"), (proc.returncode, proc.stderr)


@pytest.mark.parametrize("args", [
    ["search", "--task", "trec", "--out", "OUT"],
    ["predict", "--model", "models:/ptv2-trec@champion", "hi"],
    ["promote", "--task", "trec"],
    ["run", "--tasks", "trec"],
    ["pretrain", "--tasks", "trec", "--epochs", "1", "--max-train", "8", "--quiet", "--out", "OUT"],
])
@pytest.mark.parametrize("where", ["under-a-file", "a-file"])
def test_a_state_folder_that_cannot_be_created_is_one_error(tmp_path, monkeypatch, args, where):
    """PTV2_HOME on a path that cannot be a folder ended in a FileNotFoundError traceback; the
    commands say it in one wording (pretrain, which only checks it, had its own). PTV2_HOME on a
    file itself: pretrain trained and only then failed; every command refuses it first."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    home = blocker / "home" if where == "under-a-file" else blocker
    monkeypatch.setenv("PTV2_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    res = run(*[str(tmp_path / "out") if a == "OUT" else a for a in args])
    assert_user_error(res, f"cannot create the state folder {home} (PTV2_HOME)",
                      *(["it is a file"] if home == blocker else []))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


@pytest.mark.parametrize("args, where", [  # register: test_registry.py, with an adapter it would register
    (["promote", "--task", "trec"], "point MLFLOW_TRACKING_URI at another store"),
    (["search", "--task", "trec", "--out", "OUT"], "point --mlflow-uri / MLFLOW_TRACKING_URI at another store"),
    (["pretrain", "--tasks", "trec", "--epochs", "1", "--max-train", "8", "--quiet", "--out", "OUT"],
     "point --mlflow-uri / MLFLOW_TRACKING_URI at another store"),
])
def test_a_sqlite_store_in_a_folder_that_does_not_exist_is_refused_not_made(tmp_path, monkeypatch, args, where):
    """MLFLOW_TRACKING_URI on a sqlite file in a mistyped folder: search had MLflow make the folder
    and a new, empty store there (promote said 'no MLflow store', pretrain refused it in words of its
    own). They refuse it in one wording (register's too), writing nothing."""
    typo = tmp_path / "typo" / "dir"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{typo / 'x.db'}")
    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    res = run(*[str(tmp_path / "out") if a == "OUT" else a for a in args])
    assert_user_error(res, f"MLflow store sqlite:///{typo / 'x.db'}: its folder '{typo}' does not exist (create it, or "
                      f"{where})")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, needle", [
    (["register", "--name", "", "--adapter", "A"], "--name is empty: give it a value, or leave it out for its default"),
    (["search", "--task", "trec", "--study-name=", "--out", "O"], "--study-name is empty"),
    (["eval", "--task", "", "--adapter", "A"], "--task is empty"),
    (["train", "--task", "trec", "--pooling", "", "--out", "O"], "--pooling is empty"),
    (["train", "--task", "trec", "--out", ""], "--out is empty: give it a value"),
    (["submit", "--tasks", "", "--host", "http://127.0.0.1:1"], "--tasks is empty"),
    (["pretrain", "--tasks", "trec", "--lengths", "8,4,4", "--max-prompt-len", "8", "--out", "O"],
     "lengths listed twice: 4"),
])
def test_an_empty_option_value_or_a_length_listed_twice_is_refused(args, needle, tmp_path):
    """`--name ""` meant the default name, `--experiment ""` kfp's Default experiment, `--task ""` the
    adapter's task: mostly a script's unset variable. And --lengths 8,4,4 was taken as 4,8."""
    args = [str(tmp_path / a) if a in ("A", "O") else a for a in args]
    assert_user_error(run(*args), needle)
    assert list(tmp_path.iterdir()) == []


def test_an_empty_text_to_label_is_still_a_text(tiny_adapter):
    # a flag followed by an empty argument: the empty string is a text, not an empty option value
    res = run("predict", "--adapter", str(tiny_adapter), "--json", "")
    assert res.returncode == 0 and json.loads(res.stdout) == {"text": "", "label": None, "score": None}, res.stderr


# --- pooling 'pooler' on a model without a pooler layer (fixer B) ---------------------------------

def test_train_refuses_pooler_on_a_model_without_one_before_any_data_loads(tmp_path, minilm_path):
    """`ptv2 train --pooling pooler` on GPT-2 loaded the data and the weights, then failed at the
    first batch with a traceback. Now refused from the model's config: the task's data (a label
    outside its list, an error of its own) is not even read."""
    folder = tmp_path / "gpt2"
    make_tiny_gpt2(minilm_path, folder)
    task = write_task(tmp_path, ROWS.replace(",b\n", ",c\n"), labels=["a", "b"])
    res = run("train", "--task", str(task), "--model", str(folder), "--pooling", "pooler", "--epochs", "1",
              "--out", str(tmp_path / "out"), "--quiet")
    assert_user_error(res, f"model '{folder}' has no pooler layer, so pooling 'pooler' cannot run on it; it supports "
                      "cls, mean, last")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpt2", "task.yaml", "train.csv"]


@pytest.mark.parametrize("uri", ["sqlite:x.db", "sqlite:/x.db"])
@pytest.mark.parametrize("args", [["promote", "--task", "trec"], ["search", "--task", "trec", "--out", "OUT"],
                                  ["pretrain", "--tasks", "trec", "--epochs", "1", "--quiet", "--out", "OUT"],
                                  ["predict", "--model", "models:/ptv2-trec@champion", "hi"]])
def test_a_malformed_sqlite_tracking_uri_is_one_error_line(tmp_path, monkeypatch, uri, args):
    """`sqlite:x.db` passed the scheme check, then sqlalchemy's ArgumentError came out as a traceback."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    res = run(*[str(tmp_path / "out") if a == "OUT" else a for a in args])
    assert_user_error(res, f"MLflow tracking URI '{uri}' is not a database URL: expected sqlite:///path/mlflow.db")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("uri", ["sqlite://", "sqlite:///", "sqlite:///:memory:"])
@pytest.mark.parametrize("args", [["promote", "--task", "trec"], ["search", "--task", "trec", "--out", "OUT"],
                                  ["pretrain", "--tasks", "trec", "--epochs", "1", "--quiet", "--out", "OUT"]])
def test_an_in_memory_sqlite_tracking_uri_is_refused(tmp_path, monkeypatch, uri, args):
    """A store in memory passed: what a command wrote there was gone when it ended (register
    'succeeded' into it, its first step the same check: store.tracking_uri, asserted below)."""
    from components.registry import store
    from ptv2_core.errors import Ptv2Error

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    message = (f"MLflow store {uri} names no file (sqlite in memory): what is written there is gone when the command "
               "ends; name a file, e.g. sqlite:///path/mlflow.db")
    assert_user_error(run(*[str(tmp_path / "out") if a == "OUT" else a for a in args]), message)
    with pytest.raises(Ptv2Error) as e:
        store.tracking_uri()  # register's (and ui's) way to the store
    assert str(e.value) == message
    assert list(tmp_path.iterdir()) == []


def test_a_sqlite_store_whose_folder_is_a_file_is_refused(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'a-file' / 'x.db'}")
    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    res = run("promote", "--task", "trec")
    assert_user_error(res, f"MLflow store sqlite:///{tmp_path / 'a-file' / 'x.db'}: '{tmp_path / 'a-file'}' is not a "
                      "folder (create it, or point MLFLOW_TRACKING_URI at another store)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_the_study_storage_is_checked_as_the_mlflow_store_is(tmp_path):
    """One check for both sqlite stores: in memory, a missing folder, a folder that is a file
    (Optuna's had words of its own: 'study storage folder does not exist: X')."""
    from optuna_studies.study import check_storage_url
    from ptv2_core.errors import Ptv2Error

    (tmp_path / "a-file").write_text("")
    for url, message in [
        ("sqlite://", "study storage sqlite:// names no file (sqlite in memory): what is written there is gone when "
                      "the command ends; name a file, e.g. sqlite:///path/optuna.db"),
        ("sqlite:///:memory:", "study storage sqlite:///:memory: names no file (sqlite in memory)"),
        (f"sqlite:///{tmp_path}/no/o.db", f"study storage sqlite:///{tmp_path}/no/o.db: its folder '{tmp_path / 'no'}' "
                                          "does not exist (create it, or name another storage)"),
        (f"sqlite:///{tmp_path}/a-file/x/o.db", f"study storage sqlite:///{tmp_path}/a-file/x/o.db: "
                                                f"'{tmp_path / 'a-file'}' is not a folder (create it, or name another storage)"),
    ]:
        with pytest.raises(Ptv2Error) as e:
            check_storage_url(url)
        assert str(e.value).startswith(message), str(e.value)
    assert check_storage_url(f"sqlite:///{tmp_path}/o.db")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
