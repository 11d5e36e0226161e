"""One-call GPU check of ptv2's CUDA paths, for the first session that has a GPU (docs/gpu.md).

    python bench/gpu_check.py                        # writes $OUT/gpu_check.json, else bench/results/
    python bench/gpu_check.py --device cpu --out x.json   # the same checks on CPU (bf16 off): a dry run

Needs only torch, transformers and safetensors (the repository on PYTHONPATH, no ptv2 install, no
data sets, no hub): tiny random BERT and Llama (grouped-query attention) built from configs, in
ptv2's own PromptModel, AdamW step and OOM handling. Each check is recorded, failing or not:

- ``device``: ``pick_device`` takes ``cuda`` and refuses ``cuda:<count>`` in one line;
- ``train_<family>``: steps under bf16 autocast as the training loop runs them: loss finite and
  falling, the prefix's gradient non-zero (the cache was not dropped), prompt and head still fp32;
  the adapter's tensors saved fp32 and loaded onto the device (safetensors) unchanged; bf16 against
  fp32 logits; peak memory; steps/s in bf16 and fp32, and without the step's ``loss.item()`` (its cost);
- ``determinism_<family>``: the same seed twice (prefix dropout on, as trained), then with torch's
  deterministic algorithms: the largest difference of the trained prompt;
- ``out_of_memory``: an allocation larger than the GPU ends as ptv2's ``OutOfMemory`` line, and the
  memory is given back.
Exit status 0 when every check passed, 1 otherwise; the JSON is written either way.
"""
from __future__ import annotations

import os

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before CUDA starts: deterministic cuBLAS

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

from bench._args import write_file  # noqa: E402 (stdlib only: runs where torch, transformers, safetensors are)
from ptv2_core.backbone import geometry  # noqa: E402
from ptv2_core.device import pick_device  # noqa: E402
from ptv2_core.heads import HeadConfig  # noqa: E402
from ptv2_core.memory import OutOfMemory, fits  # noqa: E402
from ptv2_core.model import PromptModel  # noqa: E402
from ptv2_core.optim import make_optimizer, optimizer_step  # noqa: E402
from ptv2_core.prefix import PromptConfig  # noqa: E402

FAMILIES = {
    "bert": dict(model_type="bert", hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                 vocab_size=1000, max_position_embeddings=160),
    "llama": dict(model_type="llama", hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  intermediate_size=128, vocab_size=1000, max_position_embeddings=160),
}
BATCH, TOKENS, PROMPT, LABELS, DISTINCT = 16, 96, 16, 3, 4


def autocast(device: torch.device, bf16: bool):
    """As ptv2_core.evaluate.autocast (imported from there when its dependencies are installed)."""
    try:
        from ptv2_core.evaluate import autocast as real
    except ImportError:
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16 and device.type == "cuda")
    return real(device, bf16)


def build(family: str, device: torch.device, seed: int) -> PromptModel:
    from transformers import AutoConfig, AutoModel

    kw = dict(FAMILIES[family])
    config = AutoConfig.for_model(kw.pop("model_type"), **kw)
    torch.manual_seed(seed)
    backbone = AutoModel.from_config(config)
    geo = geometry(backbone.config)
    model = PromptModel(backbone, PromptConfig(PROMPT, geo.num_layers, geo.num_kv_heads, geo.head_dim),
                        HeadConfig("sequence", LABELS, geo.hidden_size, "mean"))
    return model.to(device)


