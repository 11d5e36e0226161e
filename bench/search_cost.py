"""Search cost: how much compute the search (Optuna TPE + ASHA on Ray Tune) needs to come within
0.5 points of an exhaustive grid's best dev score, with and without a pre-trained prompt.

Not a test. Per packaged task (and per start: fresh prompt, pre-trained prompt):

- ``grid``: every length of the task's search space × 3 learning rates (log-spaced inside its
  range), each trained to the full epochs with the search's own objective. Its compute is
  ``lengths × 3 × epochs`` trial-epochs; its best dev score is the target's reference.
- ``search``: ``run_search`` with the same space, epochs and a trial budget, once per sampler
  seed (``--seeds``: TPE's start-up trials and proposals differ, the trials' training does not).
  Its trials are taken in the order they ended; the compute to target is the sum of their epochs
  (pruned trials count only the epochs they ran) up to the first completed trial whose dev score
  is within 0.5 points of the grid's best (a pruned trial's score does not count: the search
  picks its best among completed trials). A trial retried after its worker died counts the lost
  attempt's epochs too (``epochs_trained``; ``epochs_run`` is its last attempt's). One search is
  one draw: with 10 trials, whether the target is met depends on the seed, so a row reports each
  seed and how many met it.

Compute is counted in trial-epochs (one epoch of one configuration), which is what a trial costs
whatever the machine. ``--device cuda`` trains grid, trials and pre-training on the GPU (each of
``--concurrency`` trials takes its share of it); a reused report must come from the same device,
and a GPU's dev scores need not repeat bit for bit, so a reused GPU grid may fail its check.
The target is at most 35 % of the grid's compute.

    .venv/bin/python bench/search_cost.py [--tasks trec rt wnut16 bbc] [--max-train N] [--max-eval N]
        [--epochs N] [--trials N] [--pretrained DIR | --pretrain] [--seeds 0 1 2] [--ray-cpus N]
        [--device cuda]
        [--work DIR] [--reuse bench/results/search_cost.json]

writes ``bench/results/search_cost.json``, ``search_cost.md`` and ``search_cost.png``.

Each part of a (task, start) row (its grid, its search per seed) is kept in ``--work`` as it
finishes: a stopped bench run again with the same settings skips finished parts, and several
processes (e.g. one per core, pinned with ``taskset``) given the same ``--work`` share the work,
each part claimed by one of them. The report covers every finished part of the requested tasks.

``--reuse FILE`` takes rows' grids (and the searches run with the same pruning and sampler, any
seed) from an earlier report of the same settings instead of training them again (its fresh rows
whether or not either run has a pre-trained start). A reused grid is checked
first: its first configuration is trained again and must give the same dev scores, epoch by
epoch (CPU training is deterministic here), else the bench stops with an error. A pre-trained
row's searches are reused only when the report records the same prompt (``prompt_sha``, the
sha256 of its ``prompt.safetensors``); a report without one (before 2026-12-05) lends its
pre-trained rows' grids, checked, and no searches. The prompt's sha256 is part of the settings
a ``--work`` folder holds, so a prompt rebuilt at the same path does not mix with the old rows.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from optuna_studies.objective import objective  # noqa: E402
from optuna_studies.search import run_search  # noqa: E402
from optuna_studies.space import SearchSpace, load_space  # noqa: E402

from bench._args import (Parser, check_device, check_out, check_tasks, fail, figure_bytes, natural, positive,  # noqa: E402
                         read_json, write_file, write_files)

RESULTS = ROOT / "bench" / "results"
POINTS = 0.005  # 0.5 points of a score in [0, 1]
TARGET = 0.35  # of the grid's trial-epochs


def grid_lrs(space: SearchSpace) -> list[float]:
    """3 learning rates log-spaced inside the space's range (at 1/6, 1/2, 5/6 of it)."""
    lo, hi = math.log(space.lr_low), math.log(space.lr_high)
    return [float(f"{math.exp(lo + f * (hi - lo)):.3g}") for f in (1 / 6, 1 / 2, 5 / 6)]


