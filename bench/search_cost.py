"""Search cost: how much compute the search (Optuna TPE + ASHA on Ray Tune) needs to come within
0.5 points of an exhaustive grid's best dev score, with and without a pre-trained prompt.

Not a test. Per packaged task (and per start: fresh prompt, pre-trained prompt):

- ``grid``: every length of the task's search space × 3 learning rates (log-spaced inside its
  range), each trained to the full epochs with the search's own objective. Its compute is
  ``lengths × 3 × epochs`` trial-epochs; its best dev score is the target's reference.
- ``search``: ``run_search`` with the same space, epochs and a trial budget. Its trials are
  taken in the order they ended; the compute to target is the sum of their epochs (pruned trials
  count only the epochs they ran) up to the first trial whose best-so-far dev score is within
  0.5 points of the grid's best.

Compute is counted in trial-epochs (one epoch of one configuration), which is what a trial costs
whatever the machine. The target is at most 35 % of the grid's compute.

    .venv/bin/python bench/search_cost.py [--tasks trec rt wnut16 bbc] [--max-train N] [--max-eval N]
        [--epochs N] [--trials N] [--pretrained DIR | --pretrain] [--ray-cpus N] [--work DIR]

writes ``bench/results/search_cost.json``, ``search_cost.md`` and ``search_cost.png``.

Each (task, start) row is kept in ``--work`` as it finishes: a stopped bench run again with the
same settings skips finished rows, and several processes (e.g. one per core, pinned with
``taskset``) given the same ``--work`` share the work: a row's grid and its search are claimed
separately, so two processes can split even the last row.
The report covers every finished row of the requested tasks.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
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

RESULTS = ROOT / "bench" / "results"
POINTS = 0.005  # 0.5 points of a score in [0, 1]


def grid_lrs(space: SearchSpace) -> list[float]:
    """3 learning rates log-spaced inside the space's range (at 1/6, 1/2, 5/6 of it)."""
    lo, hi = math.log(space.lr_low), math.log(space.lr_high)
    return [float(f"{math.exp(lo + f * (hi - lo)):.3g}") for f in (1 / 6, 1 / 2, 5 / 6)]


def run_grid(task: str, model: str, space: SearchSpace, args, init: str | None) -> dict:
    """Every length × 3 lrs to full epochs, in-process, with the search's objective."""
    rows = []
    for prompt_len in space.prompt_lens:
        for lr in grid_lrs(space):
            history: list[float] = []
            config = dict(space.fixed) | {
                "task": task, "model": model, "prompt_len": prompt_len, "lr": lr, "epochs": space.epochs,
                "max_train": args.max_train, "max_eval": args.max_eval, "seed": 0, "device": "cpu",
                "metric": space.metric, "mode": space.mode, "init": init}
            t0 = time.time()
            torch.set_num_threads(1)  # as a search trial (1 CPU each): same arithmetic, same scores
            out = objective(config, lambda e, m, a: history.append(m["objective"]))
            rows.append({"prompt_len": prompt_len, "lr": lr, "best": out["best_objective"], "status": out["status"],
                         "history": history, "seconds": time.time() - t0})
            print(f"  grid {task} len {prompt_len} lr {lr:g}: {out['status']} {out['best_objective']}", flush=True)
    ok = [r for r in rows if r["best"] is not None and math.isfinite(r["best"])]
    best = max(ok, key=lambda r: r["best"]) if ok else None
    return {"configs": rows, "compute": len(rows) * space.epochs, "best_score": best and best["best"],
            "best_prompt_len": best and best["prompt_len"], "best_lr": best and best["lr"],
            "seconds": sum(r["seconds"] for r in rows)}


def run_one_search(task: str, model: str, space_file: str | None, args, init: str | None, work: Path) -> dict:
    t0 = time.time()
    res = run_search(task, model, work / "out", space=space_file, trials=args.trials, epochs=args.epochs,
                     max_train=args.max_train, max_eval=args.max_eval, init=init, concurrency=args.concurrency,
                     storage=f"sqlite:///{work}/optuna.db", mlflow_uri=f"sqlite:///{work}/mlflow.db",
                     ray_cpus=args.ray_cpus, echo=lambda line: print("  " + line, flush=True))
    trials = sorted(res.trials, key=lambda r: r["ended"])
    return {"trials": [{k: r.get(k) for k in ("number", "prompt_len", "lr", "status", "best_score", "epochs_run")}
                       for r in trials],
            "compute": sum(r["epochs_run"] or 0 for r in trials), "best_score": res.best_score,
            "best_prompt_len": res.best_config["prompt_len"], "best_lr": res.best_config["lr"],
            "seconds": time.time() - t0}


