"""Benchmark: does a multi-task pre-trained prompt speed up per-task training? (not a timed test)

For each task and prompt length, per-task training runs three times from three starting points:

- ``random``: a fresh prompt and head (P-Tuning v2 as is);
- ``pretrained``: the first L positions of a prompt pre-trained on all tasks, and the task's head;
- ``held_out``: the first L positions of a prompt pre-trained on all *other* tasks (leave-one-out:
  does the gain transfer to a task the prompt never saw?), with a fresh head.

It records the dev score after every epoch, and summarises per (task, length): the best score
of random initialisation, the epochs each start needs to reach it, and the final (best-epoch)
scores. Target: pre-trained initialisation reaches random's best in at most half the epochs,
with a final score no worse beyond noise. Writes ``<out>/multitask.json``, ``multitask.md`` and
``multitask.png``. On CPU with the packaged MiniLM:

    .venv/bin/python bench/multitask.py --tasks trec,rt,wnut16,bbc --lengths 4,16,64 --epochs 10

The defaults are a small budget that finishes in minutes on 2 cores; scale ``--max-train``,
``--epochs`` and ``--pretrain-epochs`` up for conclusive numbers.

One run is one seed, and the seed sets the data splits (dev rows), the pre-training and the
per-task initialisation alike. Runs with other ``--seed`` values (own ``--work`` and ``--out``)
are combined into one report of mean curves, the target judged on the means (with the noise of
a mean over the seeds' dev sets), per seed, and paired (each seed's starts against its own random
curve, with a 95 % interval over the seeds). The report holds the tasks and starts that every
combined run has, so seeds run with ``--no-held-out`` combine with full ones into a report
without the held-out column:

    .venv/bin/python bench/multitask.py --combine s0/multitask.json s1/multitask.json s2/multitask.json

The random start does not depend on the pre-training, so a run that changes only pre-training
settings can take its random runs from an earlier report of the same seeds and per-task settings
(``--random-from bench/results/multitask.json``) and train only the pre-trained starts.

Each per-task run's result is kept in ``--work`` as it finishes, so a bench run that was stopped
resumes where it stopped when started again with the same settings (pre-trainings resume from
their checkpoints).

``--no-nested`` pre-trains with every step at the full length (plain pre-training); with
``--random-from`` it trains only the pre-trained starts, and ``bench/nesting.py`` pairs such a
report with a nested one of the same seeds.

A task too slow to run beside the others can be benched on its own, still pre-trained together
with all of them: ``--tasks trec,rt,wnut16,bbc --only bbc`` pre-trains on the four tasks and on
the three without bbc, and trains per task only bbc.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from ptv2_core.multitask import PretrainConfig, init_from_pretrained, pretrain, read_pretrained_config  # noqa: E402
from ptv2_core.train import TrainConfig, train  # noqa: E402

from bench._args import (Parser, above_zero, check_device, check_out, check_tasks, fail, figure_bytes,  # noqa: E402
                         lengths, natural, positive, write_file, write_files)

STARTS = ("random", "pretrained", "held_out")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = Parser(__doc__.split("\n")[0],
               writes="OUT/multitask.json (every run's dev curve, the settings), OUT/multitask.md (the table) and "
                      "OUT/multitask.png (the curves); per-task runs and pre-trained prompts are kept in --work.",
               takes="the defaults (4 tasks, bbc the slowest): of the order of an hour on 2 CPU cores (not timed at "
                     "exactly these; the recorded 3-task runs took 40-60 min a seed). A tiny run, "
                     "--tasks trec,rt --only trec --lengths 4 --epochs 1 --pretrain-epochs 1 --max-train 16 "
                     "--max-eval 16 --no-held-out: about a minute.")
    p.add_argument("--tasks", default="trec,rt,wnut16,bbc", help="comma-separated (default trec,rt,wnut16,bbc)")
    p.add_argument("--only", default=None, metavar="TASKS",
                   help="per-task runs (and leave-one-out pre-trainings) for these of --tasks only; the all-task "
                        "pre-training still uses every one of --tasks. Default: all of --tasks")
    p.add_argument("--lengths", type=lengths, default="4,16", help="prompt lengths of the per-task runs")
    p.add_argument("--max-prompt-len", type=positive, default=None,
                   help="default: the longest of --lengths; a longer one is pre-trained as a length of its own")
    p.add_argument("--model", default="minilm")
    p.add_argument("--epochs", type=positive, default=4, help="per-task training epochs")
    p.add_argument("--pretrain-epochs", type=positive, default=3)
    p.add_argument("--lr", type=above_zero, default=1e-2)
    p.add_argument("--pretrain-lr", type=above_zero, default=1e-2)
    p.add_argument("--batch-size", type=positive, default=16)
    p.add_argument("--max-train", type=natural, default=128, help="training rows per task (pre-training and per-task); 0: all")
    p.add_argument("--max-eval", type=natural, default=128, help="dev and test rows per task; 0: all")
    p.add_argument("--seed", type=natural, default=0)
    p.add_argument("--no-held-out", action="store_true", help="skip the leave-one-out pre-trainings")
    p.add_argument("--no-nested", action="store_true",
                   help="pre-train with every step at the full length (ptv2 pretrain --no-nested), for comparison")
    p.add_argument("--random-from", type=Path, default=None, metavar="JSON",
                   help="take the random-start runs from this report (one seed's or a --combine of several) instead "
                        "of training them again; its per-task settings and this --seed must match")
    p.add_argument("--threads", type=positive, default=1, help="torch threads (on a shared CPU, 1 wastes least)")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results",
                   help="folder for the JSON, table and plot (default: bench/results)")
    p.add_argument("--combine", type=Path, nargs="+", default=None, metavar="JSON",
                   help="combine the reports of runs with other seeds (same settings) into --out; trains nothing")
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ptv2-bench-multitask",
                   help="folder for the pre-trained prompts (reused when finished, resumed when stopped)")
    args = p.parse_args(argv)
    check_out(args.out)
    check_out(args.work, "--work")
    if args.combine:
        return args
    tasks = check_tasks([t.strip() for t in args.tasks.split(",") if t.strip()])
    if args.max_prompt_len is not None and args.max_prompt_len < max(int(x) for x in args.lengths.split(",")):
        fail(f"--max-prompt-len {args.max_prompt_len} is shorter than the longest of --lengths ({args.lengths})")
    only = tasks if args.only is None else [t.strip() for t in args.only.split(",") if t.strip()]
    if not only or any(t not in tasks for t in only):
        fail(f"--only {args.only!r}: name one or more of --tasks ({','.join(tasks)})")
    check_device(args.device)
    return args


def pretrained_prompt(args, tasks: list[str], lengths: list[int], work: Path) -> tuple[Path, float]:
    """Pre-train on ``tasks`` (or reuse a finished run with the same settings). Returns (folder, seconds)."""
    lengths = sorted(set(lengths) | {args.max_prompt_len})  # the longest must be it: none trains past it
    cfg = PretrainConfig(tasks=tuple(tasks), model=args.model, max_prompt_len=args.max_prompt_len, lengths=tuple(lengths),
                         nested=not args.no_nested, lr=args.pretrain_lr, epochs=args.pretrain_epochs,
                         batch_size=args.batch_size,
                         max_train=args.max_train or None, max_eval=args.max_eval or None, seed=args.seed,
                         device=args.device, progress=False)
    out = work / ("pre-" + "+".join(tasks))
    if (out / "prompt_config.json").exists():
        done = read_pretrained_config(out)["pretrain_config"]
        if PretrainConfig.from_dict(done).run_key() == cfg.run_key():
            return out, 0.0
        fail(f"--work: {out} holds a pre-training with other settings: remove it or pick another --work")
    t0 = time.perf_counter()
    pretrain(cfg, out)  # resumes from out/checkpoints if an earlier bench run was stopped
    return out, time.perf_counter() - t0


def run_one(args, task: str, length: int, init_dir: Path | None, with_head: bool,
            train_seed: int | None = None) -> dict:
    """One per-task run. ``train_seed`` trains with another seed (initialisation, batch order) on
    the split and dev rows of ``args.seed`` (bench/multitask_null.py)."""
    seeds = {"seed": args.seed} if train_seed is None else {"seed": train_seed, "data_seed": args.seed}
    cfg = TrainConfig(task=task, model=args.model, prompt_len=length, lr=args.lr, epochs=args.epochs,
                      batch_size=args.batch_size, max_train=args.max_train or None, max_eval=args.max_eval or None,
                      device=args.device, progress=False, **seeds)
    init = None
    if init_dir is not None:
        init = partial(init_from_pretrained, pretrained_dir=init_dir, task=task if with_head else None, seed=args.seed)
    t0 = time.perf_counter()
    result = train(cfg, init=init)
    return {
        "dev_by_epoch": [h["dev_score"] for h in result.history],
        "best_dev": result.dev["score"],
        "best_epoch": result.best_epoch,
        "test": result.test["score"],
        "seconds": time.perf_counter() - t0,
        "metric": result.spec.metric,
        "dev_rows": dev_rows(task, args),
    }


# options added after reports were recorded: in a report only when set, so that the recorded
# reports and kept runs (which do not have them) still match a run at their default
LATER_FLAGS = ("no_nested",)


def settings_of(args) -> dict:
    """The command line's settings as JSON values (paths as strings)."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
            if not (k in LATER_FLAGS and not v)}


