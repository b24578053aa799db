#!/usr/bin/env python3
"""bench/expert_fraction.py REPORT ARM...: line 1 of the meta-RL bar, each arm's gain as a
fraction of the per-task expert's.

For a recarena-ab report with an `expert:dir=...` arm and `random` (docs/meta.md 6.18), prints
per ARM and K in 0, 1, 5, 20 (those on the report's curve)

    f_K = mean_t (arm_t,K - random_t,K) / mean_t (expert_t,K - random_t,K)

over the report's tasks t (a ratio of means: a task where the expert gains little does not blow
up), with a 95% percentile interval from 2000 bootstrap resamples of the tasks (seed 1), the
same resample for numerator and denominator; f_K to three places, so that a figure near the bar's
0.85 or 0.90 is not rounded across it. Per-task values are read as recarena.compare reads
them (the package must be importable: the project's .venv). Exit 2 with a message on a bad
argument or report.

    bench/expert_fraction.py REPORT ARM... --tasks-from OTHER.json [--tasks-from ...] [--across-seeds]

pools the tasks of other runs of the same arms with REPORT's (line 1 read on more tasks as more
experts are trained): every run must play the same users (env, seed, users per task, episodes,
unit, sim config, curve) on tasks no other run has; the arms kept are those in every run, each
run's expert arm counting as the one expert arm whatever its directory. With --across-seeds the
runs may also differ in seed: replications from other training and A/B seeds (docs/meta.md 6.43,
6.44), each run's arms still measured against its own random and expert on its own users, the
pool over every run's tasks.

    bench/expert_fraction.py REPORT ARM... --expert NAME

divides by the expert arm NAME, for a report that plays experts of several budgets side by side
(bench/expert_budget.py chooses which one line 1 reads against).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from recarena.compare import _RUN_KEYS, _per_task
from recarena.plots import load_report

KS = (0, 1, 5, 20)
# what makes two recarena-ab runs play the same users on a task, whatever their tasks
SAME_USERS = tuple(k for k in _RUN_KEYS if k != "task_ids")


def _is_expert(name: str) -> bool:
    """Whether a report's arm is the per-task expert (`expert:dir=DIR`, named by its spec)."""
    return name.startswith("expert")


def _expert_named(report: dict) -> dict:
    """The report's arms by name, its expert arm (any directory) under the name 'expert'."""
    return {("expert" if _is_expert(a["name"]) else a["name"]): a for a in report["arms"]}


def pool_tasks(reports: list, across_seeds: bool = False) -> dict:
    """One report holding the tasks of all ``reports``, with the arms every one of them has
    (with ``across_seeds``, runs from other seeds too)."""
    first = reports[0]
    keys = [k for k in SAME_USERS if not (across_seeds and k == "seed")]
    for other in reports[1:]:
        differ = [k for k in keys if first.get(k) != other.get(k)]
        if differ:
            raise ValueError(f"--tasks-from: the runs differ in {', '.join(differ)}")
    for r in reports:
        if sum(_is_expert(a["name"]) for a in r["arms"]) != 1:
            raise ValueError("--tasks-from: every run must have exactly one expert arm")
    arms = [_expert_named(r) for r in reports]
    names = [n for n in arms[0] if all(n in a for a in arms[1:])]
    seen = set()
    for a in arms:
        tasks = {int(row["task"]) for row in a[names[0]]["per_task"]} if names else set()
        if tasks & seen:
            raise ValueError(f"--tasks-from: task {min(tasks & seen)} is in more than one run")
        seen |= tasks
    return {**first, "arms": [{"name": n, "per_task": [row for a in arms for row in a[n]["per_task"]]}
                              for n in names]}


def expert_arm(report: dict, name: str | None = None) -> str:
    """The expert arm line 1 divides by: ``name`` (which must be an expert arm), else the
    report's only one; a report with several (experts of several budgets) must name one."""
    experts = [a["name"] for a in report["arms"] if _is_expert(a["name"])]
    if name is not None:
        if name not in experts:
            raise ValueError(f"'{name}' is not an expert arm of the report "
                             f"(experts: {', '.join(experts) or 'none'})")
        return name
    if not experts:
        raise ValueError("the report has no expert arm (recarena-ab --arms ...,expert:dir=DIR)")
    if len(experts) > 1:
        raise ValueError(f"the report has {len(experts)} expert arms ({', '.join(experts)}): "
                         "name the one to divide by with --expert")
    return experts[0]


def fractions(report: dict, arm: str, expert: str | None = None, resamples: int = 2000,
              seed: int = 1) -> list:
    """[(K, f_K, lo, hi)] for the K of KS on the report's curve, against ``expert``
    (expert_arm's choice)."""
    expert = expert_arm(report, expert)
    out, idx = [], None
    for k in KS:
        if k not in report["curve_k"]:
            continue
        base = _per_task(report, "random", f"R@{k}")
        tasks = sorted(base)
        if idx is None:
            idx = np.random.default_rng(seed).integers(0, len(tasks), size=(resamples, len(tasks)))
        def gain(name):
            values = _per_task(report, name, f"R@{k}")
            return np.array([values[t] - base[t] for t in tasks])
        mine, best = gain(arm), gain(expert)
        boot = mine[idx].mean(axis=1) / best[idx].mean(axis=1)
        out.append((k, mine.mean() / best.mean(), *np.percentile(boot, [2.5, 97.5])))
    return out


def main(argv: list) -> int:
    ap = argparse.ArgumentParser(prog="bench/expert_fraction.py",
                                 description="line 1: each arm's gain as a fraction of the expert's")
    ap.add_argument("report")
    ap.add_argument("arms", nargs="+", metavar="ARM")
    ap.add_argument("--tasks-from", action="append", default=[], metavar="OTHER.json",
                    help="pool the tasks of another run of the same arms (repeatable)")
    ap.add_argument("--across-seeds", action="store_true",
                    help="with --tasks-from: the runs may differ in seed (replications)")
    ap.add_argument("--expert", metavar="NAME",
                    help="the expert arm to divide by, when the report has several (one per budget)")
    args = ap.parse_args(argv)
    if args.across_seeds and not args.tasks_from:
        ap.error("--across-seeds pools runs: give them with --tasks-from")
    if args.expert and args.tasks_from:
        ap.error("--expert picks one of a report's experts; --tasks-from pools runs with one each")
    try:
        report = load_report(args.report)
        if args.tasks_from:
            report = pool_tasks([report, *map(load_report, args.tasks_from)], args.across_seeds)
        table = {arm: fractions(report, arm, args.expert) for arm in args.arms}
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"expert_fraction: {args.report}: {e}", file=sys.stderr)
        return 2
    print(f"fraction of the expert's gain over random, {len(report['arms'][0]['per_task'])} tasks "
          f"(95% bootstrap intervals)")
    for arm, rows in table.items():
        print(f"{arm:<14} " + "  ".join(f"R@{k} {f:.3f} [{lo:.2f}, {hi:.2f}]" for k, f, lo, hi in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
