"""Running out of memory: one ``error:`` line naming what did not fit and the option to lower, exit
status 2, nothing written; in a search, the trial fails alone and the next one runs.

Memory really runs out: the commands run in a child process whose address space is capped
(``RLIMIT_AS``), so the allocator fails as it does on a full device. The cap is set once the child
has imported everything and trained a small adapter: what it maps then plus HEADROOM, so it does
not depend on how much a machine's libraries map. The child runs every step through the real
entry point, one after another, so each success after a failure shows that the failed step's
memory came back, and that the cap lets small batches through: it is not what fails.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="caps memory with RLIMIT_AS and "
                                "reads /proc/self/status: Linux only")

# Texts of TOKENS tokens. Scoring BIG rows holds over 1 GiB (the feed-forward layer's activations
# of 100,000 tokens: 600 MiB, and the hidden states), training TRAIN_BIG rows keeps several GiB
# for the backward pass; SMALL rows need a few MiB. Both fail early (in the first layers), after
# seconds of compute.
HEADROOM = 512 * 2**20
TOKENS, BIG, TRAIN_BIG, SMALL = 500, 200, 64, 2

CHILD = r"""
import contextlib, io, json, resource, sys
from pipelines.cli import main
from optuna_studies.objective import objective

def mapped():
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmSize:"))

