"""Training throughput and peak memory: P-Tuning v2 against full fine-tuning (and PEFT prefix tuning).

Not a test. One run measures, on the same backbone, batch (32), sequence length (64) and prompt
length (16), with AdamW and the same classification head:

- ``full``: the backbone fully trainable, ptv2's sequence head on top;
- ``ptv2``: ptv2_core's real :class:`PromptModel` (frozen backbone, deep prompt, same head);
- ``peft``: PEFT's ``PrefixTuningConfig`` for sequence classification, where ``peft`` imports
  and works (``--peft-site`` adds a folder holding it to ``sys.path``; it is not a dependency).

On CPU the backbone is the packaged all-MiniLM-L6-v2; on CUDA (when present) randomly
initialised BERT-large and a Llama-style 1B with grouped-query attention, eager and under
``torch.compile`` (a compiled variant must reproduce the eager logits, checked before timing).
On CPU each method also runs with *attention recompute* (``--recompute``): SDPA whose backward
recomputes the attention probabilities instead of storing them; it must reproduce the reference's
loss and every gradient exactly. Every model trains in train mode (dropout on), as the loop does.

How it measures (the machine may be shared and noisy):
- examples/s: one subprocess per shape holds every method and alternates between them in blocks
  of ``--steps`` steps, after ``--warmup`` steps each, so all methods see the same background
  load; each block is one sample, reported as mean ± standard deviation over ``--repeats`` blocks,
  and the speed ratio is taken per block (paired) before averaging;
- peak memory: a fresh subprocess per configuration. CUDA: ``torch.cuda.max_memory_allocated``
  (weights, gradients, optimizer state, activations). CPU: the process's peak resident set
  during training (``VmHWM``, reset after loading via ``/proc/self/clear_refs``) minus its resident
  set before the model was loaded (the Python/torch runtime, the same for every method), with
  glibc's mmap threshold fixed so freed activations leave the resident set.

    .venv/bin/python bench/throughput.py [--device cpu|cuda|auto] [--threads N] [--peft-site DIR] [--compile]

On a machine other work shares, ``--threads 1`` gives steady numbers (see docs/benchmarks.md).

writes ``bench/results/throughput.json`` and ``bench/results/throughput.md``.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification  # noqa: E402

from ptv2_core.backbone import FAMILIES, geometry, resolve_model_name  # noqa: E402
from ptv2_core.heads import Head, HeadConfig, default_pooling  # noqa: E402
from ptv2_core.model import PromptModel  # noqa: E402
from ptv2_core.prefix import PromptConfig  # noqa: E402

from bench._args import Parser, check_device, check_out, fail, figure_bytes, positive, write_files  # noqa: E402
from bench._plots import grouped_bars, replot  # noqa: E402

BATCH, SEQ, PROMPT, LABELS = 32, 64, 16, 6
TARGET_SPEED, TARGET_MEMORY, TARGET_VS_PEFT = 1.4, 0.6, 1.25

# name -> how to build the backbone. "packaged": pretrained weights shipped in a package (CPU);
# otherwise a transformers config, randomly initialised (CUDA shapes).
SHAPES: dict[str, dict] = {
    "minilm": {"packaged": "minilm"},
    "bert-large": {"model_type": "bert", "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
                   "intermediate_size": 4096, "vocab_size": 30522},
    # Llama-3.2-1B-like: 16 layers, 32 query heads sharing 8 key/value heads, 1.24 B parameters
    "llama-1b-gqa": {"model_type": "llama", "hidden_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 32,
                     "num_key_value_heads": 8, "head_dim": 64, "intermediate_size": 8192, "vocab_size": 128256,
                     "max_position_embeddings": 2048, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2},
    # milliseconds per step anywhere: smoke-tests the CUDA run's code paths (--compile) on a CPU
    "tiny-bert": {"model_type": "bert", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                  "intermediate_size": 128, "vocab_size": 30522},
}
CPU_SHAPES, CUDA_SHAPES = ["minilm"], ["bert-large", "llama-1b-gqa"]
METHODS = ["full", "ptv2", "peft"]


# ----------------------------------------------------------------------------- worker side

def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss() -> bool:
    try:  # hand freed heap (e.g. from loading) back to the OS first, so the peak is live memory
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux ≥ 4.0)
        return True
    except OSError:
        return False


def _backbone(shape: str, device, for_peft: bool = False):
    """(model, family). For peft: the ``…ForSequenceClassification`` model it wraps."""
    spec = SHAPES[shape]
    torch.manual_seed(0)
    if "packaged" in spec:
        path = resolve_model_name(spec["packaged"])
        model = (AutoModelForSequenceClassification.from_pretrained(path, num_labels=LABELS) if for_peft
                 else AutoModel.from_pretrained(path))
        model = model.to(device)
    else:
        kw = {k: v for k, v in spec.items() if k != "model_type"}
        config = AutoConfig.for_model(spec["model_type"], **kw, **({"num_labels": LABELS} if for_peft else {}))
        with torch.device(device):  # initialise in place: a 1B model is slow to init on CPU
            model = (AutoModelForSequenceClassification if for_peft else AutoModel).from_config(config)
    return model, FAMILIES[model.config.model_type]


class FullFineTune(nn.Module):
    """The backbone, fully trainable, under the same head as PromptModel."""

    def __init__(self, backbone: nn.Module, head: HeadConfig):
        super().__init__()
        self.backbone, self.head = backbone, Head(head)

    def forward(self, input_ids, attention_mask, labels=None):
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask)
        logits = self.head(out.last_hidden_state, attention_mask, getattr(out, "pooler_output", None))
        loss = None if labels is None else F.cross_entropy(logits.float(), labels)
        return logits, loss


def _build(method: str, shape: str, device):
    """``(module, call)`` where ``call(module, ids, mask, labels) -> (logits, loss)``."""
    if method == "peft":
        from peft import PrefixTuningConfig, TaskType, get_peft_model  # may fail: reported as such

        base, _ = _backbone(shape, device, for_peft=True)
        model = get_peft_model(base, PrefixTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=PROMPT)).to(device)

        def call(m, ids, mask, y):
            out = m(input_ids=ids, attention_mask=mask, labels=y)
            return out.logits, out.loss
        return model, call

    backbone, family = _backbone(shape, device)
    g = geometry(backbone.config)
    head = HeadConfig("sequence", LABELS, g.hidden_size, default_pooling(family))
    if method == "ptv2":
        model = PromptModel(backbone, PromptConfig(PROMPT, g.num_layers, g.num_kv_heads, g.head_dim), head).to(device)

        def call(m, ids, mask, y):
            out = m(ids, mask, y)
            return out.logits, out.loss
        return model, call
    model = FullFineTune(backbone, head).to(device)
    return model, lambda m, ids, mask, y: m(ids, mask, y)


def _optimizer(model, device):
    params = [p for p in model.parameters() if p.requires_grad]
    lr = 1e-5 if sum(p.numel() for p in params) > 5e6 else 1e-2
    try:  # fused AdamW: one kernel over all parameters (CUDA, and CPU since torch 2.4); same for every method
        return torch.optim.AdamW(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(params, lr=lr)


def _batch(shape: str, device):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 20000, (BATCH, SEQ), generator=g)  # inside every vocabulary here
    mask = torch.ones(BATCH, SEQ, dtype=torch.long)
    mask[BATCH // 2:, SEQ * 3 // 4:] = 0  # half the batch right-padded: masks are exercised
    labels = torch.randint(0, LABELS, (BATCH,), generator=g)
    return ids.to(device), mask.to(device), labels.to(device)


def _sdpa_recompute(module, query, key, value, attention_mask, **kwargs):
    """SDPA whose backward recomputes the attention instead of keeping its probabilities.

    On CPU, attention dropout (the backbone trains in train mode) sends SDPA to its math path,
    which saves the softmax output, the dropout mask and the dropped probabilities for backward:
    ``[batch, heads, seq, keys]`` three times per layer. Recomputing them from the saved q, k, v
    (the RNG state replayed, so the same dropout mask) costs one attention forward and returns
    bit-identical outputs and gradients. CUDA's flash/memory-efficient kernels already do this.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if not (torch.is_grad_enabled() and (query.requires_grad or key.requires_grad or value.requires_grad)):
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    return torch.utils.checkpoint.checkpoint(sdpa_attention_forward, module, query, key, value, attention_mask,
                                             use_reentrant=False, preserve_rng_state=True, **kwargs)


