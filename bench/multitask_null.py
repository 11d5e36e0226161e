"""How far does the multi-task bench's "gap at half" lean below 0 for a start that trains exactly
like random? (not a timed test)

The target's test compares the best dev score a start reaches within half of random's epochs
with random's best over all of them: the best of at most three noisy epochs against the best of
up to six. So even a second random start, as fast as the first by construction, shows a negative
gap. This script measures that lean: for each chosen (task, length) cell and seed of a combined
``bench/multitask.py`` report, it trains the random start again with another training seed (the
prompt's initialisation and the batch order) on the same data split and dev rows
(``data_seed`` = the report's seed), and pairs it with the recorded random run exactly as the
report pairs the pre-trained start. Writes ``<out>/multitask_null.json`` and ``.md``.

    .venv/bin/python bench/multitask_null.py --report bench/results/seeds13/multitask.json \\
        --cells rt:16 rt:64 --work /tmp/null/work --out bench/results/seeds13

Each run is kept in ``--work`` as it finishes; several processes (one per core, e.g. one per
cell) can share one ``--work`` and ``--out``: a run again reports every cell whose runs are all
there, and trains what is missing.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from multitask import paired_cell, paired_interval, run_one, summarise  # noqa: E402

from bench._args import Parser, check_out, fail, write_file, write_files  # noqa: E402

OFFSET = 1000  # the second random start's training seed: the report's seed + OFFSET


def parse_args(argv=None) -> argparse.Namespace:
    p = Parser(" ".join(__doc__.split("\n\n")[0].split()),
               writes="OUT/multitask_null.json and OUT/multitask_null.md; each second random run is kept in --work "
                      "as it finishes and reused when run again.",
               takes="one per-task training per seed of the report and cell, each as long as the report's random "
                     "run (about 1-2 minutes for trec, 5-10 for rt on one CPU core); --only-report: seconds.")
    p.add_argument("--report", type=Path, required=True, help="a combined bench/multitask.py report (JSON)")
    p.add_argument("--cells", nargs="+", required=True, help="task:length, e.g. rt:16")
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--only-report", action="store_true", help="train nothing; report the cells whose runs are all kept")
    return p.parse_args(argv)


def second_random(settings: dict, task: str, length: int, seed: int) -> dict:
    """The random start of ``bench/multitask.py``'s ``run_one``, trained with seed + OFFSET."""
    r = run_one(argparse.Namespace(**settings), task, length, None, False, train_seed=seed + OFFSET)
    return r | {"train_seed": seed + OFFSET}


def main(argv=None) -> None:
    args = parse_args(argv)
    check_out(args.out)
    check_out(args.work, "--work")
    try:
        report = json.loads(args.report.read_text())
        seeds = [d["meta"]["settings"] for d in report["per_seed"]]
        # every part used below, read here: a missing one is an error line, not a traceback mid-way
        runs, _summary, _seed_runs = report["runs"], report["summary"], [d["runs"] for d in report["per_seed"]]
    except KeyError as e:  # a per-seed report, or another script's: say which part is missing
        fail(f"--report '{args.report}': not a combined multitask report (it has no {e} part)")
    except (OSError, ValueError, TypeError) as e:
        fail(f"--report '{args.report}': not a combined multitask report: {e}")
    cells = []
    for c in args.cells:
        task, _, n = c.partition(":")
        if task not in runs or n not in runs[task]:
            fail(f"--cells {c!r}: the report has no such task:length")
        cells.append((task, int(n)))
    torch.set_num_threads(seeds[0]["threads"])
    out: dict = {"report": str(args.report), "train_seed_offset": OFFSET, "cells": {}}
    for task, n in cells:
        pairs = []
        for settings, doc in zip(seeds, report["per_seed"]):
            seed = settings["seed"]
            path = args.work / f"{task}-L{n}-seed{seed}.json"
            if not path.exists():
                if args.only_report:
                    break
                r = second_random(settings, task, n, seed)
                write_file(path, json.dumps(r) + "\n")  # whole or absent
                print(f"{task} L={n} seed {seed}: {[round(s, 3) for s in r['dev_by_epoch']]} ({r['seconds']:.0f}s)",
                      flush=True)
            again = json.loads(path.read_text())
            recorded = doc["runs"][task][str(n)]
            # the report's own rule, with the second random run in the pre-trained start's place
            row = summarise({task: {str(n): {"random": recorded["random"],
                                             "pretrained": again | {"dev_rows": recorded["random"]["dev_rows"]}}}})[0]
            pairs.append({"seed": seed, "gap_at_half": row["pretrained_gap_at_half"],
                          "best_diff": row["pretrained_best"] - row["random_best"],
                          "epoch1_diff": again["dev_by_epoch"][0] - recorded["random"]["dev_by_epoch"][0],
                          "second_random": again["dev_by_epoch"]})
        if len(pairs) < len(seeds):
            continue
        out["cells"][f"{task}:{n}"] = {"per_seed": pairs, **{k: paired_interval([p[k] for p in pairs])
                                                             for k in ("gap_at_half", "best_diff", "epoch1_diff")},
                                       "pretrained": next(r for r in report["summary"]
                                                          if (r["task"], r["length"]) == (task, n))["pretrained_paired"]}

    lines = ["# The gap at half for a second random start (the lean of the target's test)", "",
             f"Report {args.report}, {len(seeds)} seeds; the second random start trains with seed + {OFFSET} on the "
             "same split and dev rows. Points, mean [95 % t-interval over seeds].", "",
             "| task | L | second random: gap at half | best − random's | epoch 1 − random's "
             "| pre-trained: gap at half | best − random's |", "|---|---|---|---|---|---|---|"]
    for name, c in out["cells"].items():
        task, n = name.split(":")
        lines.append(f"| {task} | {n} | {paired_cell(c['gap_at_half'])} | {paired_cell(c['best_diff'])} "
                     f"| {paired_cell(c['epoch1_diff'])} | {paired_cell(c['pretrained']['gap_at_half'])} "
                     f"| {paired_cell(c['pretrained']['best_diff'])} |")
    write_files(args.out, {"multitask_null.json": json.dumps(out, indent=2) + "\n",
                           "multitask_null.md": "\n".join(lines) + "\n"})
    print("\n".join(lines))


if __name__ == "__main__":
    main()
