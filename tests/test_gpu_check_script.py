"""bench/gpu_check.py is what the first session with a GPU runs, in one call (docs/gpu.md): it must
not break unseen. Here it runs on the CPU (bf16 off, the GPU-only checks skipped) and writes its
JSON: every check ran without an error, and the prompt, its gradient and the saved adapter stay fp32."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_the_gpu_check_runs_on_cpu_and_writes_its_json(tmp_path, one_torch_thread):
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    gpu_check.BATCH, gpu_check.TOKENS = 4, 24  # small batches: seconds on a CPU
    out = tmp_path / "gpu_check.json"
    gpu_check.main(["--device", "cpu", "--steps", "4", "--out", str(out)])
    doc = json.loads(out.read_text())
    assert doc["environment"]["device"] == "cpu" and doc["bf16"] is False
    assert sorted(doc["checks"]) == ["determinism_bert", "determinism_llama", "device", "out_of_memory",
                                     "train_bert", "train_llama"]
    assert [k for k, c in doc["checks"].items() if "error" in c] == [], doc
    for family in ("bert", "llama"):
        train = doc["checks"][f"train_{family}"]
        assert train["prefix_grad_norm"] > 0 and train["reload_equal"] is True
        assert train["trainable_dtypes"] == train["prefix_grad_dtypes"] == train["saved_dtypes"] == ["torch.float32"]
        assert doc["checks"][f"determinism_{family}"]["max_diff_same_seed"] == 0.0  # one CPU thread: bit-equal
        # the steps as fit() runs them (loss.item() before the update), and again without that sync: its cost
        assert train["steps_per_s_no_step_sync"] > 0 and train["no_step_sync_same_losses"] is True
