"""Start-up replay: TPE's start-up trials at random or as a Latin hypercube (``sampler.startup``),
and the prompt length as a category or as its rank (``sampler.length``), replayed on the learning
curves of a search-cost report's grids.

Not a test, and no training: it reads a report of ``bench/search_cost.py``. For each row (task,
start) and each TPE seed, the search's own sampler (``optuna_studies.searcher.sampler``, TPE,
on an in-memory study) proposes ``trials`` configurations one after another; each proposal is
scored with the grid curve of its length and the grid learning rate nearest to its lr (in log),
under ASHA's rule with the row's recorded pruning (a trial reaching a rung stops when its
running best is below the (1 - 1/factor) quantile of the running bests recorded there before
it), and told back as the search tells it (running best each epoch; PRUNED when stopped early).
Counted: trial-epochs until the best so far is within 0.5 points of the grid's best, against the
search-cost target (35 % of the grid's trial-epochs).

What it leaves out: learning rates between the grid's three (a proposal takes its nearest
column's curve) and training noise (a configuration always scores its grid curve). It ranks the
sampler settings; it does not predict a search.

    .venv/bin/python bench/startup_replay.py [--report bench/results/lr3e-3/search_cost.json]
        [--seeds 300] [--out DIR]

writes ``startup_replay.json``, ``startup_replay.md`` and ``startup_replay.png`` in ``--out`` (default: the report's
folder); ``--replot`` draws the picture again from the JSON there.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import optuna

from pruning_replay import brackets_of, run_trial  # bench/ is on the path
from search_cost import POINTS, TARGET, read_report

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from optuna_studies.params import distributions, from_study  # noqa: E402
from optuna_studies.searcher import sampler  # noqa: E402
from optuna_studies.space import load_space  # noqa: E402
from optuna_studies.startup import first_points  # noqa: E402

from bench._args import Parser, check_out, figure_bytes, positive, progress, write_files  # noqa: E402
from bench._plots import grouped_bars, replot  # noqa: E402

# sampler.startup, sampler.length
DESIGN_NAMES = {"random": "random start-up, length a category (default)", "lhs": "Latin hypercube",
                "rank": "length as rank", "rank+lhs": "length as rank + Latin hypercube"}
DESIGNS = {"random": ("random", "categorical"), "lhs": ("lhs", "categorical"), "rank": ("random", "rank"),
           "rank+lhs": ("lhs", "rank")}


def one_search(space, curves: dict, lrs: list[float], rungs: list[int], factor: int, target: float) -> dict:
    """One TPE search on the grid's curves: trial-epochs to the target (None: never), best score.
    The study keeps the length as the space says (``sampler.length``), as a search's study does."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=space.direction, sampler=sampler(space))
    for point in first_points(space):
        study.enqueue_trial(point)
    recorded: dict[int, list[float]] = {m: [] for m in rungs}
    spent, best, reached, tried = 0, -math.inf, None, []
    dists = distributions(space)
    log_lrs = np.log(lrs)
    for _ in range(space.trials):
        trial = study.ask(dists)
        config = from_study(space, trial.params)
        n, lr = config["prompt_len"], config["lr"]
        curve = curves[(n, lrs[int(np.argmin(np.abs(log_lrs - math.log(lr))))])]
        epoch, running, stopped = run_trial(curve, recorded, factor, on_epoch=lambda e, r: trial.report(r, e))
        spent += epoch
        tried.append(n)
        if stopped:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, running)
        best = max(best, running)
        if reached is None and best >= target - 1e-9:
            reached = spent
    return {"to_target": reached, "best": best, "lengths_tried": len(set(tried))}


def figure(doc: dict):
    """The picture beside the table: per row, each design's share of TPE seeds meeting the target (filled)
    and reaching 0.5 pt of the grid's best at all (outline)."""
    rows = doc["rows"]
    designs = list(rows[0]["designs"])
    return grouped_bars(
        [f"{r['task']}\n{r['start']}" for r in rows],
        {DESIGN_NAMES.get(d, d): [100 * r["designs"][d]["p_target"] for r in rows] for d in designs},
        outline={DESIGN_NAMES.get(d, d): [100 * r["designs"][d]["p_reached"] for r in rows] for d in designs},
        ylabel="% of TPE seeds", ylim=(0, 100),
        title=f"Start-up replay ({doc['seeds']} TPE seeds per bar): filled, within 0.5 pt of the grid's best at "
              "≤ 35 % of its trial-epochs; outline, within 0.5 pt at all")


