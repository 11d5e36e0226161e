"""Inference in batches of similar length against batches in the texts' own order.

Not a test. Scoring a split (each epoch's dev score, the test score, a promotion's paired
bootstrap) and ``ptv2 predict`` visit rows shortest first and put the results back in order
(``ptv2_core/batching.py``), so that a batch pads to little more than its own rows. This measures
what that saves on each packaged task's real dev and test texts (their own length mix), with the
bundled MiniLM and a deep prompt of length 16 (its values do not change the cost):

- ``given order``: ``predict`` called on consecutive chunks of ``--batch-size`` texts, which pads
  each batch exactly as batching in the given order did;
- ``shortest first``: ``predict`` on all texts at once.

The two alternate, one timed pass each per repeat (``--repeats``), so both see the same background
load; the speed-up is taken per repeat (paired), then averaged. Both must give every text the
same label (tags for NER), checked on every pass: where they do not, the run stops with one
``error:`` line naming the task and the texts, exit 1 (a failed check of the batching code, not
bad input, which exits 2), and writes nothing.

    .venv/bin/python bench/inference_batching.py [--tasks trec rt wnut16] [--repeats 3] [--threads 1]

writes ``inference_batching.json``, ``inference_batching.md`` and ``inference_batching.png`` into ``--out``
(default ``bench/results``); ``--replot`` draws the picture again from the JSON there.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from ptv2_core.adapter import LoadedAdapter  # noqa: E402
from ptv2_core.backbone import load_backbone  # noqa: E402
from ptv2_core.build import build_model  # noqa: E402
from ptv2_core.predict import predict  # noqa: E402
from ptv2_core.tasks import load_task  # noqa: E402
from ptv2_core.tasks.encode import prepare_tokenizer  # noqa: E402

from bench._args import Parser, check_out, check_tasks, figure_bytes, natural, positive, write_files  # noqa: E402
from bench._plots import grouped_bars, replot  # noqa: E402

OUT = ROOT / "bench" / "results"


def texts_of(task: str) -> tuple[object, list[str]]:
    spec, data = load_task(task, seed=0)
    rows = [r for split in ("dev", "test") for r in data[split]]
    if spec.type == "sequence":
        return spec, [r["text"] for r in rows]
    return spec, [" ".join(r["tokens"]) for r in rows]


def answers(rows: list[dict]) -> list:
    return [r["label"] if "label" in r else r["tags"] for r in rows]


def check_same(task: str, given: list[dict], shortest_first: list[dict]) -> None:
    """Both orders gave every text the same answer, or the run stops: one ``error:`` line, exit 1 (the
    batching code is wrong; nothing is written)."""
    a, b = answers(given), answers(shortest_first)
    differ = [i for i, (x, y) in enumerate(zip(a, b)) if x != y] + list(range(min(len(a), len(b)), max(len(a), len(b))))
    if differ:
        print(f"error: {task}: batching shortest first changed the answers of {len(differ)} of {max(len(a), len(b))} "
              f"texts (first: text {differ[0]}); ptv2_core/batching.py must give each text the answer of the given "
              "order", file=sys.stderr, flush=True)
        sys.exit(1)


def given_order(loaded: LoadedAdapter, texts: list[str], batch_size: int) -> list[dict]:
    out: list[dict] = []
    for start in range(0, len(texts), batch_size):
        out += predict(loaded, texts[start:start + batch_size], batch_size=batch_size)
    return out


def timed(fn) -> tuple[float, list[dict]]:
    start = time.perf_counter()
    rows = fn()
    return time.perf_counter() - start, rows


def run(tasks: list[str], repeats: int, batch_size: int, prompt_len: int) -> list[dict]:
    backbone, tokenizer = load_backbone("minilm")
    tokenizer = prepare_tokenizer(tokenizer)
    results = []
    for task in tasks:
        spec, texts = texts_of(task)
        torch.manual_seed(0)
        model = build_model(backbone, spec, prompt_len, max_length=spec.max_length).eval()
        loaded = LoadedAdapter(model, tokenizer, spec, {})
        words = [len(t.split()) for t in texts]
        samples = {"given": [], "sorted": []}
        for r in range(repeats):
            t_given, rows_given = timed(lambda: given_order(loaded, texts, batch_size))
            t_sorted, rows_sorted = timed(lambda: predict(loaded, texts, batch_size=batch_size))
            check_same(task, rows_given, rows_sorted)
            samples["given"].append(t_given)
            samples["sorted"].append(t_sorted)
            print(f"{task} pass {r + 1}: given order {t_given:.1f} s, shortest first {t_sorted:.1f} s", flush=True)
        ratios = [g / s for g, s in zip(samples["given"], samples["sorted"])]
        results.append({
            "task": task, "texts": len(texts), "words_median": statistics.median(words), "words_max": max(words),
            "given_s": samples["given"], "sorted_s": samples["sorted"],
            "speedup_mean": statistics.mean(ratios), "speedup_sd": statistics.stdev(ratios) if len(ratios) > 1 else 0.0,
            "same_answers": True,
        })
    return results


def table(results: list[dict], meta: dict) -> str:
    lines = [f"Inference batching, MiniLM on {meta['device']} ({meta['threads']} thread(s)), batch {meta['batch_size']}, "
             f"prompt length {meta['prompt_len']}, {meta['repeats']} paired passes; {meta['when']}", "",
             "| task | texts (dev + test) | words: median / max | given order, s | shortest first, s | speed-up | same answers |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        g, s = r["given_s"], r["sorted_s"]
        lines.append(f"| {r['task']} | {r['texts']} | {r['words_median']:g} / {r['words_max']} | "
                     f"{statistics.mean(g):.1f} ± {statistics.pstdev(g):.1f} | {statistics.mean(s):.1f} ± {statistics.pstdev(s):.1f} | "
                     f"{r['speedup_mean']:.2f}x ± {r['speedup_sd']:.2f} | {'yes' if r['same_answers'] else 'no'} |")
    return "\n".join(lines) + "\n"


def figure(doc: dict):
    """The picture beside the table: per task, seconds per pass in the given order and shortest first
    (mean ± sd over the passes), with the paired speed-up under the task."""
    meta, results = doc["meta"], doc["results"]
    return grouped_bars(
        [f"{r['task']}, {r['texts']} texts\n{r['speedup_mean']:.2f}x faster" for r in results],
        {"given order": [statistics.mean(r["given_s"]) for r in results],
         "shortest first": [statistics.mean(r["sorted_s"]) for r in results]},
        errors={"given order": [statistics.pstdev(r["given_s"]) for r in results],
                "shortest first": [statistics.pstdev(r["sorted_s"]) for r in results]},
        ylabel="seconds per pass (dev + test)",
        title=f"Inference batching, MiniLM on {meta['device']} ({meta['threads']} thread(s)), batch "
              f"{meta['batch_size']}: mean ± sd over {meta['repeats']} paired passes")


def main(argv: list[str] | None = None) -> None:
    ap = Parser(__doc__.split("\n\n")[0] + " CPU only (the bundled MiniLM).",
                writes="OUT/inference_batching.json (every pass's seconds, the machine), OUT/inference_batching.md and "
                       "OUT/inference_batching.png; --replot: only the picture, from OUT/inference_batching.json. "
                       "Exit 1, writing nothing, when the two orders answer a text differently.",
                takes="about 3 minutes with the default 3 tasks and 3 repeats on 2 CPU cores (a repeat of all "
                      "three about 55 s); --tasks trec --repeats 1: under a minute, imports included; --replot: seconds.")
    ap.add_argument("--tasks", nargs="+", default=["trec", "rt", "wnut16"], help="default: trec rt wnut16")
    ap.add_argument("--repeats", type=positive, default=3, help="paired passes per task (default 3)")
    ap.add_argument("--batch-size", type=positive, default=64)
    ap.add_argument("--prompt-len", type=positive, default=16)
    ap.add_argument("--threads", type=natural, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--out", type=Path, default=OUT, help="folder for the JSON, the table and the plot (default: bench/results)")
    ap.add_argument("--replot", action="store_true", help="time nothing: draw OUT/inference_batching.png again from its JSON")
    args = ap.parse_args(argv)
    check_tasks(args.tasks)
    check_out(args.out)
    if args.replot:
        return replot(args.out, "inference_batching", figure)
    if args.threads:
        torch.set_num_threads(args.threads)
    meta = {"device": "cpu", "threads": torch.get_num_threads(), "batch_size": args.batch_size,
            "prompt_len": args.prompt_len, "repeats": args.repeats, "machine": platform.machine(),
            "cpus": os.cpu_count(), "torch": torch.__version__, "when": time.strftime("%Y-%m-%d")}
    results = run(args.tasks, args.repeats, args.batch_size, args.prompt_len)
    md = table(results, meta)
    doc = {"meta": meta, "results": results}
    write_files(args.out, {"inference_batching.json": json.dumps(doc, indent=2) + "\n", "inference_batching.md": md,
                           "inference_batching.png": figure_bytes(figure(doc))})
    print(md)


if __name__ == "__main__":
    main()