# settings that do not change a per-task run's result. The thread count stays in the key: a sum
# split over more threads may round differently (a 1-epoch trec check gave identical losses with
# 1 and 2 threads, which does not rule it out for larger matrices)
RUN_NEUTRAL = ("only", "out", "work", "combine", "random_from")


def kept_run(args, work: Path, task: str, length: int, start: str, train_it) -> tuple[dict, bool]:
    """A per-task run's result, kept in ``work/runs`` as it finishes: a bench run stopped part-way
    and started again with the same settings trains only what it had not finished. Returns
    (result, True when it was kept from an earlier run)."""
    def run_key(settings: dict) -> dict:  # both sides filtered: a name added to RUN_NEUTRAL later keeps kept runs
        return {k: v for k, v in settings.items() if k not in RUN_NEUTRAL}

    key = run_key(settings_of(args))
    path = work / "runs" / f"{task}-L{length}-{start}.json"
    if path.exists():
        doc = json.loads(path.read_text())
        if run_key(doc.get("settings") or {}) == key:
            return doc["result"], True
    result = train_it()
    write_file(path, json.dumps({"settings": key, "result": result}, indent=2) + "\n")  # whole or absent
    return result, False


# the settings a random-start run depends on (pre-training settings do not reach it)
RANDOM_KEYS = ("model", "epochs", "lr", "batch_size", "max_train", "max_eval", "device")


