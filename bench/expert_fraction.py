#!/usr/bin/env python3
"""bench/expert_fraction.py REPORT ARM...: line 1 of the meta-RL bar, each arm's gain as a
fraction of the per-task expert's.

For a recarena-ab report with an `expert:dir=...` arm and `random` (docs/meta.md 6.18), prints
per ARM and K in 0, 1, 5, 20 (those on the report's curve)

    f_K = mean_t (arm_t,K - random_t,K) / mean_t (expert_t,K - random_t,K)

over the report's tasks t (a ratio of means: a task where the expert gains little does not blow
up), with a 95% percentile interval from 2000 bootstrap resamples of the tasks (seed 1), the
same resample for numerator and denominator. Per-task values are read as recarena.compare reads
them (the package must be importable: the project's .venv). Exit 2 with a message on a bad
argument or report.
"""
from __future__ import annotations

import sys

import numpy as np

from recarena.compare import _per_task
from recarena.plots import load_report

KS = (0, 1, 5, 20)


def fractions(report: dict, arm: str, resamples: int = 2000, seed: int = 1) -> list:
    """[(K, f_K, lo, hi)] for the K of KS on the report's curve."""
    experts = [a["name"] for a in report["arms"] if a["name"].startswith("expert")]
    if not experts:
        raise ValueError("the report has no expert arm (recarena-ab --arms ...,expert:dir=DIR)")
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
        mine, best = gain(arm), gain(experts[0])
        boot = mine[idx].mean(axis=1) / best[idx].mean(axis=1)
        out.append((k, mine.mean() / best.mean(), *np.percentile(boot, [2.5, 97.5])))
    return out


def main(argv: list) -> int:
    if len(argv) < 2:
        print("usage: bench/expert_fraction.py REPORT ARM...", file=sys.stderr)
        return 2
    try:
        report = load_report(argv[0])
        table = {arm: fractions(report, arm) for arm in argv[1:]}
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"expert_fraction: {argv[0]}: {e}", file=sys.stderr)
        return 2
    print(f"fraction of the expert's gain over random, {len(report['arms'][0]['per_task'])} tasks "
          f"(95% bootstrap intervals)")
    for arm, rows in table.items():
        print(f"{arm:<14} " + "  ".join(f"R@{k} {f:.2f} [{lo:.2f}, {hi:.2f}]" for k, f, lo, hi in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