def compute_to_target(trials: list[dict], target: float) -> int | None:
    """Trial-epochs spent (in end order) until the best so far reaches ``target``; None if never."""
    spent, best = 0, -math.inf
    for r in trials:
        spent += r["epochs_run"] or 0
        if r["best_score"] is not None:
            best = max(best, r["best_score"])
        if best >= target - 1e-9:  # inclusive: 0.84 - 0.005 is 0.8349999999999999 in floats
            return spent
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
                         epochs=args.pretrain_epochs, max_train=args.max_train, max_eval=args.max_eval, device="cpu",
                         progress=False)
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


def write_json(path: Path, doc: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)


def assemble_row(rows_dir: Path, name: str, task: str, start: str, space: SearchSpace) -> None:
    """Join a row's grid and search parts into ``<name>.json`` once both have finished."""
    parts = {part: rows_dir / f"{name}.{part}.json" for part in ("grid", "search")}
    if (rows_dir / f"{name}.json").exists() or not all(f.exists() for f in parts.values()):
        return
    grid, search = (json.loads(f.read_text()) for f in parts.values())
    write_json(rows_dir / f"{name}.json", {"task": task, "start": start, "epochs": space.epochs, "trials": space.trials,
                                           "grid": grid, "search": search, "target": grid["best_score"] - POINTS})


def settings_key(args) -> dict:
    """What a row's numbers depend on: rows of other settings never mix in one --work."""
    names = ("model", "max_train", "max_eval", "epochs", "trials", "pretrained", "pretrain", "pretrain_epochs")
    return {k: getattr(args, k) for k in names}


