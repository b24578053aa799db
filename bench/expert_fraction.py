#!/usr/bin/env python3
"""bench/expert_fraction.py REPORT ARM...: line 1 of the meta-RL bar, each arm's gain as a
fraction of the per-task expert's.

For a recarena-ab report with an `expert:dir=...` arm and `random` (docs/meta.md 6.18), prints
per ARM and K in 0, 1, 5, 20 (those on the report's curve)

    f_K = mean_t (arm_t,K - random_t,K) / mean_t (expert_t,K - random_t,K)

over the report's tasks t (a ratio of means: a task where the expert gains little does not blow
up), with a 95% percentile interval from 2000 bootstrap resamples of the tasks (seed 1), the
same resample for numerator and denominator. Exit 2 with a message on a bad argument or report.
"""
from __future__ import annotations

import json
import sys

import numpy as np

KS = (0, 1, 5, 20)


def fractions(report: dict, arm: str, resamples: int = 2000, seed: int = 1) -> list:
    """[(K, f_K, lo, hi)] for the K of KS on the report's curve."""
    curves = {a["name"]: {row["task"]: row["curve"] for row in a["per_task"]} for a in report["arms"]}
    experts = [n for n in curves if n.startswith("expert")]
    for need, have in (("random", "random" in curves), ("an expert arm", bool(experts)), (f"arm '{arm}'", arm in curves)):
        if not have:
            raise ValueError(f"the report has no {need} (it has {', '.join(curves)})")
    tasks = sorted(curves["random"])
    rows = {n: np.array([curves[n][t] for t in tasks], dtype=float) for n in ("random", experts[0], arm)}
    idx = np.random.default_rng(seed).integers(0, len(tasks), size=(resamples, len(tasks)))
    out = []
    for k in KS:
        if k not in report["curve_k"]:
            continue
        j = report["curve_k"].index(k)
        gain = rows[arm][:, j] - rows["random"][:, j]
        best = rows[experts[0]][:, j] - rows["random"][:, j]
        boot = gain[idx].mean(axis=1) / best[idx].mean(axis=1)
        out.append((k, gain.mean() / best.mean(), *np.percentile(boot, [2.5, 97.5])))
    return out


def main(argv: list) -> int:
    if len(argv) < 2:
        print("usage: bench/expert_fraction.py REPORT ARM...", file=sys.stderr)
        return 2
    try:
        with open(argv[0]) as f:
            report = json.load(f)
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
