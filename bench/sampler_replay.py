"""Sampler replay: does the search's sampler code still propose what a search-cost report recorded?

Not a test, and no training. Each search of ``bench/results/search_cost.json`` is replayed
through the searcher the Tuner runs (``optuna_studies.searcher.StudySearch``: Ray's OptunaSearch
with TPE, on a throw-away sqlite study): every recorded trial is asked for in order, its proposal
(prompt length, lr) compared with the recorded one, and its recorded end told back (its running
best at its last epoch; ASHA-stopped trials end before the last epoch, diverged ones fail).
Trials run one at a time in the bench and CPU training is deterministic, so while the proposals
agree the replayed search is the recorded one, and so is its result. Where a proposal differs
the report names the first such trial: that search would have to be run again.

Use it after changing anything TPE sees (how trial ends are told, sampler settings):

    .venv/bin/python bench/sampler_replay.py [--report bench/results/search_cost.json]

writes ``bench/results/sampler_replay.json``, ``sampler_replay.md`` and ``sampler_replay.png`` (``--replot``:
only the picture, from that JSON); exits 1 when a search
would change, and 2, writing nothing, for a report whose grid is of another lr range than the
packaged space's (such a search would be proposed other points whatever the sampler code).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import optuna  # noqa: E402

from optuna_studies.searcher import StudySearch  # noqa: E402
from optuna_studies.space import load_space  # noqa: E402
from optuna_studies.study import open_storage, prepare_study  # noqa: E402
from optuna_studies.tuner import METRIC  # noqa: E402
from search_cost import LEGACY_SAMPLER, RESULTS, grid_lrs, read_report  # noqa: E402 (bench/ is on the path)

from bench._args import Parser, check_out, figure_bytes, write_files  # noqa: E402
from bench._plots import grouped_bars, replot  # noqa: E402


def replay_search(task: str, epochs: int, trials: list[dict], seed: int, db: Path, sampler: dict | None = None) -> dict:
    """How many of ``trials`` (in order) the current searcher proposes again, and the first that
    differs, with the sampler settings the search ran with (``sampler``; before they were recorded:
    random start-up, length a category)."""
    space = dataclasses.replace(load_space(task).with_overrides(trials=len(trials), epochs=epochs), seed=seed,
                                **(sampler or LEGACY_SAMPLER))
    storage = open_storage(f"sqlite:///{db}")
    prepare_study(storage, "replay", space, resume=False)
    search = StudySearch(space, "replay", storage, METRIC)
    for k, rec in enumerate(sorted(trials, key=lambda t: t["number"])):
        tid = f"t{k}"
        config = search.suggest(tid)
        if config["prompt_len"] != rec["prompt_len"] or not math.isclose(config["lr"], rec["lr"], rel_tol=1e-9):
            return {"same": k, "first_difference": {"trial": rec["number"], "recorded": [rec["prompt_len"], rec["lr"]],
                                                    "proposed": [config["prompt_len"], config["lr"]]}}
        last = {METRIC: rec["best_score"], "epoch": rec["epochs_run"], "training_iteration": rec["epochs_run"]}
        if rec["status"] in ("diverged", "failed"):
            last = {"failure": rec["status"], "epoch": rec["epochs_run"], "training_iteration": rec["epochs_run"]}
        else:
            search.on_trial_result(tid, last)
        search.on_trial_complete(tid, result=last)
    return {"same": len(trials), "first_difference": None}


def other_range(report: dict) -> str | None:
    """Why ``report`` cannot be replayed with the packaged spaces, or None: a report does not record
    its lr range, but its grid's three lrs (``grid_lrs``) follow from it; a space's range changed
    since (the 1e-3 report, before the spaces started at 3e-3) makes every proposal differ."""
    for row in report["rows"]:
        recorded = sorted({c["lr"] for c in row["grid"]["configs"]})
        now = grid_lrs(load_space(row["task"]))
        if recorded != now:
            return (f"its {row['task']} grid was measured at lrs {recorded}, the packaged space's range now gives "
                    f"{now}: the searches ran on another lr range, so the replay would propose other points "
                    "from the first trial on; replay a report of the current range (bench/results/lr3e-3)")
    return None


def figure(doc: dict):
    """The picture beside the table: per row (task, start) and TPE seed, the share of the recorded trials
    the current searcher proposed again before the first difference (100 %: the search stands)."""
    searches = doc["searches"]
    rows = list(dict.fromkeys((s["task"], s["start"]) for s in searches))
    seeds = sorted({s["seed"] for s in searches})
    by = {(s["task"], s["start"], s["seed"]): s for s in searches}
    share = {f"TPE seed {seed}": [100 * by[(*r, seed)]["same"] / by[(*r, seed)]["recorded"] if (*r, seed) in by else None
                                  for r in rows] for seed in seeds}
    same = sum(s["first_difference"] is None for s in searches)
    return grouped_bars([f"{t}\n{st}" for t, st in rows], share, ylabel="% of recorded trials\nproposed as recorded",
                        ylim=(0, 110), hline=(100, "all: the search stands"),
                        title=f"Sampler replay of {'/'.join(Path(doc['report']).parts[-2:])}: {same} of {len(searches)} searches "
                              "proposed exactly as recorded")


def main(argv: list[str] | None = None) -> int:
    p = Parser(" ".join(__doc__.split("\n\n")[0].split()),
               writes="OUT/sampler_replay.json, OUT/sampler_replay.md and OUT/sampler_replay.png (default OUT: "
                      "bench/results); exit 1 when a search proposes otherwise than recorded; --replot: only the "
                      "picture, from OUT/sampler_replay.json.",
               takes="1-2 minutes on CPU for the 18 searches of bench/results/lr3e-3; --replot: seconds. Trains nothing.")
    p.add_argument("--report", type=Path, default=RESULTS / "search_cost.json")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--replot", action="store_true", help="replay nothing: draw OUT/sampler_replay.png again from its JSON")
    args = p.parse_args(argv)
    check_out(args.out)
    if args.replot:
        replot(args.out, "sampler_replay", figure)
        return 0
    report = read_report(args.report)
    problem = other_range(report)
    if problem:
        print(f"error: --report '{args.report}': {problem}", file=sys.stderr)
        return 2
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for row in report["rows"]:
            for s in row["searches"]:
                db = Path(tmp) / f"replay-{len(rows)}.db"  # a fresh study per search
                r = replay_search(row["task"], row["epochs"], s["trials"], s["seed"], db, s.get("sampler"))
                rows.append({"task": row["task"], "start": row["start"], "seed": s["seed"],
                             "recorded": len(s["trials"]), **r})
    changed = [r for r in rows if r["first_difference"] is not None]
    lines = ["# Sampler replay: the recorded searches proposed again by the current searcher", "",
             f"report {args.report.name}; {len(rows) - len(changed)} of {len(rows)} searches proposed exactly "
             "as recorded (so their results stand).", "",
             "| task | start | seed | trials proposed as recorded | first difference |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        diff = r["first_difference"]
        text = "—" if diff is None else f"trial {diff['trial']}: {diff['proposed']} for {diff['recorded']}"
        lines.append(f"| {r['task']} | {r['start']} | {r['seed']} | {r['same']} of {r['recorded']} | {text} |")
    doc = {"report": str(args.report), "searches": rows}
    write_files(args.out, {"sampler_replay.json": json.dumps(doc, indent=1), "sampler_replay.md": "\n".join(lines) + "\n",
                           "sampler_replay.png": figure_bytes(figure(doc))})
    print("\n".join(lines))
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