def write_reports(doc: dict, results: Path = RESULTS) -> None:
    results.mkdir(parents=True, exist_ok=True)
    (results / "search_cost.json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = [
        "# Search cost: trial-epochs to come within 0.5 points of the grid's best dev score", "",
        f"model {doc['model']}, max_train {doc['max_train']}, max_eval {doc['max_eval']}; grid = the space's "
        "lengths × 3 lrs, each to full epochs; search = TPE + ASHA with the same space and epochs, 1 trial at a "
        "time. Target: search ≤ 35 % of the grid's trial-epochs.", "",
        "| task | start | epochs, trials | grid best (len, lr) | grid trial-epochs | search best (len, lr) "
        "| search trial-epochs (total) | to within 0.5 pt | % of grid |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in doc["rows"]:
        g, s = r["grid"], r["search"]
        pct = f"{100 * r['to_target'] / g['compute']:.0f} %" if r["to_target"] is not None else "not reached"
        lines.append(f"| {r['task']} | {r['start']} | {r.get('epochs', doc['epochs'])}, {r.get('trials', doc['trials'])} "
                     f"| {g['best_score']:.4f} ({g['best_prompt_len']}, {g['best_lr']:g}) "
                     f"| {g['compute']} | {s['best_score']:.4f} ({s['best_prompt_len']}, {s['best_lr']:.3g}) | {s['compute']} "
                     f"| {r['to_target'] if r['to_target'] is not None else '—'} | {pct} |")
    (results / "search_cost.md").write_text("\n".join(lines) + "\n")
    plot(doc, results)


def plot(doc: dict, results: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = doc["rows"]
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(rows)), 3.8), dpi=110)
    xs = range(len(rows))
    vals = [100 * r["to_target"] / r["grid"]["compute"] if r["to_target"] is not None else 0 for r in rows]
    totals = [100 * r["search"]["compute"] / r["grid"]["compute"] for r in rows]
    ax.bar([x - 0.2 for x in xs], vals, width=0.4, label="to within 0.5 pt of grid best")
    ax.bar([x + 0.2 for x in xs], totals, width=0.4, label="whole search", alpha=0.6)
    for x, r in zip(xs, rows):  # an empty bar must not read as "no compute needed"
        if r["to_target"] is None:
            ax.text(x - 0.2, 1, "not\nreached", ha="center", va="bottom", fontsize=7, color="dimgray")
    ax.axhline(35, color="red", linestyle="--", label="target 35 %")
    ax.set_xticks(list(xs), [f"{r['task']}\n{r['start']}" for r in rows])
    ax.set_ylabel("% of the grid's trial-epochs")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(results / "search_cost.png")
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", nargs="+", default=["trec", "rt", "wnut16", "bbc"])
    p.add_argument("--model", default="minilm")
    p.add_argument("--max-train", type=int, default=None)
    p.add_argument("--max-eval", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None, help="default: each space's epochs")
    p.add_argument("--trials", type=int, default=None, help="default: each space's trials")
    p.add_argument("--concurrency", type=int, default=1, help="1 keeps the end order of trials meaningful")
    p.add_argument("--ray-cpus", type=int, default=None)
    p.add_argument("--pretrained", default=None, help="a pre-trained prompt folder for the warm-started runs")
    p.add_argument("--pretrain", action="store_true", help="build a pre-trained prompt first (in --work)")
    p.add_argument("--pretrain-epochs", type=int, default=3)
    p.add_argument("--work", type=Path, default=None,
                   help="folder of finished rows (default: one per settings under the system's temp folder)")
    p.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON, table and plot")
    args = p.parse_args()
    if args.pretrained:
        args.pretrained = str(Path(args.pretrained).resolve())
    key = settings_key(args)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    work = args.work or Path(tempfile.gettempdir()) / f"ptv2-bench-search-cost-{digest}"
    rows_dir = work / "rows"
    rows_dir.mkdir(parents=True, exist_ok=True)
    saved = work / "settings.json"
    if saved.exists() and json.loads(saved.read_text()) != key:
        print(f"error: --work '{work}' holds rows of other settings {saved.read_text().strip()}: pick another --work",
              file=sys.stderr)
        sys.exit(2)
    saved.write_text(json.dumps(key, sort_keys=True))
    os.environ.setdefault("PTV2_HOME", str(work / "home"))
    pre = args.pretrained or (pretrain_prompt(args.model, args.tasks, args, work / "pre") if args.pretrain else None)
    starts = [("fresh", None)] + ([("pre-trained", pre)] if pre else [])
    for task in args.tasks:
        space = load_space(task).with_overrides(trials=args.trials, epochs=args.epochs)
        for start, init in starts:
            name = f"{task}-{start}"
            for part in ("grid", "search"):  # separate claims: two processes can split one row
                if (rows_dir / f"{name}.json").exists() or not claim(rows_dir, f"{name}.{part}"):
                    continue
                print(f"{task} / {start} / {part}", flush=True)
                if part == "grid":
                    result = run_grid(task, args.model, space, args, init)
                else:
                    result = run_one_search(task, args.model, None, args, init,
                                            Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work)))
                write_json(rows_dir / f"{name}.{part}.json", result)
                (rows_dir / f"{name}.{part}.claim").unlink(missing_ok=True)
            assemble_row(rows_dir, name, task, start, space)
    rows = [json.loads((rows_dir / f"{t}-{s}.json").read_text()) for t in args.tasks for s, _ in starts
            if (rows_dir / f"{t}-{s}.json").exists()]
    for row in rows:  # from the kept trials at report time, so every row follows this script's rule
        row["to_target"] = compute_to_target(row["search"]["trials"], row["target"])
    missing = len(args.tasks) * len(starts) - len(rows)
    if rows:
        write_reports({"model": args.model, "max_train": args.max_train, "max_eval": args.max_eval,
                       "epochs": args.epochs, "trials": args.trials, "pretrained": pre is not None,
                       "pretrain_epochs": args.pretrain_epochs if args.pretrain else None, "rows": rows}, args.out)
        print((args.out / "search_cost.md").read_text())
    if missing:
        print(f"{missing} row(s) are still running in another process or unfinished: run again to complete the report")


if __name__ == "__main__":
    main()