def run_grid(task: str, model: str, space: SearchSpace, args, init: str | None,
             only: list[tuple[int, float]] | None = None, seed: int = 0) -> dict:
    """Every length × 3 lrs (or the ``only`` ones) to full epochs, in-process, with the search's objective.
    ``seed`` is the training seed (initialisation, batch order); the data splits are always seed 0's."""
    rows = []
    for prompt_len, lr in only or [(n, lr) for n in space.prompt_lens for lr in grid_lrs(space)]:
        history: list[float] = []
        config = dict(space.fixed) | {
            "task": task, "model": model, "prompt_len": prompt_len, "lr": lr, "epochs": space.epochs,
            "max_train": args.max_train, "max_eval": args.max_eval, "seed": seed, "data_seed": 0,
            "device": args.device,
            "metric": space.metric, "mode": space.mode, "init": init}
        t0 = time.time()
        torch.set_num_threads(1)  # as a search trial (1 CPU each): same arithmetic, same scores (on CPU)
        out = objective(config, lambda e, m, a: history.append(m["objective"]))
        rows.append({"prompt_len": prompt_len, "lr": lr, "best": out["best_objective"], "status": out["status"],
                     "history": history, "seconds": time.time() - t0})
        print(f"  grid {task} len {prompt_len} lr {lr:g}: {out['status']} {out['best_objective']}", flush=True)
    ok = [r for r in rows if r["best"] is not None and math.isfinite(r["best"])]
    best = max(ok, key=lambda r: r["best"]) if ok else None
    return {"configs": rows, "compute": len(rows) * space.epochs, "best_score": best and best["best"],
            "best_prompt_len": best and best["prompt_len"], "best_lr": best and best["lr"],
            "seconds": sum(r["seconds"] for r in rows)}


def seed_space_file(task: str, seed: int, work: Path, sampler: dict | None = None) -> Path:
    """The task's packaged space with TPE's seed set to ``seed`` and the ``sampler`` settings
    (``--startup``, ``--length``) where given: its only changes."""
    import yaml

    from optuna_studies.space import space_path

    doc = yaml.safe_load(space_path(task).read_text(encoding="utf-8"))
    doc["sampler"] = dict(doc.get("sampler") or {}) | (sampler or {}) | {"seed": seed}
    path = work / f"{task}-seed{seed}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def pruning_of(space: SearchSpace) -> dict:
    return {"grace_period": space.grace_period, "reduction_factor": space.reduction_factor}


# how searches recorded before the sampler settings existed ran: random start-up, length a category
LEGACY_SAMPLER = {"startup": "random", "length": "categorical"}


def sampler_of(space: SearchSpace) -> dict:
    return {"startup": space.startup, "length": space.length}


def sampler_args(args) -> dict:
    """The sampler settings the command line sets (the packaged spaces' own where unset)."""
    return {k: v for k, v in (("startup", args.startup), ("length", args.length)) if v is not None}


def run_one_search(task: str, model: str, seed: int, pruning: dict, args, init: str | None, work: Path) -> dict:
    t0 = time.time()
    space_file = seed_space_file(task, seed, work, sampler_args(args))
    res = run_search(task, model, work / "out", space=space_file, trials=args.trials,
                     epochs=args.epochs, max_train=args.max_train, max_eval=args.max_eval, init=init,
                     concurrency=args.concurrency, storage=f"sqlite:///{work}/optuna.db",
                     gpus_per_trial=1 / args.concurrency if args.device == "cuda" else 0,
                     mlflow_uri=f"sqlite:///{work}/mlflow.db", ray_cpus=args.ray_cpus,
                     echo=lambda line: print("  " + line, flush=True))
    trials = sorted(res.trials, key=lambda r: r["ended"])
    keep = ("number", "prompt_len", "lr", "status", "best_score", "epochs_run", "epochs_trained", "retries",
            "started", "ended")
    return {"trials": [{k: r.get(k) for k in keep} for r in trials], "space": space_of(load_space(space_file)),
            "concurrency": args.concurrency,
            "compute": sum(trial_epochs(r) for r in trials), "best_score": res.best_score,
            "best_prompt_len": res.best_config["prompt_len"], "best_lr": res.best_config["lr"],
            "seed": seed, "pruning": pruning, "sampler": sampler_of(load_space(space_file)), "seconds": time.time() - t0}


