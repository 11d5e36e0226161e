"""What does nested-length pre-training buy? (not a timed test)

``ptv2 pretrain`` draws a prompt length at every step and trains only that leading slice of the
shared prompt, so that every slice is a prompt of its own (``--no-nested``: every step uses the
full length). This script pairs two combined ``bench/multitask.py`` reports of the same seeds and
settings, one pre-trained nested and one with ``--no-nested`` (both with the same random runs),
and reports per task and length, each seed against itself:

- the pre-trained prompt's dev score with no per-task training (its first L positions and the
  task's head), nested against flat;
- per-task training from that slice: the score after epoch 1, the best score, and the target of
  ``bench/multitask.py`` (random's best within half its epochs, no worse beyond noise), per seed.

With ``--nested-prompts`` and ``--flat-prompts`` (the two pre-trained prompt folders of each
seed, in the reports' seed order), it also scores every leading slice of each prompt at more
lengths than the reports ran (``--slice-lengths``; no per-task training, the task's head from
pre-training): does a slice work at a length the nested pre-training never drew? Scores are
kept beside each folder (``<folder>.slices.json``); ``--score-only`` computes them and stops, so
several processes (one per core) can score different folders first.

Writes ``<out>/nesting.json``, ``nesting.md`` and ``nesting.png``:

    .venv/bin/python bench/nesting.py --nested bench/results/seeds13/multitask.json \\
        --flat bench/results/nesting/multitask.json --out bench/results/nesting
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from multitask import RUN_NEUTRAL, paired_cell, paired_interval, per_seed_rows  # noqa: E402

from bench._args import Parser, check_out, fail, figure_bytes, lengths, write_file, write_files  # noqa: E402 (multitask puts the root on the path)

KINDS = ("nested", "flat")
MEASURES = {"zero_shot": "no per-task training", "epoch1": "after epoch 1", "best": "best"}


def parse_args(argv=None) -> argparse.Namespace:
    p = Parser(__doc__.split("\n")[0],
               writes="OUT/nesting.json, OUT/nesting.md and OUT/nesting.png; with --*-prompts, each prompt's slice "
                      "scores are kept beside it in <folder>.slices.json.",
               takes="from two recorded reports alone: seconds (trains nothing); with prompt folders, scoring every "
                     "slice length of every prompt: about a minute per prompt on CPU, once.")
    p.add_argument("--nested", type=Path, help="combined bench/multitask.py report, nested pre-training")
    p.add_argument("--flat", type=Path, help="the same with --no-nested")
    p.add_argument("--out", type=Path, help="report folder")
    p.add_argument("--nested-prompts", type=Path, nargs="+", default=None, metavar="DIR",
                   help="the nested pre-trained prompt folders, one per seed of the reports, in seed order")
    p.add_argument("--flat-prompts", type=Path, nargs="+", default=None, metavar="DIR",
                   help="the --no-nested ones, likewise")
    p.add_argument("--slice-lengths", type=lengths, default="1,2,4,8,12,16,24,32,48,64")
    p.add_argument("--score-only", action="store_true", help="score the prompt folders' slices and stop")
    return p.parse_args(argv)


def slice_scores(folder: Path, lengths: list[int]) -> dict:
    """Dev score of every task at every length for one pre-trained prompt (on the dev rows its
    pre-training scored: its seed's split, its max_eval), kept in ``<folder>.slices.json``."""
    import torch

    from ptv2_core.errors import Ptv2Error
    from ptv2_core.multitask import evaluate_pretrained, read_pretrained_config

    cache = folder.with_name(folder.name + ".slices.json")
    if cache.exists():
        doc = json.loads(cache.read_text())
        if doc["lengths"] == lengths:
            return doc
    torch.set_num_threads(1)
    try:
        cfg = read_pretrained_config(folder)["pretrain_config"]
        got = evaluate_pretrained(folder, lengths, max_eval=cfg["max_eval"])
    except Ptv2Error as e:
        fail(str(e))
    doc = {"lengths": lengths, "max_eval": cfg["max_eval"], "seed": cfg["seed"], "nested": cfg["nested"],
           "scores": {t: {n: m["score"] for n, m in v["dev"].items()} for t, v in got["tasks"].items()}}
    write_file(cache, json.dumps(doc, indent=2) + "\n")  # whole or absent: another process may be reading it
    print(f"{folder}: {json.dumps(doc['scores'])}", flush=True)
    return doc


def slices(args, seeds: list[int], reports: dict) -> dict:
    """Mean and paired (nested minus flat) slice scores over the seeds, per task and length. Each
    folder must be its seed's pre-training in the report: the same scores at the report's lengths."""
    lengths = sorted({int(x) for x in args.slice_lengths.split(",")})
    docs = {}
    for kind, folders in (("nested", args.nested_prompts), ("flat", args.flat_prompts)):
        if not folders or len(folders) != len(seeds):
            fail(f"--{kind}-prompts: {len(folders or [])} folders for the reports' {len(seeds)} seeds {seeds}")
        docs[kind] = [slice_scores(f, lengths) for f in folders]
        for s, d, f in zip(seeds, docs[kind], folders):
            zero_shot = reports[kind][s]["pretrained_zero_shot_dev"]
            same = all(d["scores"][t][n] == m["score"] for t, by_n in zero_shot.items() for n, m in by_n.items()
                       if n in d["scores"].get(t, {}))
            if d["seed"] != s or d["nested"] != (kind == "nested") or not same:
                fail(f"{f} is not seed {s}'s {kind} pre-training of the report (seed {d['seed']}, nested "
                      f"{d['nested']}, same scores at the report's lengths: {same})")
    out = {}
    for task in docs["flat"][0]["scores"]:
        for n in map(str, lengths):
            a = [d["scores"][task][n] for d in docs["nested"]]
            b = [d["scores"][task][n] for d in docs["flat"]]
            out.setdefault(task, {})[n] = {"nested": statistics.fmean(a), "flat": statistics.fmean(b),
                                          "paired": paired_interval([x - y for x, y in zip(a, b)])}
    return out


def by_seed(path: Path) -> dict[int, dict]:
    try:
        doc = json.loads(path.read_text())
        return {d["meta"]["settings"]["seed"]: d for d in doc.get("per_seed") or [doc]}
    except (OSError, ValueError, KeyError, TypeError) as e:
        fail(f"{path}: not a readable multitask report: {e}")


def comparable(a: dict, b: dict) -> list[str]:
    """Settings two seeds' reports differ in, other than the nesting and what does not change a run."""
    skip = {"no_nested", "no_held_out", *RUN_NEUTRAL}
    sa, sb = a["meta"]["settings"], b["meta"]["settings"]
    return sorted(k for k in set(sa) | set(sb) if k not in skip and sa.get(k) != sb.get(k))


def measures(doc: dict, task: str, n: str) -> dict:
    r = doc["runs"][task][n]["pretrained"]
    return {"zero_shot": doc["pretrained_zero_shot_dev"][task][n]["score"], "epoch1": r["dev_by_epoch"][0],
            "best": max(r["dev_by_epoch"])}


def compare(nested: dict[int, dict], flat: dict[int, dict]) -> list[dict]:
    seeds = sorted(set(nested) & set(flat))
    if len(seeds) < 2:
        fail(f"the reports share {len(seeds)} seed(s); pairing needs at least 2")
    for s in seeds:
        differ = comparable(nested[s], flat[s])
        if differ:
            fail(f"seed {s}: the two reports were run with other {', '.join(differ)}")
        if not flat[s]["meta"]["settings"].get("no_nested") or nested[s]["meta"]["settings"].get("no_nested"):
            fail(f"seed {s}: --nested must be a nested pre-training and --flat a --no-nested one")
        for task, by_len in flat[s]["runs"].items():
            for n, by_start in by_len.items():
                if "pretrained" not in nested[s]["runs"].get(task, {}).get(n, {}):
                    fail(f"seed {s}: --nested has no pre-trained run of {task} at L={n}")
                if by_start["random"]["dev_by_epoch"] != nested[s]["runs"][task][n]["random"]["dev_by_epoch"]:
                    fail(f"seed {s} {task} L={n}: the two reports' random runs differ (not the same splits?)")
    verdicts = {k: per_seed_rows([d[s]["runs"] for s in seeds]) for k, d in (("nested", nested), ("flat", flat))}
    rows = []
    for task, by_len in flat[seeds[0]]["runs"].items():
        for n in by_len:
            row = {"task": task, "length": int(n), "seeds": seeds}
            per = {k: [measures(d[s], task, n) for s in seeds] for k, d in (("nested", nested), ("flat", flat))}
            for m in MEASURES:
                for k in KINDS:
                    row[f"{k}_{m}"] = statistics.fmean(x[m] for x in per[k])
                row[f"{m}_paired"] = paired_interval([a[m] - b[m] for a, b in zip(per["nested"], per["flat"])])
            for k in KINDS:  # each seed's verdicts, as bench/multitask.py --combine counts them
                own = verdicts[k][(task, int(n))]
                row[f"{k}_seeds_passing"] = sum(v["pretrained_half_epochs"] and v["pretrained_not_worse"] for v in own)
                row[f"{k}_gap_at_half"] = statistics.fmean(v["pretrained_gap_at_half"] for v in own)
            rows.append(row)
    return rows


def slices_markdown(sl: dict, n: int) -> list[str]:
    lengths = list(next(iter(sl.values())))
    lines = ["", f"Every leading slice with no per-task training (the task's head from pre-training), mean of {n} "
             "seeds, nested / flat, and nested minus flat in points [95 % t-interval]:", "",
             "| task | " + " | ".join(f"L={x}" for x in lengths) + " |", "|---|" + "---|" * len(lengths)]
    for task, by_n in sl.items():
        lines.append(f"| {task} | " + " | ".join(f"{v['nested']:.3f} / {v['flat']:.3f}<br>{paired_cell(v['paired'])}"
                                                for v in by_n.values()) + " |")
    return lines


def markdown(rows: list[dict], sl: dict | None = None) -> str:
    n = len(rows[0]["seeds"])
    lines = [f"# Nested against flat (--no-nested) pre-training: {n} seeds, paired", "",
             "Dev score of the pre-trained start (its first L positions and the task's head), mean over seeds, "
             "nested / flat, and the paired difference nested minus flat in points [95 % t-interval]; "
             "the target of bench/multitask.py per seed (seeds passing) and its mean gap at half.", "",
             "| task | L | " + " | ".join(f"{label}: nested / flat | diff" for label in MEASURES.values())
             + " | seeds passing: nested / flat | gap at half: nested / flat |",
             "|---|---|" + "---|---|" * len(MEASURES) + "---|---|"]
    for r in rows:
        cells = [f"{r[f'nested_{m}']:.3f} / {r[f'flat_{m}']:.3f} | {paired_cell(r[f'{m}_paired'])}" for m in MEASURES]
        lines.append(f"| {r['task']} | {r['length']} | " + " | ".join(cells)
                     + f" | {r['nested_seeds_passing']} / {r['flat_seeds_passing']} of {n}"
                     + f" | {r['nested_gap_at_half'] * 100:+.1f} / {r['flat_gap_at_half'] * 100:+.1f} |")
    if sl:
        lines += slices_markdown(sl, n)
    return "\n".join(lines) + "\n"


def figure(rows: list[dict], nested: dict, flat: dict, sl: dict | None = None):
    """The picture ``main`` writes: a row per task, the zero-shot score by slice length, then per-task
    training curves at each length."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = rows[0]["seeds"]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    lengths = sorted({r["length"] for r in rows})
    fig, axes = plt.subplots(len(tasks), 1 + len(lengths), figsize=(3.2 * (1 + len(lengths)), 2.6 * len(tasks)),
                             squeeze=False)
    styles = {"nested": "-", "flat": "--", "random": ":"}
    for i, task in enumerate(tasks):
        ax = axes[i][0]
        for k, d in (("nested", nested), ("flat", flat)):
            if sl:  # every slice length scored
                xs = [int(n) for n in sl[task]]
                ys = [v[k] for v in sl[task].values()]
            else:
                xs = lengths
                ys = [statistics.fmean(d[s]["pretrained_zero_shot_dev"][task][str(n)]["score"] for s in seeds)
                      for n in lengths]
            ax.plot(xs, ys, styles[k], marker="o", ms=3, label=k)
        ax.set_xscale("log", base=2)
        _plain_length_ticks(ax, xs)
        ax.set_title(f"{task}: no per-task training", fontsize=9)
        ax.set_xlabel("prompt length (leading slice)", fontsize=8)
        for j, n in enumerate(lengths, start=1):
            ax = axes[i][j]
            curves = {"nested": [nested[s]["runs"][task][str(n)]["pretrained"]["dev_by_epoch"] for s in seeds],
                      "flat": [flat[s]["runs"][task][str(n)]["pretrained"]["dev_by_epoch"] for s in seeds],
                      "random": [flat[s]["runs"][task][str(n)]["random"]["dev_by_epoch"] for s in seeds]}
            for k, cs in curves.items():
                mean = [statistics.fmean(c) for c in zip(*cs)]
                ax.plot(range(1, len(mean) + 1), mean, styles[k], marker="o", ms=3, label=k)
            ax.set_title(f"{task}, L={n}: per-task training", fontsize=9)
            ax.set_xlabel("epoch", fontsize=8)
        for ax in axes[i]:
            ax.set_ylabel("dev score", fontsize=8)
            ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    axes[0][1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _plain_length_ticks(ax, lengths: list[int]) -> None:
    """Ticks at the powers of two within the lengths, labelled 1, 2, 4 … (not 2⁰, 2¹, 2²); where
    fewer than two fall within them (3 … 7), at the lengths themselves; none given: no tick."""
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    ticks = [2 ** k for k in range(max(lengths, default=0).bit_length()) if min(lengths) <= 2 ** k <= max(lengths)]
    ax.xaxis.set_major_locator(FixedLocator(ticks if len(ticks) >= 2 else sorted(set(lengths))))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.score_only:
        lengths = sorted({int(x) for x in args.slice_lengths.split(",")})
        for folder in (args.nested_prompts or []) + (args.flat_prompts or []):
            slice_scores(folder, lengths)
        return
    missing = [f"--{k}" for k in ("nested", "flat", "out") if getattr(args, k) is None]
    if missing:
        fail(f"{', '.join(missing)} required (unless --score-only)")
    check_out(args.out)
    nested, flat = by_seed(args.nested), by_seed(args.flat)
    rows = compare(nested, flat)
    seeds = rows[0]["seeds"]
    sl = None
    if args.nested_prompts or args.flat_prompts:
        sl = slices(args, seeds, {"nested": nested, "flat": flat})
    doc = {"meta": {"nested": str(args.nested), "flat": str(args.flat), "seeds": seeds}, "rows": rows, "slices": sl}
    write_files(args.out, {"nesting.json": json.dumps(doc, indent=2) + "\n", "nesting.md": markdown(rows, sl),
                           "nesting.png": figure_bytes(figure(rows, nested, flat, sl), dpi=110)})
    print((args.out / "nesting.md").read_text())


if __name__ == "__main__":
    main()