def reused_random_runs(args, tasks: list[str], lengths: list[int]) -> dict:
    """The random-start runs of ``--random-from`` for this seed, checked against this run's settings."""
    try:
        doc = json.loads(args.random_from.read_text())
        reports = doc.get("per_seed") or [doc]
        mine = [d for d in reports if d["meta"]["settings"]["seed"] == args.seed]
    except (OSError, ValueError, KeyError, TypeError) as e:
        fail(f"--random-from: not a readable multitask report: {e}")
    if not mine:
        fail(f"--random-from {args.random_from} has no run with seed {args.seed}")
    theirs = mine[0]["meta"]["settings"]
    differ = [k for k in RANDOM_KEYS if theirs.get(k) != getattr(args, k)]
    if differ:
        fail(f"--random-from {args.random_from} was run with other {', '.join(differ)}")
    try:
        return {t: {str(n): mine[0]["runs"][t][str(n)]["random"] for n in lengths} for t in tasks}
    except KeyError as e:
        fail(f"--random-from {args.random_from} has no random run for {e}")


def dev_rows(task: str, args) -> int:
    from ptv2_core.tasks import load_task

    return len(load_task(task, seed=args.seed, max_train=1, max_eval=args.max_eval or None)[1]["dev"])


def epochs_to_reach(curve: list[float], target: float) -> int | None:
    """First epoch (1-based) whose dev score is at least ``target``; None if never."""
    return next((i + 1 for i, s in enumerate(curve) if s >= target - 1e-12), None)