def space_of(space: SearchSpace) -> dict:
    """What of a search space a grid or search depends on besides its pruning and sampler."""
    return {"prompt_lens": list(space.prompt_lens), "lr": [space.lr_low, space.lr_high], "epochs": space.epochs,
            "trials": space.trials}


def grid_configs(space: SearchSpace) -> list[list]:
    """The grid's configurations, as a report keeps them: [[prompt_len, lr], ...]."""
    return [[n, lr] for n in space.prompt_lens for lr in grid_lrs(space)]


def reused_parts(report: dict | None, task: str, start: str, space: SearchSpace, now: dict,
                 prompt: str | None = None) -> dict:
    """The grid and each seed's search of row (task, start) from an earlier report, where present.
    A search is reused only when it ran with the pruning this row runs with (``now``) and the
    space's sampler settings; a search recorded without its pruning predates ``warm_grace_period``,
    so it ran with ``grace_period``, and one without its sampler predates them (LEGACY_SAMPLER).
    A pre-trained row's searches are reused only when the report's ``prompt_sha`` is ``prompt``
    (this run's): its grid is checked by training, its searches are not. Nothing of a row is reused
    when its grid's configurations are not this space's (other lengths, or another lr range: the
    check by training retrains a recorded configuration, which passes whatever the space is now),
    and a search recorded with its space (``space``) only under the same space.
    (With one trial at a time on CPU, a search with the same seed runs the same trials again.)"""
    row = next((r for r in (report or {}).get("rows", []) if (r["task"], r["start"]) == (task, start)), None)
    if row is None or sorted([c["prompt_len"], c["lr"]] for c in row["grid"]["configs"]) != sorted(grid_configs(space)):
        return {}
    parts = {"grid": row["grid"]}
    if start != "fresh" and (prompt is None or report.get("prompt_sha") != prompt):
        return parts
    for search in row.get("searches") or ([row["search"]] if "search" in row else []):
        seed = search.get("seed", 0)
        ran = search.get("pruning") or pruning_of(space)
        sampled = search.get("sampler") or LEGACY_SAMPLER
        if ran == now and sampled == sampler_of(space) and search.get("space", space_of(space)) == space_of(space):
            parts[f"search-s{seed}"] = {k: v for k, v in search.items() if k != "to_target"} | {
                "seed": seed, "pruning": ran, "sampler": sampled}
    return parts


def check_reused_grid(grid: dict, task: str, model: str, space: SearchSpace, args, init: str | None) -> None:
    """Train the reused grid's first configuration again; its dev scores must be the same."""
    first = grid["configs"][0]
    again = run_grid(task, model, space, args, init, only=[(first["prompt_len"], first["lr"])])["configs"][0]
    if again["history"] != first["history"]:
        fail(f"--reuse: {task} grid (len {first['prompt_len']}, lr {first['lr']:g}) gives "
             f"{again['history']} now, the report has {first['history']}: its settings or prompt differ")


def prompt_sha(folder: str | None) -> str | None:
    """sha256 of a pre-trained prompt's weights (16 hex digits), or exit 2 with one error line."""
    if folder is None:
        return None
    try:
        return hashlib.sha256((Path(folder) / "prompt.safetensors").read_bytes()).hexdigest()[:16]
    except OSError as e:
        fail(f"--pretrained '{folder}' holds no readable prompt.safetensors: {e.strerror}")


def trial_epochs(trial: dict) -> int:
    """A trial's compute in trial-epochs: every epoch it trained, those of attempts lost with their
    worker included (``epochs_trained``). A trial recorded without it (reports up to 2026-12-06)
    counts its ``epochs_run``, the last attempt's epochs: those reports keep no retries, so a lost
    attempt there, if any, cannot be told."""
    value = trial.get("epochs_trained")
    return (trial.get("epochs_run") if value is None else value) or 0


