"""Pruning replay: how ASHA's grace period and reduction factor change a search's odds of meeting
the search-cost target, replayed on the learning curves a search-cost grid already measured.

Not a test, and no training: it reads ``bench/results/search_cost.json`` (from
``bench/search_cost.py``). For each row (task, start) its grid holds every configuration's dev
score after each epoch. A replay draws ``--trials`` configurations from the grid at random (with
replacement), runs them one after another under Ray Tune's ASHA rule (a trial that reaches a
rung stops when its running-best score is below the (1 - 1/factor) quantile of the scores
recorded at that rung before it), and counts trial-epochs until the best so far is within 0.5
points of the grid's best, as the search-cost bench does. Repeated ``--replays`` times per setting.

What it leaves out: TPE's proposals (after its start-up trials TPE does better than random)
and learning rates between the grid's three. It ranks pruning settings; it does not predict a
search's cost.

    .venv/bin/python bench/pruning_replay.py [--report bench/results/search_cost.json]
        [--settings 1:3 2:3 3:3 1:2 2:2] [--trials N] [--replays 2000]

writes ``bench/results/pruning_replay.json``, ``pruning_replay.md`` and ``pruning_replay.png``; ``--replot``
draws the picture again from the JSON there.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
from pathlib import Path

import numpy as np

from search_cost import POINTS, RESULTS, TARGET, read_report  # the same target as the search-cost bench (bench/ is on the path)

from bench._args import Parser, check_out, fail, figure_bytes, positive, progress, write_files  # search_cost put the root on the path
from bench._plots import grouped_bars, replot


def brackets_of(grace: int, factor: int, brackets: int, epochs: int) -> tuple[list[list[int]], list[float]]:
    """Ray's ASHA brackets: bracket s starts its rungs at grace * factor**s; a new trial joins
    bracket s with probability proportional to e**(its rung count). Rungs at or past the last
    epoch are counted (as Ray counts them) but decide nothing, so they are left out."""
    rungs, sizes = [], []
    for s in range(brackets):
        n = int(np.log(epochs / grace) / np.log(factor) - s + 1)
        milestones = [grace * factor ** (k + s) for k in range(max(n, 0))]
        sizes.append(len(milestones))
        rungs.append([m for m in milestones if m < epochs])
    probs = np.exp(np.array(sizes) - max(sizes))
    return rungs, list(probs / probs.sum())


def run_trial(curve: list[float], rungs: dict[int, list[float]], factor: int,
              on_epoch=None) -> tuple[int, float, bool]:
    """One trial under ASHA's rule: at a rung (a key of ``rungs``), it stops when its running best
    is below the (1 - 1/factor) quantile of the running bests recorded there before it (its own
    is then recorded). Returns (epochs run, running best, stopped early)."""
    running, stop = -math.inf, False
    for epoch, score in enumerate(curve, start=1):
        running = max(running, score)
        if on_epoch is not None:
            on_epoch(epoch, running)
        if epoch in rungs:
            earlier = rungs[epoch]
            stop = bool(earlier) and running < np.percentile(earlier, (1 - 1 / factor) * 100)
            earlier.append(running)
            if stop:
                break
    return epoch, running, stop


def replay(curves: list[list[float]], order: list[int], grace: int, factor: int, target: float,
           brackets: int = 1, rng: random.Random | None = None) -> int | None:
    """Trial-epochs until the best so far reaches ``target`` (None: never) for one trial order."""
    epochs = len(curves[0])
    rungs, probs = brackets_of(grace, factor, brackets, epochs)
    recorded: list[dict[int, list[float]]] = [{m: [] for m in r} for r in rungs]
    spent, best = 0, -math.inf
    for i in order:
        bracket = recorded[rng.choices(range(brackets), probs)[0] if brackets > 1 else 0]
        epoch, running, _ = run_trial(curves[i], bracket, factor)
        spent += epoch
        best = max(best, running)
        if best >= target - 1e-9:
            return spent
    return None


def setting_name(setting: str) -> str:
    """"1:3" -> "grace 1, factor 3" (and ", 2 brackets" for "1:3:2")."""
    parts = setting.split(":")
    return f"grace {parts[0]}, factor {parts[1]}" + (f", {parts[2]} brackets" if len(parts) == 3 else "")


def figure(doc: dict):
    """The picture beside the table: per row, each setting's share of replays meeting the target (filled)
    and reaching 0.5 pt of the grid's best at all (outline)."""
    rows = doc["rows"]
    names = list(rows[0]["settings"])
    return grouped_bars(
        [f"{r['task']}\n{r['start']}" for r in rows],
        {setting_name(n): [100 * r["settings"][n]["p_target"] for r in rows] for n in names},
        outline={setting_name(n): [100 * r["settings"][n]["p_reached"] for r in rows] for n in names},
        ylabel="% of replayed random searches", ylim=(0, 100),
        title=f"Pruning replay ({doc['replays']} replays per bar): filled, within 0.5 pt of the grid's best at "
              "≤ 35 % of its trial-epochs; outline, within 0.5 pt at all")