def batches(device: torch.device, n: int, seed: int) -> list[dict]:
    """``n`` steps over the same ``DISTINCT`` batches (epochs of a small training set): the loss of the
    last pass is compared with the first's."""
    g = torch.Generator().manual_seed(seed)  # made on the CPU and moved, as the DataLoader's batches are
    out = []
    for _ in range(DISTINCT):
        ids = torch.randint(5, 1000, (BATCH, TOKENS), generator=g)
        mask = torch.ones_like(ids)
        mask[: BATCH // 2, TOKENS // 2:] = 0  # padded rows too
        labels = ids[:, 1] % LABELS  # learnable from the text
        out.append({k: v.to(device) for k, v in {"input_ids": ids, "attention_mask": mask, "labels": labels}.items()})
    return [out[i % DISTINCT] for i in range(max(n, 2 * DISTINCT))]


def train(model: PromptModel, data: list[dict], device: torch.device, bf16: bool,
          step_sync: bool = True) -> tuple[list[float], float]:
    """Steps as ptv2_core.train.fit runs them (fit itself needs ``datasets``, which this script does
    without): ``loss.item()``, the step's one wait for the GPU, before the update. ``step_sync=False``:
    the same steps with the losses read once at the end, so the two speeds show what that wait costs."""
    cfg = SimpleNamespace(lr=3e-2, weight_decay=0.0, warmup_ratio=0.0)
    params, opt, sched = make_optimizer(model, cfg, len(data))
    model.train()
    losses = []
    sync(device)
    t0 = time.perf_counter()
    for batch in data:
        with autocast(device, bf16):
            loss = model(batch["input_ids"], batch["attention_mask"], batch["labels"]).loss
        losses.append(loss.item() if step_sync else loss.detach())
        optimizer_step(loss, params, opt, sched, 1.0)
    sync(device)
    speed = len(data) / (time.perf_counter() - t0)
    return [x if step_sync else x.item() for x in losses], speed


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_device(device: torch.device) -> dict:
    out = {"picked_cuda": str(pick_device("cuda")) if device.type == "cuda" else None}
    if device.type == "cuda":
        past = f"cuda:{torch.cuda.device_count()}"
        try:
            pick_device(past)
            out["past_last"] = f"{past} was taken"
        except Exception as e:  # noqa: BLE001
            out["past_last"] = str(e)
        out["ok"] = out["picked_cuda"] == "cuda" and "asked for, but this process sees" in out["past_last"]
    else:
        out["ok"] = True
    return out


def check_train(family: str, device: torch.device, bf16: bool, steps: int) -> dict:
    data = batches(device, steps, seed=1)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model = build(family, device, seed=0)
    losses, speed = train(model, data, device, bf16)
    grads = [p.grad for p in model.prefix.parameters() if p.grad is not None]
    dtypes = sorted({str(p.dtype) for p in model.prefix.parameters()} | {str(p.dtype) for p in model.head.parameters()})
    first, last = sum(losses[:DISTINCT]) / DISTINCT, sum(losses[-DISTINCT:]) / DISTINCT
    out = {"loss_first_last_pass": [round(first, 4), round(last, 4)], "steps_per_s": round(speed, 2),
           "prefix_grad_norm": float(sum(g.float().norm() ** 2 for g in grads) ** 0.5) if grads else 0.0,
           "prefix_grad_dtypes": sorted({str(g.dtype) for g in grads}), "trainable_dtypes": dtypes}
    if device.type == "cuda":
        out["peak_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    model.eval()
    with torch.no_grad():
        b = data[0]
        with autocast(device, bf16):
            low = model(b["input_ids"], b["attention_mask"]).logits
        full = model(b["input_ids"], b["attention_mask"]).logits
    out["logits_dtype_autocast"] = str(low.dtype)
    out["logits_max_diff_bf16_vs_fp32"] = float((low.float() - full.float()).abs().max())
    with tempfile.TemporaryDirectory() as tmp:  # as adapter_files saves and load_adapter reads, onto the device
        state = {k: v.detach().float().cpu().contiguous() for k, v in model.trainable_state().items()}
        save_file(state, f"{tmp}/adapter.safetensors")
        back = load_file(f"{tmp}/adapter.safetensors", device=str(device))
    out["saved_dtypes"] = sorted({str(v.dtype) for v in back.values()})
    out["reload_equal"] = all(torch.equal(back[k], v.to(device)) for k, v in model.trainable_state().items())
    if device.type == "cuda":
        out["steps_per_s_fp32"] = round(train(build(family, device, 0), data, device, False)[1], 2)
    # the same steps without the per-step loss.item(): their speed against steps_per_s is that sync's cost
    no_sync_losses, no_sync_speed = train(build(family, device, 0), data, device, bf16, step_sync=False)
    out["steps_per_s_no_step_sync"] = round(no_sync_speed, 2)
    out["no_step_sync_same_losses"] = no_sync_losses == losses
    finite = all(torch.isfinite(torch.tensor(losses)))
    out["ok"] = bool(finite and last < first and out["prefix_grad_norm"] > 0
                     and out["prefix_grad_dtypes"] == ["torch.float32"] and dtypes == ["torch.float32"]
                     and out["saved_dtypes"] == ["torch.float32"] and out["reload_equal"])
    return out


def check_determinism(family: str, device: torch.device, bf16: bool, steps: int) -> dict:
    def run() -> torch.Tensor:
        torch.manual_seed(0)  # also seeds every CUDA device's generator (dropout)
        model = build(family, device, seed=0)
        train(model, batches(device, steps, seed=1), device, bf16)
        return torch.cat([p.detach().float().flatten() for p in model.prefix.parameters()])

    a, b = run(), run()
    out = {"max_diff_same_seed": float((a - b).abs().max())}
    try:
        torch.use_deterministic_algorithms(True)
        c, d = run(), run()
        out["max_diff_deterministic_algorithms"] = float((c - d).abs().max())
    except Exception as e:  # noqa: BLE001 (an op without a deterministic version is itself a finding)
        out["deterministic_algorithms_error"] = f"{type(e).__name__}: {e}"[:500]
    finally:
        torch.use_deterministic_algorithms(False)
    out["ok"] = True  # recorded, not required: docs/reproducibility.md promises no bit-equality on a GPU
    return out


def check_out_of_memory(device: torch.device) -> dict:
    if device.type != "cuda":
        return {"ok": True, "skipped": "not a GPU"}
    before = torch.cuda.memory_allocated(device)
    total = torch.cuda.get_device_properties(device).total_memory
    out = {}
    try:
        with fits(device, "allocating twice the GPU's memory", "try a smaller --batch-size"):
            torch.empty(total * 2, dtype=torch.uint8, device=device)
        out["message"] = "no error"
    except OutOfMemory as e:
        out["message"] = str(e)
    out["allocated_after_mib"] = round((torch.cuda.memory_allocated(device) - before) / 2**20, 1)
    out["ok"] = out["message"].startswith(f"out of memory on {device} while allocating") and out[
        "allocated_after_mib"] == 0
    return out


def environment(device: torch.device) -> dict:
    env = {"torch": torch.__version__, "torch_cuda": torch.version.cuda, "transformers": transformers.__version__,
           "device": str(device), "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        env |= {"gpu": p.name, "capability": f"{p.major}.{p.minor}", "memory_gib": round(p.total_memory / 2**30, 1),
                "gpus": torch.cuda.device_count(), "bf16_native": torch.cuda.is_bf16_supported(including_emulation=False),
                "bf16_emulated_ok": torch.cuda.is_bf16_supported()}
    return env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=40)
    default_out = Path(os.environ["OUT"]) / "gpu_check.json" if os.environ.get("OUT") else \
        Path(__file__).parent / "results" / "gpu_check.json"
    ap.add_argument("--out", type=Path, default=default_out)
    args = ap.parse_args(argv)
    device = pick_device(args.device)
    bf16 = device.type == "cuda"
    doc: dict = {"environment": environment(device), "bf16": bf16, "checks": {}}
    checks = {"device": lambda: check_device(device)}
    for family in FAMILIES:
        checks[f"train_{family}"] = lambda f=family: check_train(f, device, bf16, args.steps)
        checks[f"determinism_{family}"] = lambda f=family: check_determinism(f, device, bf16, min(args.steps, 10))
    checks["out_of_memory"] = lambda: check_out_of_memory(device)
    for name, check in checks.items():
        t0 = time.perf_counter()
        try:
            doc["checks"][name] = check()
        except Exception as e:  # noqa: BLE001 (recorded; the other checks still run)
            doc["checks"][name] = {"ok": False, "error": f"{type(e).__name__}: {e}"[:1000],
                                   "traceback": traceback.format_exc()[-3000:]}
        doc["checks"][name]["seconds"] = round(time.perf_counter() - t0, 2)
    doc["ok"] = all(c["ok"] for c in doc["checks"].values())
    write_file(args.out, json.dumps(doc, indent=2) + "\n")  # whole or absent
    print(json.dumps({"ok": doc["ok"], "out": str(args.out),
                      "failed": [k for k, c in doc["checks"].items() if not c["ok"]]}))
    return 0 if doc["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