def main(argv: list[str] | None = None) -> None:
    p = Parser(" ".join(__doc__.split("\n\n")[0].split()),
               writes="OUT/startup_replay.json, OUT/startup_replay.md and OUT/startup_replay.png (default OUT: the "
                      "report's folder); --replot: only the picture, from OUT/startup_replay.json.",
               takes="the defaults (300 TPE seeds × 4 designs × each report row): 1-2 minutes on one CPU core (500 seeds "
                     "took 111 s on bench/results/lr3e-3's 6 rows), plus ~15 s of imports; --seeds 1, --replot: seconds. Trains "
                     "nothing: TPE proposes, the report's grid curves answer.")
    p.add_argument("--report", type=Path, default=Path(__file__).resolve().parent / "results" / "lr3e-3" / "search_cost.json")
    p.add_argument("--seeds", type=positive, default=300, help="TPE seeds per row and design (0 .. N-1)")
    p.add_argument("--out", type=Path, default=None, help="default: the report's folder")
    p.add_argument("--replot", action="store_true", help="replay nothing: draw OUT/startup_replay.png again from its JSON")
    args = p.parse_args(argv)
    out_dir = check_out(args.out or args.report.parent)
    if args.replot:
        return replot(out_dir, "startup_replay", figure)
    report = read_report(args.report)
    rows = []
    for row in report["rows"]:
        configs = [c for c in row["grid"]["configs"] if c["history"]]
        lrs = sorted({c["lr"] for c in configs})
        curves = {(c["prompt_len"], c["lr"]): c["history"] for c in configs}
        pruning = row["searches"][0]["pruning"]
        rungs = brackets_of(pruning["grace_period"], pruning["reduction_factor"], 1, row["epochs"])[0][0]
        target, budget = row["grid"]["best_score"] - POINTS, TARGET * row["grid"]["compute"]
        base = load_space(row["task"]).with_overrides(trials=row["trials"], epochs=row["epochs"])
        res = {}
        for design, (startup, length) in DESIGNS.items():
            t0 = time.time()
            runs = [one_search(dataclasses.replace(base, seed=s, startup=startup, length=length), curves, lrs, rungs,
                               pruning["reduction_factor"], target)
                    for s in progress(range(args.seeds), f"{row['task']} {row['start']} {design}: TPE seeds")]
            spent = [r["to_target"] for r in runs]
            res[design] = {
                "p_target": sum(s is not None and s <= budget for s in spent) / len(runs),
                "p_reached": sum(s is not None for s in spent) / len(runs),
                "median_to_target": (float(np.median([s for s in spent if s is not None]))
                                     if any(s is not None for s in spent) else None),
                "mean_lengths_tried": float(np.mean([r["lengths_tried"] for r in runs])),
                "seconds": round(time.time() - t0, 1)}
            print(row["task"], row["start"], design, res[design], flush=True)
        rows.append({"task": row["task"], "start": row["start"], "trials": row["trials"],
                     "n_startup_trials": base.n_startup_trials, "lengths": list(base.prompt_lens),
                     "pruning": pruning, "designs": res})
    doc = {"report": str(args.report), "seeds": args.seeds, "rows": rows}
    lines = ["# Start-up replay: TPE with random against Latin-hypercube start-up trials, on the grid's curves", "",
             f"{args.seeds} TPE seeds per cell; share of searches within 0.5 pt of the grid's best at ≤ 35 % of its "
             "trial-epochs (share within 0.5 pt at all; median trial-epochs to it; distinct lengths tried).", "",
             "| task | start | trials (start-up) | " + " | ".join(DESIGN_NAMES[d] for d in DESIGNS) + " |",
             "| --- " * (3 + len(DESIGNS)) + "|"]
    for r in rows:
        cells = " | ".join(f"{v['p_target']:.2f} ({v['p_reached']:.2f}; {v['median_to_target']}; "
                           f"{v['mean_lengths_tried']:.1f})" for v in r["designs"].values())
        lines.append(f"| {r['task']} | {r['start']} | {r['trials']} ({r['n_startup_trials']}) | {cells} |")
    write_files(out_dir, {"startup_replay.json": json.dumps(doc, indent=2) + "\n",
                          "startup_replay.md": "\n".join(lines) + "\n",
                          "startup_replay.png": figure_bytes(figure(doc))})
    print("\n".join(lines))


if __name__ == "__main__":
    main()