def compute_to_target(trials: list[dict], target: float) -> int | None:
    """Trial-epochs spent (in end order) until the best completed trial so far reaches ``target``;
    None if never. Only completed trials count for the score, as the search picks its best (a
    pruned trial's score is after fewer epochs; in the 93 searches recorded up to 2026-12-06 none
    reached a target first, so counting them too gave the same numbers); all count for the compute.

    With trials running side by side (``--concurrency`` above 1), the trials that had started but
    not ended when the target was reached count too, with every epoch they ran (records keep a
    trial's start and end, not each epoch's time): an upper bound. One at a time, no trial overlaps
    another and this is the sum up to the trial that reached it."""
    best = -math.inf
    for i, r in enumerate(trials):
        if r["best_score"] is not None and r.get("status", "completed") == "completed":
            best = max(best, r["best_score"])
        if best >= target - 1e-9:  # inclusive: 0.84 - 0.005 is 0.8349999999999999 in floats
            at = r.get("ended")
            running = [t for t in trials[i + 1:] if at is not None and t.get("started") is not None
                       and t["started"] < at]
            return sum(trial_epochs(t) for t in trials[: i + 1] + running)
    return None


def pretrain_prompt(model: str, tasks: list[str], args, folder: Path) -> str:
    """A multi-task pre-trained prompt long enough for every space (for --pretrain); reused
    when ``folder`` already holds a finished one, resumed when it holds checkpoints."""
    from ptv2_core.multitask import PretrainConfig, pretrain

    if (folder / "prompt_config.json").exists():
        return str(folder)
    longest = max(max(load_space(t).prompt_lens) for t in tasks)
    lengths = tuple(sorted({x for t in tasks for x in load_space(t).prompt_lens}))
    cfg = PretrainConfig(tasks=tuple(tasks), model=model, max_prompt_len=longest, lengths=lengths,
                         epochs=args.pretrain_epochs, max_train=args.max_train, max_eval=args.max_eval,
                         device=args.device, progress=False)
    pretrain(cfg, folder)
    return str(folder)


def claim(rows_dir: Path, name: str) -> bool:
    """Claim row ``name`` for this process (False: finished, or claimed by a live process)."""
    if (rows_dir / f"{name}.json").exists():
        return False
    lock = rows_dir / f"{name}.claim"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                os.kill(int(lock.read_text() or 0), 0)
                return False  # its owner is alive
            except (ProcessLookupError, ValueError):
                lock.unlink(missing_ok=True)  # left by a stopped run: take it over
                continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return True
    return False


def check_work(work: Path, key: dict) -> None:
    """One --work folder keeps the runs of one set of settings (``key``): exit 2 with one error line
    on a folder of other settings, else create it and record ``key`` in its settings.json."""
    saved = work / "settings.json"
    if saved.exists() and read_json(saved, f"--work '{work}'") != key:
        fail(f"--work '{work}' holds runs of other settings {saved.read_text().strip()}: pick another --work")
    write_file(saved, json.dumps(key, sort_keys=True))  # whole: a stop mid-write leaves none


def write_json(path: Path, doc: dict) -> None:
    write_file(path, json.dumps(doc, indent=2) + "\n")


def load_row(rows_dir: Path, task: str, start: str, space: SearchSpace) -> dict | None:
    """Row (task, start) from its finished parts: the grid and every seed's search (None without both)."""
    name = f"{task}-{start}"
    grid_file = rows_dir / f"{name}.grid.json"
    searches = [json.loads(f.read_text()) for f in sorted(rows_dir.glob(f"{name}.search-s*.json"))]
    if not grid_file.exists() or not searches:
        return None
    grid = json.loads(grid_file.read_text())
    target = grid["best_score"] - POINTS
    searches.sort(key=lambda r: r["seed"])
    for r in searches:  # computed here, so every search follows this script's rule
        r["to_target"] = compute_to_target(r["trials"], target)
    met = [r for r in searches if r["to_target"] is not None and r["to_target"] <= TARGET * grid["compute"]]
    return {"task": task, "start": start, "epochs": space.epochs, "trials": space.trials, "grid": grid,
            "searches": searches, "target": target, "met": len(met)}