def main(argv: list[str] | None = None) -> None:
    p = Parser(" ".join(__doc__.split("\n\n")[0].split()),
               writes="OUT/pruning_replay.json, OUT/pruning_replay.md and OUT/pruning_replay.png (default OUT: "
                      "bench/results); --replot: only the picture, from OUT/pruning_replay.json.",
               takes="the defaults (5 settings × 2000 replays of each report row): 1-2 minutes on CPU; "
                     "--replays 50: seconds; --replot: seconds. Trains nothing: it replays the report's recorded grid curves.")
    p.add_argument("--report", type=Path, default=RESULTS / "search_cost.json")
    p.add_argument("--settings", nargs="+", default=["1:3", "2:3", "3:3", "1:2", "2:2"],
                   help="grace:factor[:brackets] settings to compare (brackets: Ray's ASHA brackets, default 1)")
    p.add_argument("--trials", type=positive, default=None, help="default: the trials of the report's rows")
    p.add_argument("--replays", type=positive, default=2000, help="random searches per setting and row (default 2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON, table and plot (default: bench/results)")
    p.add_argument("--replot", action="store_true", help="replay nothing: draw OUT/pruning_replay.png again from its JSON")
    args = p.parse_args(argv)
    check_out(args.out)
    if args.replot:
        return replot(args.out, "pruning_replay", figure)
    report = read_report(args.report)
    try:
        settings = [tuple(int(x) for x in s.split(":")) for s in args.settings]
    except ValueError:
        settings = []
    if (not settings or any(len(s) not in (2, 3) or s[0] < 1 or s[1] < 2 or (len(s) == 3 and s[2] < 1)
                            for s in settings)):
        fail("--settings takes grace:factor[:brackets] (grace >= 1, factor >= 2, brackets >= 1), "
             f"got {' '.join(args.settings)}")
    rows = []
    for row in progress(report["rows"], "report rows replayed"):
        curves = [c["history"] for c in row["grid"]["configs"] if c["history"]]
        trials = args.trials or row["trials"]
        rng = random.Random(args.seed)
        orders = [[rng.randrange(len(curves)) for _ in range(trials)] for _ in range(args.replays)]
        target, budget = row["grid"]["best_score"] - POINTS, TARGET * row["grid"]["compute"]
        out = {}
        for setting, name in zip(settings, args.settings):
            grace, factor, brackets = (*setting, 1)[:3]
            rng = random.Random(args.seed)  # the bracket draws: the same for every setting
            spent = [replay(curves, o, grace, factor, target, brackets, rng) for o in orders]
            out[name] = {
                "p_target": sum(s is not None and s <= budget for s in spent) / len(spent),
                "p_reached": sum(s is not None for s in spent) / len(spent)}
        rows.append({"task": row["task"], "start": row["start"], "trials": trials, "settings": out})
    doc = {"report": str(args.report), "replays": args.replays, "seed": args.seed, "rows": rows}
    head = " | ".join(setting_name(s) for s in rows[0]["settings"])
    lines = ["# Pruning replay: share of random searches within 0.5 pt of the grid's best at ≤ 35 % of its "
             "trial-epochs (and within 0.5 pt at all)", "",
             f"{args.replays} replays per cell, configurations drawn at random from each row's grid; no TPE.", "",
             f"| task | start | trials | {head} |", "| --- " * (3 + len(rows[0]["settings"])) + "|"]
    for r in rows:
        cells = " | ".join(f"{v['p_target']:.2f} ({v['p_reached']:.2f})" for v in r["settings"].values())
        lines.append(f"| {r['task']} | {r['start']} | {r['trials']} | {cells} |")
    write_files(args.out, {"pruning_replay.json": json.dumps(doc, indent=2) + "\n",
                           "pruning_replay.md": "\n".join(lines) + "\n", "pruning_replay.png": figure_bytes(figure(doc))})
    print("\n".join(lines))


if __name__ == "__main__":
    main()