def summarise(runs: dict) -> list[dict]:
    rows = []
    for task, by_len in runs.items():
        for length, by_start in by_len.items():
            rnd = by_start["random"]
            target = max(rnd["dev_by_epoch"])
            # 2 standard errors of a proportion on the dev rows: a rough noise level (span F1 is noisier)
            noise = 2 * math.sqrt(max(target * (1 - target), 1e-4) / rnd["dev_rows"])
            row = {"task": task, "length": int(length), "metric": rnd["metric"], "random_best": target,
                   "random_epochs": epochs_to_reach(rnd["dev_by_epoch"], target), "noise": noise}
            for start in STARTS[1:]:
                if start not in by_start:
                    continue
                r = by_start[start]
                reach = epochs_to_reach(r["dev_by_epoch"], target)
                # at most half of random's epochs, at epoch granularity (1 epoch when random needed 1)
                half = max(1, row["random_epochs"] // 2)
                row[f"{start}_epochs"] = reach
                row[f"{start}_best"] = r["best_dev"]
                row[f"{start}_half_epochs"] = reach is not None and reach <= half
                # how far short of random's best it is by then (negative: short): the size of a miss
                row[f"{start}_gap_at_half"] = max(r["dev_by_epoch"][:half]) - target
                row[f"{start}_not_worse"] = r["best_dev"] >= target - noise
            rows.append(row)
    return rows


def markdown(summary: list[dict], meta: dict) -> str:
    head = ("| task | L | metric | random best (epoch) | pre-trained: epochs to reach, best | "
            "pre-trained at half: gap | held-out: epochs to reach, best | noise (2 SE) |\n"
            "|---|---|---|---|---|---|---|---|\n")

    def cell(r, start):
        if f"{start}_best" not in r:
            return "–"
        reach = r[f"{start}_epochs"]
        mark = " ✓" if r[f"{start}_half_epochs"] and r[f"{start}_not_worse"] else ""
        return f"{reach if reach is not None else 'never'}, {r[f'{start}_best']:.3f}{mark}"

    def gap(r, start):
        return f"{r[f'{start}_gap_at_half']:+.3f}" if f"{start}_gap_at_half" in r else "–"

    lines = [f"| {r['task']} | {r['length']} | {r['metric']} | {r['random_best']:.3f} ({r['random_epochs']}) | "
             f"{cell(r, 'pretrained')} | {gap(r, 'pretrained')} | {cell(r, 'held_out')} | {r['noise']:.3f} |"
             for r in summary]
    budget = ", ".join(f"{k} {v}" for k, v in meta["settings"].items() if k not in ("out", "work"))
    return (f"# Multi-task pre-trained prompt vs random initialisation\n\n{budget}\n\n" + head + "\n".join(lines) +
            "\n\n✓: reaches random's best dev score in at most half its epochs, and its best is no worse than "
            "random's beyond noise. Gap: its best dev score within that half, minus random's best.\n")


def plot(runs: dict, per_seed: list[dict] | None = None) -> bytes:
    """The dev curves, one panel per task and length, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(runs)
    lengths = sorted({int(n) for t in runs.values() for n in t})
    fig, axes = plt.subplots(len(tasks), len(lengths), figsize=(3.2 * len(lengths), 2.6 * len(tasks)), squeeze=False)
    for i, task in enumerate(tasks):
        for j, n in enumerate(lengths):
            ax = axes[i][j]
            for start, style in zip(STARTS, ("-", "--", ":")):
                r = runs[task].get(str(n), {}).get(start)
                if not r:
                    continue
                line, = ax.plot(range(1, len(r["dev_by_epoch"]) + 1), r["dev_by_epoch"], style, marker="o", ms=3,
                                label=start + (" (mean)" if per_seed else ""))
                for seed_runs in per_seed or []:  # each seed's curve, faint, in its start's colour
                    c = seed_runs[task][str(n)][start]["dev_by_epoch"]
                    ax.plot(range(1, len(c) + 1), c, style, color=line.get_color(), alpha=0.25, linewidth=0.8)
            ax.set_title(f"{task}, L={n}", fontsize=9)
            ax.set_xlabel("epoch", fontsize=8)
            ax.set_ylabel("dev score", fontsize=8)
            ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return figure_bytes(fig, dpi=110)


PAIRED = {"gap_at_half": "gap at half", "best_diff": "best minus random's", "epoch1_diff": "epoch 1 minus random's"}


def paired_interval(values: list[float]) -> dict:
    """Mean of per-seed differences and its 95 % t-interval (None under three seeds: with two, the interval
    is either too wide to read, t = 12.7, or of zero width where the two seeds happen to agree)."""
    from scipy import stats

    mean = statistics.fmean(values)
    if len(values) < 3:
        return {"mean": mean, "ci95": None, "n": len(values)}
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return {"mean": mean, "ci95": [mean - half, mean + half], "n": len(values)}


def per_seed_rows(seed_runs: list[dict]) -> dict:
    """Each seed's own summary rows, by (task, length), in the seeds' order."""
    own: dict = {}
    for runs in seed_runs:
        for r in summarise(runs):
            own.setdefault((r["task"], r["length"]), []).append(r)
    return own


def add_paired(summary: list[dict], seed_runs: list[dict], own: dict) -> None:
    """Each seed's start against its own random curve (same dev rows, same splits), summed up over seeds.

    The target's "noise" column treats the seeds' dev sets as one pooled sample; pairing each seed's
    starts removes what the seeds' splits add (one seed's dev rows are easier for every start), so
    the interval says how sure the mean difference is: an interval wholly below 0 is a real shortfall.
    """
    for row in summary:
        rows = own[(row["task"], row["length"])]
        for start in STARTS[1:]:
            if f"{start}_best" not in row:
                continue
            curves = [runs[row["task"]][str(row["length"])] for runs in seed_runs]
            diffs = {"gap_at_half": [r[f"{start}_gap_at_half"] for r in rows],
                     "best_diff": [r[f"{start}_best"] - r["random_best"] for r in rows],
                     "epoch1_diff": [c[start]["dev_by_epoch"][0] - c["random"]["dev_by_epoch"][0] for c in curves]}
            row[f"{start}_paired"] = {k: paired_interval(v) for k, v in diffs.items()}


def paired_cell(p: dict) -> str:
    """A paired_interval in points: mean [95 % interval]."""
    ci = f" [{p['ci95'][0] * 100:+.1f}, {p['ci95'][1] * 100:+.1f}]" if p["ci95"] else ""
    return f"{p['mean'] * 100:+.1f}{ci}"


def paired_markdown(summary: list[dict]) -> list[str]:
    starts = [s for s in STARTS[1:] if any(f"{s}_paired" in r for r in summary)]
    head = " | ".join(f"{s}: {label}" for s in starts for label in PAIRED.values())
    lines = ["", "Paired over seeds: each seed's start against its own random curve (the same dev rows), in "
             "points, mean [95 % t-interval, from three seeds on]; an interval wholly below 0 is a shortfall "
             "beyond the seeds' noise:",
             "", f"| task | L | {head} |", "|---|---|" + "---|" * (len(starts) * len(PAIRED))]
    for r in summary:
        cells = [paired_cell(r[f"{s}_paired"][k]) if f"{s}_paired" in r else "–" for s in starts for k in PAIRED]
        lines.append(f"| {r['task']} | {r['length']} | " + " | ".join(cells) + " |")
    return lines


def combine(paths: list[Path], out: Path) -> None:
    """Mean curves of several seeds' reports; the target judged on the means and per seed."""
    try:
        docs = [json.loads(p.read_text()) for p in paths]
    except (OSError, ValueError) as e:
        fail(f"--combine: not a readable multitask report: {e}")

    def settings(d: dict) -> dict:  # which tasks (--only) and starts (--no-held-out) a report ran do not
        return {k: v for k, v in d["meta"]["settings"].items()  # change a run's numbers
                if k not in ("seed", "no_held_out", *RUN_NEUTRAL)}

    seeds = [d["meta"]["settings"]["seed"] for d in docs]
    if any(settings(d) != settings(docs[0]) for d in docs) or len(set(seeds)) != len(seeds):
        fail(f"--combine needs reports of one set of settings with distinct seeds, got seeds {seeds}")
    tasks = [t for t in docs[0]["runs"] if all(t in d["runs"] for d in docs)]  # the tasks every report has
    if not tasks:
        fail("--combine: the reports have no task in common")
    runs: dict = {}
    for task, by_len in ((t, docs[0]["runs"][t]) for t in tasks):
        for n, by_start in by_len.items():
            for start in (s for s in by_start if all(s in d["runs"][task][n] for d in docs)):  # starts all ran
                seed_runs = [d["runs"][task][n][start] for d in docs]
                mean = [sum(c) / len(c) for c in zip(*(r["dev_by_epoch"] for r in seed_runs))]
                # the seeds' dev sets are different rows: the mean's noise is that of all of them together
                runs.setdefault(task, {}).setdefault(n, {})[start] = {
                    "dev_by_epoch": mean, "best_dev": max(mean), "metric": seed_runs[0]["metric"],
                    "dev_rows": sum(r["dev_rows"] for r in seed_runs)}
    summary = summarise(runs)
    per_seed = per_seed_rows([d["runs"] for d in docs])  # each seed's verdicts, from its own curves
    for row in summary:
        for start in (s for s in STARTS[1:] if f"{s}_best" in row):
            row[f"{start}_seeds_passing"] = sum(bool(r.get(f"{start}_half_epochs") and r.get(f"{start}_not_worse"))
                                                for r in per_seed[(row["task"], row["length"])])
    add_paired(summary, [d["runs"] for d in docs], per_seed)
    meta = {"settings": settings(docs[0]) | {"seeds": seeds}, "tasks_combined": tasks,
            "combined_from": [str(p) for p in paths],
            "total_seconds": sum(d["meta"]["total_seconds"] for d in docs)}
    own = [d | {"runs": {t: d["runs"][t] for t in tasks}, "summary": [r for r in d["summary"] if r["task"] in tasks]}
           for d in docs]  # each seed's own report, of the combined tasks
    doc = {"meta": meta, "summary": summary, "runs": runs, "per_seed": own}
    md = markdown(summary, meta).replace("# Multi-task pre-trained prompt vs random initialisation",
                                         f"# Multi-task pre-trained prompt vs random initialisation: mean of "
                                         f"{len(docs)} seeds")
    lines = ["", "Per seed (the same target, judged on each seed's own curves):", "",
             "| task | L | pre-trained: seeds passing | held-out: seeds passing |", "|---|---|---|---|"]

    def passing(r, start):
        return f"{r[f'{start}_seeds_passing']} of {len(docs)}" if f"{start}_best" in r else "–"

    lines += [f"| {r['task']} | {r['length']} | {passing(r, 'pretrained')} | {passing(r, 'held_out')} |"
              for r in summary]
    lines += paired_markdown(summary)
    write_files(out, {"multitask.json": json.dumps(doc, indent=2) + "\n", "multitask.md": md + "\n".join(lines) + "\n",
                      "multitask.png": plot(runs, per_seed=[d["runs"] for d in docs])})
    print((out / "multitask.md").read_text())


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.combine:
        return combine(args.combine, args.out)
    torch.set_num_threads(args.threads)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    lengths = sorted({int(x) for x in args.lengths.split(",")})
    args.max_prompt_len = args.max_prompt_len or max(lengths)
    only = tasks if args.only is None else [t.strip() for t in args.only.split(",") if t.strip()]
    reused = reused_random_runs(args, only, lengths) if args.random_from else {}
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    prompts: dict[str, Path] = {}
    pretrain_seconds: dict[str, float] = {}
    prompts["all"], pretrain_seconds["all"] = pretrained_prompt(args, tasks, lengths, work)
    if not args.no_held_out and len(tasks) > 1:
        for t in only:
            others = [x for x in tasks if x != t]
            prompts[t], pretrain_seconds[f"without {t}"] = pretrained_prompt(args, others, lengths, work)
    zero_shot = read_pretrained_config(prompts["all"])["dev"]  # dev scores of the pre-trained prompt, untrained

    runs: dict = {}
    for task in only:
        for n in lengths:
            starts = {"random": (None, False), "pretrained": (prompts["all"], True)}
            if task in prompts:
                starts["held_out"] = (prompts[task], False)
            for start, (init_dir, with_head) in starts.items():
                if start == "random" and reused:
                    runs.setdefault(task, {}).setdefault(str(n), {})[start] = reused[task][str(n)]
                    continue
                r, kept = kept_run(args, work, task, n, start, lambda: run_one(args, task, n, init_dir, with_head))
                runs.setdefault(task, {}).setdefault(str(n), {})[start] = r
                print(f"{task} L={n} {start}: dev by epoch {[round(s, 3) for s in r['dev_by_epoch']]} ({r['seconds']:.0f}s"
                      f"{', kept from an earlier run' if kept else ''})", flush=True)

    summary = summarise(runs)
    meta = {"settings": settings_of(args),
            "device": args.device, "torch_threads": args.threads, "pretrain_seconds": pretrain_seconds,
            "total_seconds": time.perf_counter() - t_start}
    doc = {"meta": meta, "summary": summary, "runs": runs, "pretrained_zero_shot_dev": zero_shot}
    write_files(args.out, {"multitask.json": json.dumps(doc, indent=2) + "\n", "multitask.md": markdown(summary, meta),
                           "multitask.png": plot(runs)})
    print((args.out / "multitask.md").read_text())


if __name__ == "__main__":
    main()