def read_report(path: Path) -> dict:
    """A search-cost report (JSON), else exit 2 with one error line."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        fail(f"--report '{path}' is not a readable search-cost report: {e}")


def read_reuse(path: Path, key: dict) -> dict:
    """An earlier report whose settings are these (else exit 2 with one error line)."""
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        fail(f"--reuse '{path}' is not a readable report: {e}")
    shared = ("model", "max_train", "max_eval", "epochs", "trials")
    theirs = {k: report.get(k) for k in shared} | {"device": report.get("device", "cpu"),
                                                    "concurrency": report.get("concurrency", 1)}
    ours = {k: key[k] for k in shared} | {"device": key.get("device", "cpu"), "concurrency": key.get("concurrency", 1)}
    # whether either has a pre-trained start does not matter: fresh rows are reused as fresh rows, and a
    # pre-trained row's reused grid is checked by training its first configuration from this run's prompt
    if theirs != ours:
        fail(f"--reuse '{path}' was measured with {theirs}, this run is {ours}")
    return report


def settings_key(args, sha: str | None) -> dict:
    """What a row's numbers depend on: rows of other settings never mix in one --work
    (``sha``: the --pretrained prompt's, see ``prompt_sha``)."""
    names = ("model", "max_train", "max_eval", "epochs", "trials", "pretrained", "pretrain", "pretrain_epochs")
    device = {"device": args.device} if args.device != "cpu" else {}  # CPU keys stay as they were before --device
    concurrency = {"concurrency": args.concurrency} if args.concurrency != 1 else {}  # likewise
    return ({k: getattr(args, k) for k in names} | sampler_args(args) | device | concurrency
            | ({"pretrained_sha": sha} if args.pretrained else {}))


def pct(row: dict, spent: int | None) -> str:
    return f"{100 * spent / row['grid']['compute']:.0f} %" if spent is not None else "not reached"


def write_reports(doc: dict, results: Path = RESULTS) -> None:
    lines = [
        "# Search cost: trial-epochs to come within 0.5 points of the grid's best dev score", "",
        f"model {doc['model']}, max_train {doc['max_train']}, max_eval {doc['max_eval']}; grid = the space's "
        "lengths × 3 lrs, each to full epochs; search = TPE + ASHA with the same space and epochs, "
        f"{doc.get('concurrency', 1)} trial(s) at a time, once per TPE seed"
        + (" (trials running when the target was reached count in full)" if doc.get("concurrency", 1) > 1 else "")
        + ". Target: search ≤ 35 % of the grid's trial-epochs.", "",
        "| task | start | epochs, trials | grid best (len, lr) | grid trial-epochs | searches meeting the target |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in doc["rows"]:
        g = r["grid"]
        lines.append(f"| {r['task']} | {r['start']} | {r['epochs']}, {r['trials']} "
                     f"| {g['best_score']:.4f} ({g['best_prompt_len']}, {g['best_lr']:g}) | {g['compute']} "
                     f"| {r['met']} of {len(r['searches'])} |")
    lines += overall(doc)
    lines += ["", "| task | start | seed | ASHA grace | search best (len, lr) | search trial-epochs (total) "
              "| to within 0.5 pt | % of grid |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in doc["rows"]:
        for s in r["searches"]:
            lines.append(f"| {r['task']} | {r['start']} | {s['seed']} | {s['pruning']['grace_period']} "
                         f"| {s['best_score']:.4f} ({s['best_prompt_len']}, {s['best_lr']:.3g}) | {s['compute']} "
                         f"| {s['to_target'] if s['to_target'] is not None else '—'} | {pct(r, s['to_target'])} |")
    write_files(results, {"search_cost.json": json.dumps(doc, indent=2) + "\n", "search_cost.md": "\n".join(lines) + "\n",
                          "search_cost.png": figure_bytes(figure(doc))})


def overall(doc: dict) -> list[str]:
    """All rows' searches together: how many met the target, with a 95 % (Clopper-Pearson) interval
    for the share, and the median compute to target (a search that never got there ranks last)."""
    from scipy.stats import binomtest

    shares = [s["to_target"] / r["grid"]["compute"] if s["to_target"] is not None else math.inf
              for r in doc["rows"] for s in r["searches"]]
    if not shares:
        return []
    met = sum(r["met"] for r in doc["rows"])  # as each row counts it
    ci = binomtest(met, len(shares)).proportion_ci(confidence_level=0.95, method="exact")
    median = statistics.median(shares)
    med = (f"reaches 0.5 points of its grid's best with {100 * median:.0f} % of the grid" if math.isfinite(median)
           else "does not reach 0.5 points of its grid's best")
    return ["", f"All rows: {met} of {len(shares)} searches meet the target ({100 * met / len(shares):.0f} %, "
            f"95 % interval {100 * ci.low:.0f}–{100 * ci.high:.0f} %); the median search {med}."]


def figure(doc: dict):
    """The picture ``write_reports`` writes: per row and TPE seed, the share of the grid's compute each search
    needed to reach the target, and its whole compute."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = doc["rows"]
    seeds = sorted({s["seed"] for r in rows for s in r["searches"]})
    width = 0.8 / max(1, len(seeds))
    fig, ax = plt.subplots(figsize=(max(5, 1.5 * len(rows)), 3.8), dpi=110)
    labelled: set[int] = set()
    for k, seed in enumerate(seeds):
        for x, r in enumerate(rows):
            s = next((s for s in r["searches"] if s["seed"] == seed), None)
            if s is None:
                continue
            xk = x - 0.4 + width * (k + 0.5)
            if s["to_target"] is None:  # an empty bar must not read as "no compute needed"
                # upright, one bar wide: side by side notes stay apart
                ax.text(xk, 1, "not reached", ha="center", va="bottom", rotation=90, fontsize=6, color="dimgray")
            else:
                ax.bar(xk, 100 * s["to_target"] / r["grid"]["compute"], width=width * 0.9, color=f"C{k}",
                       label=None if seed in labelled else f"TPE seed {seed}")
                labelled.add(seed)
            ax.plot([xk - width * 0.45, xk + width * 0.45], [100 * s["compute"] / r["grid"]["compute"]] * 2,
                    color="black", linewidth=1)
    ax.plot([], [], color="black", linewidth=1, label="whole search")
    ax.axhline(100 * TARGET, color="red", linestyle="--", label="target 35 %")
    ax.set_xticks(list(range(len(rows))), [f"{r['task']}\n{r['start']}" for r in rows])
    ax.set_ylabel("% of the grid's trial-epochs\nto within 0.5 pt of its best")
    ax.legend(loc="best", fontsize=7)
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> None:
    p = Parser(" ".join(__doc__.split("\n\n")[0].split()),
               writes="OUT/search_cost.json (every grid run's and trial's dev curve), OUT/search_cost.md (the tables) "
                      "and OUT/search_cost.png; finished rows are kept in --work and reused when run again.",
               takes="the defaults (4 tasks, each space's full grid and searches, all rows): many hours on CPU; "
                     "docs/search_cost.md gives each recorded run's time. A tiny run, --tasks trec --max-train 16 "
                     "--max-eval 16 --epochs 1 --trials 2: a few minutes (Ray start-up included).")
    p.add_argument("--tasks", nargs="+", default=["trec", "rt", "wnut16", "bbc"])
    p.add_argument("--model", default="minilm")
    p.add_argument("--max-train", type=positive, default=None)
    p.add_argument("--max-eval", type=positive, default=None)
    p.add_argument("--epochs", type=positive, default=None, help="default: each space's epochs")
    p.add_argument("--trials", type=positive, default=None, help="default: each space's trials")
    p.add_argument("--startup", choices=("random", "lhs"), default=None, help="sampler.startup; default: each space's")
    p.add_argument("--length", choices=("categorical", "rank"), default=None, help="sampler.length; default: each space's")
    p.add_argument("--concurrency", type=positive, default=1,
                   help="trials at once (above 1, trials still running when the target is reached count in full)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where grid, trials and pre-training train (cuda: each trial takes 1/concurrency of the GPU)")
    p.add_argument("--ray-cpus", type=positive, default=None)
    p.add_argument("--pretrained", default=None, help="a pre-trained prompt folder for the warm-started runs")
    p.add_argument("--pretrain", action="store_true", help="build a pre-trained prompt first (in --work)")
    p.add_argument("--pretrain-epochs", type=positive, default=3)
    p.add_argument("--work", type=Path, default=None,
                   help="folder of finished rows (default: one per settings under the system's temp folder)")
    p.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON, table and plot")
    p.add_argument("--seeds", type=natural, nargs="+", default=[0], help="TPE seeds: one search per seed and row")
    p.add_argument("--reuse", type=Path, default=None,
                   help="an earlier report (JSON) of the same settings: its grids are checked and reused, with its searches")
    args = p.parse_args(argv)
    check_tasks(args.tasks)
    check_out(args.out)
    if args.work:
        check_out(args.work, "--work")
    check_device(args.device)
    if args.pretrained:
        args.pretrained = str(Path(args.pretrained).resolve())
    sha = prompt_sha(args.pretrained)  # None without --pretrained; with --pretrain, known once it is built
    key = settings_key(args, sha)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    work = args.work or Path(tempfile.gettempdir()) / f"ptv2-bench-search-cost-{digest}"
    report = read_reuse(args.reuse, key) if args.reuse else None  # before --work is made: a bad --reuse leaves nothing
    check_work(work, key)
    rows_dir = work / "rows"
    rows_dir.mkdir(exist_ok=True)
    os.environ.setdefault("PTV2_HOME", str(work / "home"))
    pre = args.pretrained or (pretrain_prompt(args.model, args.tasks, args, work / "pre") if args.pretrain else None)
    starts = [("fresh", None)] + ([("pre-trained", pre)] if pre else [])
    sha = sha or prompt_sha(pre)
    spaces = {task: dataclasses.replace(load_space(task).with_overrides(trials=args.trials, epochs=args.epochs),
                                        **sampler_args(args)) for task in args.tasks}
    for task, space in spaces.items():
        for start, init in starts:
            name = f"{task}-{start}"
            pruning = pruning_of(space.for_start(warm=init is not None))  # what this row's searches run with
            reuse = reused_parts(report, task, start, space, pruning, prompt=sha)
            # separate claims: two processes can split one row
            for part in ["grid"] + [f"search-s{seed}" for seed in args.seeds]:
                if not claim(rows_dir, f"{name}.{part}"):
                    continue
                print(f"{task} / {start} / {part}" + (" (reused)" if part in reuse else ""), flush=True)
                if part == "grid" and part in reuse:
                    check_reused_grid(reuse[part], task, args.model, space, args, init)
                    result = reuse[part]
                elif part == "grid":
                    result = run_grid(task, args.model, space, args, init)
                else:
                    seed = int(part.removeprefix("search-s"))
                    result = reuse.get(part) or run_one_search(task, args.model, seed, pruning, args, init,
                                                               Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work)))
                write_json(rows_dir / f"{name}.{part}.json", result)
                (rows_dir / f"{name}.{part}.claim").unlink(missing_ok=True)
    rows = [row for t in args.tasks for s, _ in starts if (row := load_row(rows_dir, t, s, spaces[t]))]
    missing = sum(not (rows_dir / f"{t}-{s}.{part}.json").exists() for t in args.tasks for s, _ in starts
                  for part in ["grid"] + [f"search-s{seed}" for seed in args.seeds])
    if rows:
        write_reports({"model": args.model, "device": args.device, "concurrency": args.concurrency,
                       "max_train": args.max_train,
                       "max_eval": args.max_eval,
                       "epochs": args.epochs, "trials": args.trials, "pretrained": pre is not None, "prompt_sha": sha,
                       "pretrain_epochs": args.pretrain_epochs if args.pretrain else None, "rows": rows}, args.out)
        print((args.out / "search_cost.md").read_text())
    if missing:
        print(f"{missing} part(s) are still running in another process or unfinished: run again to complete the report")


if __name__ == "__main__":
    main()