results = []
for step in json.loads(sys.argv[2]):
    if "cap" in step:  # from here on: what this process maps now, plus the headroom
        resource.setrlimit(resource.RLIMIT_AS, (mapped() + int(sys.argv[1]),) * 2)
        results.append({"capped_at": mapped() + int(sys.argv[1])})
        continue
    if "registry" in step:  # a registered model's aliases and version 1's tags
        from mlflow import MlflowClient
        model = MlflowClient().get_registered_model(step["registry"])
        results.append({"aliases": model.aliases, "tags": MlflowClient().get_model_version(model.name, "1").tags})
        continue
    if "objective" in step:
        results.append(objective(step["objective"], lambda *a: None))
        continue
    if "promote_step" in step:  # the pipeline's promote step, as its KFP component calls it
        from components.promote_step import promote_step
        try:
            results.append({"decision": promote_step(*step["promote_step"])})
        except Exception as e:
            results.append({"error": f"{type(e).__name__}: {e}"})
        continue
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(step["cli"])
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    results.append({"code": code, "out": out.getvalue(), "err": err.getvalue()})
print(json.dumps(results))
"""

WORDS = ("river stone market letter garden window silver morning journey village candle harbour "
         "mountain question lantern orchard meadow whistle").split()


def long_task(folder: Path) -> Path:
    """A sequence task of 600-word texts (cut at TOKENS): TRAIN_BIG train, BIG dev, BIG test rows."""
    def rows(n: int, offset: int) -> str:
        lines = ["text,label"]
        for i in range(n):
            good = (i + offset) % 2 == 0
            words = [WORDS[(i * 7 + j * 3 + offset) % len(WORDS)] for j in range(599)]
            # the row's own number: a dev or test row that copies a train row is refused
            lines.append(f"{'good' if good else 'bad'} {offset}.{i} {' '.join(words)},{'pos' if good else 'neg'}")
        return "\n".join(lines) + "\n"

    for split, n, offset in (("train", TRAIN_BIG, 0), ("dev", BIG, 1), ("test", BIG, 2)):
        (folder / f"{split}.csv").write_text(rows(n, offset))
    (folder / "long.yaml").write_text(f"name: long\ntype: sequence\nmax_length: {TOKENS}\n"
                                      "data: {train: train.csv, dev: dev.csv, test: test.csv}\n")
    return folder / "long.yaml"


@pytest.fixture(scope="module")
def capped_run(tmp_path_factory, minilm_path):
    """Every step below, in order, in one child under the cap; their results by name."""
    tmp = tmp_path_factory.mktemp("oom")
    task = str(long_task(tmp))
    texts = tmp / "texts.txt"
    texts.write_text("".join(f"{'good' if i % 2 else 'bad'} {' '.join(WORDS * 40)}\n" for i in range(BIG)))
    few = tmp / "few.txt"
    few.write_text("".join(texts.read_text().splitlines(keepends=True)[:4]))
    adapter = str(tmp / "adapter")
    train = ["train", "--task", task, "--model", minilm_path, "--epochs", "1", "--prompt-len", "4", "--quiet"]
    small = ["--max-train", str(SMALL), "--batch-size", str(SMALL)]
    trial = {"task": task, "model": minilm_path, "prompt_len": 4, "lr": 0.01, "epochs": 1, "max_eval": 2, "seed": 0}
    promote = ["promote", "--task", task, "--force", "--reason", "forced: the floor is no opponent here"]
    steps = {
        "train_fits": {"cli": [*train, *small, "--max-eval", "2", "--eval-batch-size", "2", "--out", adapter]},
        "register": {"cli": ["register", "--adapter", adapter]},
        "cap": {"cap": True},
        "train_batch": {"cli": [*train, "--batch-size", str(TRAIN_BIG), "--max-eval", "2", "--out", str(tmp / "a")]},
        "train_eval_batch": {"cli": [*train, *small, "--eval-batch-size", str(BIG), "--out", str(tmp / "b")]},
        "pretrain_batch": {"cli": ["pretrain", "--tasks", task, "--model", minilm_path, "--max-prompt-len", "4",
                                   "--lengths", "4", "--epochs", "1", "--batch-size", str(TRAIN_BIG), "--max-eval", "2",
                                   "--out", str(tmp / "p"), "--quiet"]},
        "eval_batch": {"cli": ["eval", "--adapter", adapter, "--max-eval", str(BIG), "--batch-size", str(BIG)]},
        "predict_batch": {"cli": ["predict", "--adapter", adapter, "--file", str(texts), "--batch-size", str(BIG)]},
        "predict_fits": {"cli": ["predict", "--adapter", adapter, "--file", str(few), "--batch-size", str(SMALL)]},
        "promote_batch": {"cli": [*promote, "--batch-size", str(BIG)]},
        "after_promote_batch": {"registry": "ptv2-long"},
        "promote_step": {"promote_step": ["long", "ptv2-long", "1", 0.5, "", 0]},
        "after_promote_step": {"registry": "ptv2-long"},
        "promote_fits": {"cli": [*promote, "--max-eval", "4", "--batch-size", str(SMALL)]},
        "after_promote_fits": {"registry": "ptv2-long"},
        "trial_batch": {"objective": trial | {"batch_size": TRAIN_BIG}},
        "trial_fits": {"objective": trial | {"batch_size": SMALL, "max_train": SMALL, "eval_batch_size": 2}},
    }
    # MALLOC_ARENA_MAX=1: every thread allocates from glibc's one main heap. With a second arena, a
    # thread that finds its arena locked moves to the other one, so under CPU load (a parallel suite)
    # the main thread's tensors land in the second arena's 64 MiB heaps, which stay mapped after they
    # are freed: the capped steps' address space grew by 0-400 MiB from run to run (a failed big batch
    # left it behind) and a later step's model load then failed to map its weights. With one arena it
    # grew 5-80 MiB under the same load (2 busy processes beside it).
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", MALLOC_ARENA_MAX="1",
               TOKENIZERS_PARALLELISM="false", PTV2_HOME=str(tmp / "home"))
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'home' / 'mlflow.db'}"  # the registry: a sqlite store
    proc = subprocess.run([sys.executable, "-c", CHILD, str(HEADROOM), json.dumps(list(steps.values()))],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, dict(zip(steps, json.loads(proc.stdout.splitlines()[-1])))


def one_error(res: dict, *needles: str) -> str:
    assert res["code"] == 2, res
    lines = res["err"].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: out of memory on cpu while "), res["err"]
    assert "Traceback" not in res["err"]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_a_training_batch_too_large_names_its_shape_and_batch_size_and_writes_nothing(capped_run):
    tmp, res = capped_run
    line = one_error(res["train_batch"], f"training on a batch of {TRAIN_BIG} rows of {TOKENS} tokens with a "
                     "4-position prompt", "MiB more", "try a smaller --batch-size")
    assert "--eval-batch-size" not in line
    assert not (tmp / "a").exists()


def test_a_scoring_batch_too_large_during_training_names_eval_batch_size(capped_run):
    tmp, res = capped_run
    one_error(res["train_eval_batch"], f"scoring a batch of {BIG} rows of {TOKENS} tokens",
              "try a smaller --eval-batch-size")
    assert not (tmp / "b").exists()


def test_pre_training_names_its_batch_and_task_and_leaves_no_folder(capped_run):
    tmp, res = capped_run
    one_error(res["pretrain_batch"], f"pre-training on a batch of {TRAIN_BIG} rows of {TOKENS} tokens (task long, "
              "prompt length 4)", "try a smaller --batch-size")
    assert not (tmp / "p").exists()


def test_small_batches_fit_under_the_cap_after_the_failures(capped_run):
    tmp, res = capped_run
    assert res["train_fits"]["code"] == 0, res["train_fits"]["err"]  # before the cap: the adapter used below
    assert res["cap"]["capped_at"] > HEADROOM
    assert (tmp / "adapter" / "adapter.safetensors").is_file()
    assert res["predict_fits"]["code"] == 0, res["predict_fits"]["err"]
    labels = res["predict_fits"]["out"].splitlines()
    assert len(labels) == 4 and set(labels) <= {"pos", "neg"}, labels


def test_eval_and_predict_name_their_own_batch_size(capped_run):
    _, res = capped_run
    one_error(res["eval_batch"], f"scoring a batch of {BIG} rows of {TOKENS} tokens", "try a smaller --batch-size")
    assert res["eval_batch"]["out"] == ""
    one_error(res["predict_batch"], f"labelling a batch of {BIG} rows of {TOKENS} tokens", "try a smaller --batch-size")
    assert res["predict_batch"]["out"] == ""


def test_promote_names_its_batch_size_and_moves_no_alias(capped_run):
    """A forced promotion of the registered adapter (against the majority-class floor): scoring all
    BIG test rows at once does not fit, and nothing is recorded; on 4 rows, 2 at a time, it is."""
    _, res = capped_run
    assert res["register"]["code"] == 0, res["register"]["err"]
    one_error(res["promote_batch"], f"scoring a batch of {BIG} rows of {TOKENS} tokens", "try a smaller --batch-size")
    assert res["promote_batch"]["out"] == ""
    assert res["after_promote_batch"]["aliases"] == {"challenger": 1}
    assert not any(k.startswith("promotion.") for k in res["after_promote_batch"]["tags"])
    assert res["promote_fits"]["code"] == 0, res["promote_fits"]["err"]
    assert res["promote_fits"]["out"].startswith("ptv2-long: version 1 promoted")
    after = res["after_promote_fits"]
    assert after["aliases"] == {"challenger": 1, "champion": 1} and after["tags"]["promotion.test_examples"] == "4"


def test_the_pipelines_promote_step_names_what_a_pipeline_user_can_change(capped_run):
    """The pipeline has no batch-size parameter: its step's line names the step's memory and the
    command that promotes the registered version in smaller batches, not ``--batch-size`` alone."""
    _, res = capped_run
    err = res["promote_step"].get("error", "")
    assert err.startswith("OutOfMemory: out of memory on cpu while scoring a batch of 64 rows"), res["promote_step"]
    assert "try a smaller --batch-size" not in err
    assert "the pipeline has no parameter for it" in err and "STEP_RESOURCES['promote']" in err
    assert "`ptv2 promote --task ptv2-long --version 1 --batch-size 8`" in err
    assert res["after_promote_step"]["aliases"] == {"challenger": 1}


def test_a_search_trial_out_of_memory_fails_alone_and_the_next_trial_runs(capped_run):
    _, res = capped_run
    failed, fits = res["trial_batch"], res["trial_fits"]
    assert failed["status"] == "failed" and failed["epochs_run"] == 0
    assert failed["failure"].startswith(f"failed: out of memory on cpu while training on a batch of {TRAIN_BIG} rows")
    assert "under the space's fixed: settings" in failed["failure"]
    assert fits["status"] == "completed" and fits["epochs_run"] == 1 and fits["failure"] is None
