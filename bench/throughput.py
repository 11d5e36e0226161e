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

How it measures (the machine may be shared and noisy):
- examples/s: one subprocess per shape holds every method and alternates between them in blocks
  of ``--steps`` steps, after ``--warmup`` steps each, so all methods see the same background
  load; each block is one sample, reported as mean ± standard deviation over ``--repeats`` blocks,
  and the speed ratio is taken per block (paired) before averaging;
- peak memory: a fresh subprocess per configuration. CUDA: ``torch.cuda.max_memory_allocated``
  (weights, gradients, optimizer state, activations). CPU: the process's peak resident set
  during training (``VmHWM``, reset after loading via ``/proc/self/clear_refs``) minus its resident
  set before the model was loaded (the Python/torch runtime, the same for every method).

    .venv/bin/python bench/throughput.py [--device cpu|cuda|auto] [--peft-site DIR] [--compile]

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


class Runner:
    """One method's training step (eager or compiled), as the training loop does it."""

    def __init__(self, method: str, shape: str, device, compiled: bool, model=None, call=None, opt=None):
        self.device, self.method, self.compiled = device, method, compiled
        self.model, self.call = (model, call) if model is not None else _build(method, shape, device)
        self.model.train()  # as the training loop: dropout on, in the frozen backbone too (from_pretrained gives eval)
        self.opt = opt or _optimizer(self.model, device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.fn = torch.compile(self.model) if compiled else self.model
        self.batch = _batch(shape, device)

    def autocast(self):
        # as ptv2_core.evaluate.autocast: bf16 on CUDA, nothing on CPU; the same for every method
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")

    def step(self) -> None:
        ids, mask, y = self.batch
        with self.autocast():
            _, loss = self.call(self.fn, ids, mask, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()

    def check_compiled(self) -> float:
        """Max |compiled − eager| over the logits (eval mode, no dropout); compiled only."""
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


def _tolerance(device) -> float:
    return 5e-2 if device.type == "cuda" else 1e-4  # bf16 autocast on CUDA: kernel choice moves the last bits


def _failure(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg}"[:300]


def worker_memory(job: dict) -> dict:
    """Peak memory of one configuration, in a fresh process."""
    device = torch.device(job["device"])
    torch.set_num_threads(job["threads"])
    torch.ones(8, 8) @ torch.ones(8, 8)  # runtime up (thread pools) before the baseline
    base_kib = _rss_kib("VmRSS")
    try:
        runner = Runner(job["method"], job["shape"], device, job["compiled"])
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
    return {"peak_mib": (_rss_kib("VmHWM") - base_kib) / 1024, "how": how,
            "runtime_mib": base_kib / 1024}


def worker_timing(job: dict) -> dict:
    """Examples/s of every configuration of one shape, interleaved in one process."""
    device = torch.device(job["device"])
    torch.set_num_threads(job["threads"])
    runners: dict[str, Runner] = {}
    errors: dict[str, str] = {}
    for method in job["methods"]:
        eager = None
        for compiled in job["compile_modes"]:
            key = f"{method}{'+compile' if compiled else ''}"
            try:
                if eager is None:
                    runners[key] = eager = Runner(method, job["shape"], device, compiled)
                else:  # the compiled variant trains the same module: no second copy in memory
                    runners[key] = Runner(method, job["shape"], device, compiled, eager.model, eager.call, eager.opt)
                r = runners[key]
                t0 = time.perf_counter()
                for _ in range(job["warmup"]):  # compiles here, when compiled
                    r.step()
                r.sync()
                r.warmup_s = time.perf_counter() - t0
                if compiled:
                    diff = r.check_compiled()
                    r.max_abs_diff = diff
                    if not diff <= _tolerance(device):
                        raise RuntimeError(f"compiled logits differ from eager by {diff:.3g}")
            except Exception as e:
                errors[key] = _failure(e)
                runners.pop(key, None)
                if not compiled:  # no eager model: its compiled variant cannot run either
                    if True in job["compile_modes"]:
                        errors[f"{method}+compile"] = "its eager variant failed"
                    break
    samples: dict[str, list[float]] = {k: [] for k in runners}
    keys = list(runners)
    for rep in range(job["repeats"]):
        order = keys[rep % len(keys):] + keys[:rep % len(keys)] if keys else []  # rotate who goes first
        for key in order:
            r = runners[key]
            r.sync()
            t0 = time.perf_counter()
            for _ in range(job["steps"]):
                r.step()
            r.sync()
            samples[key].append(BATCH * job["steps"] / (time.perf_counter() - t0))
    out = {"samples": samples, "errors": errors,
           "warmup_s": {k: r.warmup_s for k, r in runners.items()},
           "max_abs_diff": {k: r.max_abs_diff for k, r in runners.items() if hasattr(r, "max_abs_diff")}}
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


def _machine(device: str) -> dict:
    import transformers

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
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
    shapes = args.shapes or (CUDA_SHAPES if device == "cuda" else CPU_SHAPES)
    compile_modes = [False, True] if (args.compile if args.compile is not None else device == "cuda") else [False]
    cuda = device == "cuda"
    warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    steps = args.steps if args.steps is not None else (10 if cuda else 1)
    repeats = args.repeats if args.repeats is not None else (5 if cuda else 8)
    threads = args.threads or torch.get_num_threads()
    env = dict(os.environ)
    if args.peft_site:
        env["PYTHONPATH"] = os.pathsep.join([args.peft_site, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        sys.path.insert(0, args.peft_site)
    result = {"machine": _machine(device), "batch": BATCH, "seq_len": SEQ, "prompt_len": PROMPT, "labels": LABELS,
              "optimizer": "AdamW (fused where supported), grad clip 1.0, same for every method",
              "precision": "fp32 weights, bf16 autocast" if cuda else "fp32",
              "warmup_steps": warmup, "steps_per_sample": steps, "repeats": repeats, "shapes": {}}
    for shape in shapes:
        print(f"[{shape}] timing {METHODS} (compile modes {compile_modes}) …", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        timing = _spawn("timing", {"device": device, "shape": shape, "methods": METHODS, "compile_modes": compile_modes,
                                   "warmup": warmup, "steps": steps, "repeats": repeats, "threads": threads},
                        env, args.timeout)
        print(f"[{shape}] timing done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        configs: dict[str, dict] = {}
        for method in METHODS:
            for compiled in compile_modes:
                key = f"{method}{'+compile' if compiled else ''}"
                entry: dict = {"method": method, "compiled": compiled}
                if "error" in timing:
                    entry["error"] = timing["error"]
                elif key in timing["errors"]:
                    entry["error"] = timing["errors"][key]
                else:
                    entry["examples_per_s"] = _stats(timing["samples"][key])
                    entry["warmup_s"] = timing["warmup_s"][key]
                    if key in timing["max_abs_diff"]:
                        entry["max_abs_diff_vs_eager"] = timing["max_abs_diff"][key]
                    mem = _spawn("memory", {"device": device, "shape": shape, "method": method, "compiled": compiled,
                                            "warmup": min(warmup, 2), "steps": 2, "threads": threads}, env, args.timeout)
                    entry["memory"] = mem
                configs[key] = entry
        shape_result = {"configs": configs, "ratios": _ratios(configs, timing, compile_modes)}
        if "device_name" in timing:
            result["machine"]["device_name"] = timing["device_name"]
        result["shapes"][shape] = shape_result
    return result


def _ratios(configs: dict, timing: dict, compile_modes: list[bool]) -> dict:
    """P-Tuning v2 against full FT (same compile mode) and against PEFT under compile; speed ratios
    are paired per interleaved block."""
    def paired(a: str, b: str):
        if "samples" not in timing or a not in timing["samples"] or b not in timing["samples"]:
            return None
        return _stats([x / y for x, y in zip(timing["samples"][a], timing["samples"][b])])

    def mem(a: str, b: str):
        try:
            return configs[a]["memory"]["peak_mib"] / configs[b]["memory"]["peak_mib"]
        except (KeyError, TypeError, ZeroDivisionError):
            return None

    out = {}
    for compiled in compile_modes:
        sfx = "+compile" if compiled else ""
        out[f"ptv2{sfx} vs full{sfx}"] = {"speed": paired(f"ptv2{sfx}", f"full{sfx}"), "memory": mem(f"ptv2{sfx}", f"full{sfx}")}
    if True in compile_modes:
        out["ptv2+compile vs peft+compile"] = {"speed": paired("ptv2+compile", "peft+compile"),
                                               "memory": mem("ptv2+compile", "peft+compile")}
    return out


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# Training throughput: P-Tuning v2 vs full fine-tuning",
        "",
        f"Batch {result['batch']}, sequence length {result['seq_len']}, prompt length {result['prompt_len']}, "
        f"{result['labels']} labels; {result['optimizer']}; {result['precision']}. "
        f"{result['warmup_steps']} warm-up steps, then {result['repeats']} interleaved samples of "
        f"{result['steps_per_sample']} steps each (mean ± standard deviation).",
        "",
        f"Machine: {m.get('device_name') or m['cpu']}, {m['cores']} cores ({m['torch_threads']} torch threads); "
        f"Python {m['python']}, torch {m['torch']}, transformers {m['transformers']}, peft {m['peft']}."
        + (f" Load average at start: {', '.join(f'{x:.1f}' for x in m['load_average_at_start'])}." if "load_average_at_start" in m else ""),
        "",
        "| shape | configuration | examples/s | peak memory (MiB) | notes |",
        "| --- | --- | --- | --- | --- |",
    ]
    for shape, sr in result["shapes"].items():
        for key, c in sr["configs"].items():
            name = {"full": "full fine-tuning", "ptv2": "P-Tuning v2 (ptv2_core)", "peft": "PEFT PrefixTuningConfig"}[c["method"]]
            name += " + torch.compile" if c["compiled"] else " (eager)"
            if "error" in c:
                lines.append(f"| {shape} | {name} | fails: {c['error']} | – | |")
                continue
            s = c["examples_per_s"]
            mem = c.get("memory", {})
            memtxt = f"{mem['peak_mib']:.0f}" if "peak_mib" in mem else f"fails: {mem.get('error', '?')}"
            note = f"max \\|compiled − eager\\| logit {c['max_abs_diff_vs_eager']:.1e}" if "max_abs_diff_vs_eager" in c else ""
            lines.append(f"| {shape} | {name} | {s['mean']:.1f} ± {s['std']:.1f} | {memtxt} | {note} |")
    lines += ["", "| shape | comparison | speed ratio (paired) | target | memory ratio | target |", "| --- | --- | --- | --- | --- | --- |"]
    for shape, sr in result["shapes"].items():
        for name, r in sr["ratios"].items():
            vs_peft = "peft" in name
            sp, mr = r["speed"], r["memory"]
            sp_txt = f"{sp['mean']:.2f} ± {sp['std']:.2f}" if sp else "n/a"
            st = f"≥ {TARGET_VS_PEFT}" if vs_peft else f"≥ {TARGET_SPEED}"
            met = "" if not sp else (" ✓" if sp["mean"] >= (TARGET_VS_PEFT if vs_peft else TARGET_SPEED) else " ✗")
            mr_txt = f"{mr:.2f}" if mr is not None else "n/a"
            mt = "" if vs_peft else f"≤ {TARGET_MEMORY}" + ("" if mr is None else (" ✓" if mr <= TARGET_MEMORY else " ✗"))
            lines.append(f"| {shape} | {name} | {sp_txt} | {st}{met} | {mr_txt} | {mt} |")
    lines.append("")
    lines.append("CPU peak memory: the process's peak resident set during training minus its resident set before "
                 "the model was loaded; CUDA: `torch.cuda.max_memory_allocated`. Generated by `bench/throughput.py`.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--shapes", nargs="*", choices=sorted(SHAPES), help="default: minilm on CPU, bert-large and llama-1b-gqa on CUDA")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="also time torch.compile variants (default: on CUDA only; slow to compile on CPU)")
    p.add_argument("--warmup", type=int)
    p.add_argument("--steps", type=int, help="steps per timed sample")
    p.add_argument("--repeats", type=int, help="timed samples per configuration")
    p.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    p.add_argument("--peft-site", help="a folder holding peft (pip install --no-deps --target DIR peft accelerate psutil)")
    p.add_argument("--timeout", type=int, default=1800, help="per worker subprocess, seconds")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--worker-timing")
    p.add_argument("--worker-memory")
    args = p.parse_args(argv)
    if args.worker_timing or args.worker_memory:
        job = json.loads(args.worker_timing or args.worker_memory)
        res = worker_timing(job) if args.worker_timing else worker_memory(job)
        print("RESULT " + json.dumps(res), flush=True)
        return
    t0 = time.perf_counter()
    result = run(args)
    result["wall_s"] = time.perf_counter() - t0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "throughput.md").write_text(markdown(result))
    print(markdown(result))
    print(f"wrote {out / 'throughput.json'} and {out / 'throughput.md'} in {result['wall_s']:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