def _register_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register("sdpa_recompute", _sdpa_recompute)
    AttentionMaskInterface.register("sdpa_recompute", sdpa_mask)  # masks exactly as for sdpa


def variant_key(method: str, compiled: bool, attention: str) -> str:
    return method + ("+compile" if compiled else "") + ("+recompute" if attention == "sdpa_recompute" else "")


class Runner:
    """One configuration's training step, as the training loop does it (the model in train mode:
    dropout on, in the frozen backbone too). Variants of one method share its model and optimizer."""

    def __init__(self, method: str, shape: str, device, compiled: bool, attention: str = "sdpa", base: "Runner | None" = None):
        self.device, self.method, self.compiled, self.attention = device, method, compiled, attention
        if base is None:
            self.model, self.call = _build(method, shape, device)
            self.opt = _optimizer(self.model, device)
            self.batch = _batch(shape, device)
        else:
            self.model, self.call, self.opt, self.batch = base.model, base.call, base.opt, base.batch
        self.model.train()  # from_pretrained hands back eval mode
        self.configs = [m.config for m in self.model.modules() if hasattr(getattr(m, "config", None), "_attn_implementation")]
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.fn = torch.compile(self.model) if compiled else self.model

    def _use_attention(self) -> None:
        for c in self.configs:
            if c._attn_implementation != self.attention:
                c._attn_implementation = self.attention

    def autocast(self):
        # as ptv2_core.evaluate.autocast: bf16 on CUDA, nothing on CPU; the same for every method
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")

    def step(self) -> None:
        self._use_attention()
        ids, mask, y = self.batch
        with self.autocast():
            _, loss = self.call(self.fn, ids, mask, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()

    def loss_and_grads(self, seed: int, fn=None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One forward/backward in train mode from a fixed RNG state, without an optimizer step."""
        self._use_attention()
        ids, mask, y = self.batch
        torch.manual_seed(seed)
        self.opt.zero_grad(set_to_none=True)
        with self.autocast():
            _, loss = self.call(fn or self.fn, ids, mask, y)
        loss.backward()
        grads = [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in self.params]
        self.opt.zero_grad(set_to_none=True)
        return loss.detach(), grads

    def check_compiled(self) -> float:
        """Max |compiled − eager| over the logits (eval mode, no dropout: the compiled RNG differs)."""
        self._use_attention()
        ids, mask, y = self.batch
        self.model.eval()
        try:
            with torch.no_grad(), self.autocast():
                eager = self.call(self.model, ids, mask, y)[0].float()
                comp = self.call(self.fn, ids, mask, y)[0].float()
        finally:
            self.model.train()
        return float((eager - comp).abs().max())

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()


def _max_diff(a: tuple, b: tuple) -> float:
    diffs = [float((a[0] - b[0]).abs())] + [float((x - y).abs().max()) for x, y in zip(a[1], b[1])]
    return max(diffs)


def _tolerance(device) -> float:
    return 5e-2 if device.type == "cuda" else 1e-4  # bf16 autocast on CUDA: kernel choice moves the last bits


def _failure(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg}"[:300]


def _import_model_code(shape: str) -> None:
    """Import (without building) the modules a shape's model lives in: transformers imports lazily."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING, MODEL_MAPPING

    spec = SHAPES[shape]
    config = (AutoConfig.from_pretrained(resolve_model_name(spec["packaged"])) if "packaged" in spec
              else AutoConfig.for_model(spec["model_type"]))
    MODEL_MAPPING[type(config)], MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING[type(config)]


def worker_memory(job: dict) -> dict:
    """Peak memory of one configuration, in a fresh process."""
    _register_attention()
    device = torch.device(job["device"])
    torch.set_num_threads(job["threads"])
    torch.ones(8, 8) @ torch.ones(8, 8)  # runtime up (thread pools) before the baseline
    _import_model_code(job["shape"])  # library code is runtime, not training memory
    gc.collect()
    base_kib = _rss_kib("VmRSS")
    try:
        runner = Runner(job["method"], job["shape"], device, job["compiled"], job["attention"])
        # first steps: lazy gradients and optimizer state appear (they stay live, so they count
        # below), compilation happens (its transient buffers should not count)
        for _ in range(job["warmup"]):
            runner.step()
        runner.sync()
        gc.collect()
        reset = _reset_peak_rss()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        for _ in range(job["steps"]):
            runner.step()
        runner.sync()
    except Exception as e:
        return {"error": _failure(e)}
    if device.type == "cuda":
        return {"peak_mib": torch.cuda.max_memory_allocated() / 2**20, "how": "torch.cuda.max_memory_allocated"}
    how = "VmHWM after warm-up and clear_refs − VmRSS before load" if reset else "VmHWM (no reset: includes loading) − VmRSS before load"
    return {"peak_mib": (_rss_kib("VmHWM") - base_kib) / 1024, "how": how, "runtime_mib": base_kib / 1024}


def worker_timing(job: dict) -> dict:
    """Examples/s of every configuration of one shape, interleaved in one process.

    Each method's first variant (eager, plain SDPA) is the reference its other variants must
    reproduce before they are timed: compiled ones the eval-mode logits, attention recompute
    the train-mode loss and every gradient (same RNG state)."""
    _register_attention()
    device = torch.device(job["device"])
    torch.set_num_threads(job["threads"])
    runners: dict[str, Runner] = {}
    errors: dict[str, str] = {}
    checks: dict[str, float] = {}
    warmup_s: dict[str, float] = {}
    variants = [tuple(v) for v in job["variants"]]  # (compiled, attention); the first is the reference
    # every model first: building one can change global state that compiled code guards on
    # (transformers' output-capturing registry), which would recompile in the middle of timing
    bases: dict[str, Runner] = {}
    for method in job["methods"]:
        try:
            bases[method] = Runner(method, job["shape"], device, *variants[0])
        except Exception as e:
            errors[variant_key(method, *variants[0])] = _failure(e)
    for method in job["methods"]:
        base, ref_key = bases.get(method), variant_key(method, *variants[0])
        for compiled, attention in variants:
            key = variant_key(method, compiled, attention)
            if key != ref_key and ref_key not in runners:
                errors[key] = "its reference variant failed"
                continue
            if base is None:  # could not even be built: its error is recorded
                continue
            try:
                r = base if (compiled, attention) == variants[0] else Runner(method, job["shape"], device, compiled, attention, base)
                if r is not base and attention != base.attention:
                    diff = _max_diff(base.loss_and_grads(7, base.model), r.loss_and_grads(7, r.model))
                    checks[key] = diff
                    if not diff <= _tolerance(device):
                        raise RuntimeError(f"loss/gradients differ from the reference by {diff:.3g}")
                t0 = time.perf_counter()
                for _ in range(job["warmup"]):  # compiles here, when compiled
                    r.step()
                r.sync()
                warmup_s[key] = time.perf_counter() - t0
                if compiled:
                    diff = r.check_compiled()
                    checks[key] = max(diff, checks.get(key, 0.0))
                    if not diff <= _tolerance(device):
                        raise RuntimeError(f"compiled logits differ from eager by {diff:.3g}")
                runners[key] = r
            except Exception as e:
                errors[key] = _failure(e)
    for r in runners.values():  # one more untimed step each, after all the compiling and checking
        r.step()
        r.sync()
    samples: dict[str, list[float]] = {k: [] for k in runners}
    cpu_samples: dict[str, list[float]] = {k: [] for k in runners}  # examples per process CPU-second
    keys = list(runners)
    for rep in range(job["repeats"]):
        order = keys[rep % len(keys):] + keys[:rep % len(keys)] if keys else []  # rotate who goes first
        for key in order:
            r = runners[key]
            r.sync()
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(job["steps"]):
                r.step()
            r.sync()
            samples[key].append(BATCH * job["steps"] / (time.perf_counter() - t0))
            cpu_samples[key].append(BATCH * job["steps"] / (time.process_time() - c0))
    out = {"samples": samples, "cpu_samples": cpu_samples, "errors": errors, "warmup_s": warmup_s, "max_abs_diff": checks}
    if device.type == "cuda":
        out["device_name"] = torch.cuda.get_device_name()
    return out


# ----------------------------------------------------------------------------- parent side

def _spawn(kind: str, job: dict, env: dict, timeout: int) -> dict:
    cmd = [sys.executable, __file__, f"--worker-{kind}", json.dumps(job)]
    if kind == "memory":
        # glibc raises its mmap threshold (up to 32 MiB) after the first large frees, after which
        # freed activations stay in the heap and RSS overstates live memory; a fixed threshold
        # returns every large tensor to the OS when freed, so the resident peak tracks live tensors
        env = {**env, "MALLOC_MMAP_THRESHOLD_": "131072"}
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    for line in reversed(p.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (p.stderr.strip().splitlines() or ["(no output)"])[-1]
    return {"error": f"worker exit {p.returncode}: {tail}"[:300]}


def _stats(xs: list[float]) -> dict:
    return {"mean": statistics.fmean(xs), "std": statistics.stdev(xs) if len(xs) > 1 else 0.0,
            "min": min(xs), "max": max(xs), "n": len(xs)}


def _machine(device: str, threads: int) -> dict:
    import transformers

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": threads,
            "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "device": device}
    try:
        info["load_average_at_start"] = list(os.getloadavg())
    except OSError:
        pass
    try:
        import peft
        info["peft"] = peft.__version__
    except Exception as e:
        info["peft"] = f"not importable ({_failure(e)})"
    return info


def run(args) -> dict:
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device)
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked for, but no CUDA GPU is available")
    cuda = device == "cuda"
    shapes = args.shapes or (CUDA_SHAPES if cuda else CPU_SHAPES)
    compile_modes = [False, True] if (args.compile if args.compile is not None else cuda) else [False]
    # attention recompute only matters where SDPA falls back to its math path (CPU, with dropout)
    attentions = ["sdpa", "sdpa_recompute"] if (args.recompute if args.recompute is not None else not cuda) else ["sdpa"]
    variants = [(c, a) for c in compile_modes for a in attentions]  # the first, (eager, sdpa), is the reference
    warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    steps = args.steps if args.steps is not None else (10 if cuda else 1)
    repeats = args.repeats if args.repeats is not None else (5 if cuda else 6)
    threads = args.threads or torch.get_num_threads()
    env = dict(os.environ)
    if args.peft_site:
        env["PYTHONPATH"] = os.pathsep.join([args.peft_site, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        sys.path.insert(0, args.peft_site)
    result = {"machine": _machine(device, threads), "batch": BATCH, "seq_len": SEQ, "prompt_len": PROMPT, "labels": LABELS,
              "optimizer": "AdamW (fused where supported), grad clip 1.0, same for every method",
              "precision": "fp32 weights, bf16 autocast" if cuda else "fp32",
              "mode": "train mode (dropout on, also in the frozen backbone), as the training loop",
              "warmup_steps": warmup, "steps_per_sample": steps, "repeats": repeats, "shapes": {}}
    for shape in shapes:
        print(f"[{shape}] timing {METHODS} × {variants} …", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        timing = _spawn("timing", {"device": device, "shape": shape, "methods": METHODS, "variants": variants,
                                   "warmup": warmup, "steps": steps, "repeats": repeats, "threads": threads},
                        env, args.timeout)
        print(f"[{shape}] timing done in {time.perf_counter() - t0:.0f} s; memory …", file=sys.stderr, flush=True)
        configs: dict[str, dict] = {}
        for method in METHODS:
            for compiled, attention in variants:
                key = variant_key(method, compiled, attention)
                entry: dict = {"method": method, "compiled": compiled, "attention": attention}
                if "error" in timing:
                    entry["error"] = timing["error"]
                elif key in timing["errors"]:
                    entry["error"] = timing["errors"][key]
                else:
                    entry["examples_per_s"] = _stats(timing["samples"][key])
                    entry["examples_per_cpu_s"] = _stats(timing["cpu_samples"][key])
                    entry["warmup_s"] = timing["warmup_s"][key]
                    if key in timing["max_abs_diff"]:
                        entry["max_abs_diff_vs_reference"] = timing["max_abs_diff"][key]
                    entry["memory"] = _spawn("memory", {"device": device, "shape": shape, "method": method,
                                                        "compiled": compiled, "attention": attention,
                                                        "warmup": min(warmup, 2), "steps": 2, "threads": threads},
                                             env, args.timeout)
                configs[key] = entry
        if "device_name" in timing:
            result["machine"]["device_name"] = timing["device_name"]
        result["shapes"][shape] = {"configs": configs, "ratios": _ratios(configs, timing, variants)}
    return result


def _ratios(configs: dict, timing: dict, variants: list[tuple[bool, str]]) -> dict:
    """P-Tuning v2 against full fine-tuning in the same variant, and against PEFT under compile.
    Speed ratios are paired per interleaved sample, then averaged."""
    def paired(a: str, b: str, which: str = "samples"):
        s = timing.get(which, {})
        return _stats([x / y for x, y in zip(s[a], s[b])]) if a in s and b in s else None

    def mem(a: str, b: str):
        try:
            return configs[a]["memory"]["peak_mib"] / configs[b]["memory"]["peak_mib"]
        except (KeyError, TypeError, ZeroDivisionError):
            return None

    out = {}
    for compiled, attention in variants:
        p, f = variant_key("ptv2", compiled, attention), variant_key("full", compiled, attention)
        out[f"{p} vs {f}"] = {"speed": paired(p, f), "speed_cpu_time": paired(p, f, "cpu_samples"), "memory": mem(p, f)}
    for compiled, attention in variants:
        if compiled:
            p, q = variant_key("ptv2", compiled, attention), variant_key("peft", compiled, attention)
            out[f"{p} vs {q}"] = {"speed": paired(p, q), "speed_cpu_time": paired(p, q, "cpu_samples"), "memory": mem(p, q)}
    return out


_NAMES = {"full": "full fine-tuning", "ptv2": "P-Tuning v2 (ptv2_core)", "peft": "PEFT PrefixTuningConfig"}


def _config_name(c: dict) -> str:
    extras = (["torch.compile"] if c["compiled"] else []) + (["attention recompute"] if c["attention"] == "sdpa_recompute" else [])
    return _NAMES[c["method"]] + (" + " + " + ".join(extras) if extras else " (eager)")


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# Training throughput: P-Tuning v2 vs full fine-tuning",
        "",
        f"Batch {result['batch']}, sequence length {result['seq_len']}, prompt length {result['prompt_len']}, "
        f"{result['labels']} labels; {result['optimizer']}; {result['precision']}; {result['mode']}. "
        f"{result['warmup_steps']} warm-up step(s), then {result['repeats']} interleaved samples of "
        f"{result['steps_per_sample']} step(s) each (mean ± standard deviation).",
        "",
        f"Machine: {m.get('device_name') or m['cpu']}, {m['cores']} cores, torch threads: {m['torch_threads']}; "
        f"Python {m['python']}, torch {m['torch']}, transformers {m['transformers']}, peft {m['peft']}."
        + (f" Load average at start: {', '.join(f'{x:.1f}' for x in m['load_average_at_start'])}." if "load_average_at_start" in m else ""),
        "",
        "| shape | configuration | examples/s (wall) | examples per CPU-second | peak memory (MiB) | equal to reference |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for shape, sr in result["shapes"].items():
        for c in sr["configs"].values():
            name = _config_name(c)
            if "error" in c:
                lines.append(f"| {shape} | {name} | fails: {c['error']} | – | – | |")
                continue
            s, mem = c["examples_per_s"], c.get("memory", {})
            memtxt = f"{mem['peak_mib']:.0f}" if "peak_mib" in mem else f"fails: {mem.get('error', '?')}"
            eq = f"max diff {c['max_abs_diff_vs_reference']:.1e}" if "max_abs_diff_vs_reference" in c else "(reference)"
            cs = c["examples_per_cpu_s"]
            lines.append(f"| {shape} | {name} | {s['mean']:.1f} ± {s['std']:.1f} | {cs['mean']:.2f} ± {cs['std']:.2f} | {memtxt} | {eq} |")
    lines += ["", "| shape | comparison | speed ratio (wall, paired) | speed ratio (CPU time, paired) | target | memory ratio | target |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for shape, sr in result["shapes"].items():
        for name, r in sr["ratios"].items():
            vs_peft = "peft" in name
            sp, mr = r["speed"], r["memory"]
            goal = TARGET_VS_PEFT if vs_peft else TARGET_SPEED
            sp_txt = f"{sp['mean']:.2f} ± {sp['std']:.2f}" if sp else "n/a"
            spc = r.get("speed_cpu_time")
            spc_txt = f"{spc['mean']:.2f} ± {spc['std']:.2f}" if spc else "n/a"
            met = "" if not sp else (" ✓" if sp["mean"] >= goal else " ✗")
            mr_txt = f"{mr:.2f}" if mr is not None else "n/a"
            mt = "" if vs_peft else f"≤ {TARGET_MEMORY}" + ("" if mr is None else (" ✓" if mr <= TARGET_MEMORY else " ✗"))
            lines.append(f"| {shape} | {name} | {sp_txt} | {spc_txt} | ≥ {goal}{met} | {mr_txt} | {mt} |")
    lines += ["",
              "The target marks read the wall-clock ratio. Examples per CPU-second (process CPU time, all threads) "
              "is steadier where other work shares the cores. Equal to reference: each method's eager plain-SDPA run is its reference; attention recompute must "
              "reproduce its train-mode loss and every gradient from the same RNG state, a compiled variant its "
              "eval-mode logits. CPU peak memory: the process's peak resident set during training minus its "
              "resident set before the model was loaded (glibc mmap threshold fixed, so freed tensors leave the "
              "resident set); CUDA: `torch.cuda.max_memory_allocated`. Generated by `bench/throughput.py`."]
    return "\n".join(lines) + "\n"


def _variant_name(c: dict) -> str:
    extras = (["torch.compile"] if c["compiled"] else []) + (["attention recompute"] if c["attention"] == "sdpa_recompute" else [])
    return " + ".join(extras) or "eager"


def figure(result: dict):
    """The picture beside the tables: examples/s (mean ± sd over the samples) per shape and method, a bar per
    variant (eager, attention recompute, torch.compile); a configuration that failed is marked so."""
    groups = list(dict.fromkeys((shape, c["method"]) for shape, sr in result["shapes"].items()
                                for c in sr["configs"].values()))
    variants = list(dict.fromkeys(_variant_name(c) for sr in result["shapes"].values() for c in sr["configs"].values()))
    found = {(shape, c["method"], _variant_name(c)): c for shape, sr in result["shapes"].items() for c in sr["configs"].values()}

    def stat(g, v, key):
        c = found.get((*g, v))
        return None if c is None or "error" in c else c["examples_per_s"][key]

    m = result["machine"]
    short = {"full": "full fine-tuning", "ptv2": "P-Tuning v2", "peft": "PEFT prefix"}
    return grouped_bars([f"{shape}\n{short[method]}" for shape, method in groups],
                        {v: [stat(g, v, "mean") for g in groups] for v in variants},
                        errors={v: [stat(g, v, "std") for g in groups] for v in variants}, missing="fails",
                        ylabel="training examples/s (wall)",
                        title=f"Training throughput on {m.get('device_name') or m['cpu']} ({m['device']}, "
                              f"{result['precision']}), batch {result['batch']}, sequence {result['seq_len']}: "
                              f"mean ± sd over {result['repeats']} samples")


def main(argv=None) -> None:
    p = Parser(__doc__.splitlines()[0],
               writes="OUT/throughput.json (every timed sample, the machine, the versions), OUT/throughput.md and "
                      "OUT/throughput.png (default OUT: bench/results); --replot: only the picture, from "
                      "OUT/throughput.json.",
               takes="CPU defaults (minilm, 6 samples, recompute): several minutes on 2 cores, most of it one fresh "
                     "worker process per configuration for the memory peaks; --shapes tiny-bert --warmup 1 --steps 1 "
                     "--repeats 1: 1-4 minutes. CUDA defaults (bert-large and llama-1b-gqa, eager and "
                     "torch.compile): not measured yet; --no-compile shortens it most. --replot: seconds.")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--shapes", nargs="*", choices=sorted(SHAPES), help="default: minilm on CPU, bert-large and llama-1b-gqa on CUDA")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="also time torch.compile variants (default: on CUDA only; slow to compile on CPU)")
    p.add_argument("--recompute", action=argparse.BooleanOptionalAction, default=None,
                   help="also time SDPA with attention recompute (default: on CPU only)")
    p.add_argument("--warmup", type=positive, help="untimed steps first (default 5 on CUDA, 1 on CPU)")
    p.add_argument("--steps", type=positive, help="steps per timed sample (default 10 on CUDA, 1 on CPU)")
    p.add_argument("--repeats", type=positive, help="timed samples per configuration (default 5 on CUDA, 6 on CPU)")
    p.add_argument("--threads", type=positive, help="torch threads per worker (default: all cores; on a machine other "
                   "work shares, 1 avoids OpenMP threads waiting on each other's descheduled peers)")
    p.add_argument("--peft-site", help="a folder holding peft (pip install --no-deps --target DIR peft accelerate psutil)")
    p.add_argument("--timeout", type=positive, default=1800, help="per worker subprocess, seconds")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"),
                   help="folder for the JSON, the table and the plot (default: bench/results)")
    p.add_argument("--replot", action="store_true", help="time nothing: draw OUT/throughput.png again from its JSON")
    p.add_argument("--worker-timing", help=argparse.SUPPRESS)  # the bench's own worker processes
    p.add_argument("--worker-memory", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker_timing or args.worker_memory:
        job = json.loads(args.worker_timing or args.worker_memory)
        res = worker_timing(job) if args.worker_timing else worker_memory(job)
        print("RESULT " + json.dumps(res), flush=True)
        return
    check_device(args.device)
    check_out(Path(args.out))
    if args.replot:
        return replot(Path(args.out), "throughput", figure)
    if args.peft_site and not Path(args.peft_site).is_dir():
        fail(f"--peft-site '{args.peft_site}' is not a folder")
    t0 = time.perf_counter()
    result = run(args)
    result["wall_s"] = time.perf_counter() - t0
    out = Path(args.out)
    write_files(out, {"throughput.json": json.dumps(result, indent=2) + "\n", "throughput.md": markdown(result),
                      "throughput.png": figure_bytes(figure(result))})
    print(markdown(result))
    print(f"wrote {out / 'throughput.json'}, {out / 'throughput.md'} and {out / 'throughput.png'} in {result['wall_s']:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
