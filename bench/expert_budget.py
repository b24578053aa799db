#!/usr/bin/env python3
"""bench/expert_budget.py REPORT EXPERT EXPERT...: which budget of the per-task experts line 1
divides by (docs/agents.md, "How long an expert trains"; docs/meta.md 6.51).

REPORT is a recarena-ab report that plays the same recipe's experts at increasing env-step budgets
side by side with `random` (e.g. `--arms expert:dir=A:name=expert300k,expert:dir=B:name=expert1200k,
random`), the EXPERT arms named in increasing budget. For each neighbouring pair (a, b) it prints b's
gain over random as a fraction of a's (bench/expert_fraction.py's ratio of means with its 95%
bootstrap interval, to three places: the rule turns on whether 1 is inside) at every K of 0, 1,
5, 20 on the curve. The rule:

    the budget grows while the next one's gain ratio has its interval above 1 at R@0 or at R@5;
    line 1's denominator is b of the first pair whose interval reaches 1 (or below) at both.

b rather than a because it is the stronger of two experts that training no longer tells apart.
When every pair still gains, the last expert is named, not converged: line 1 read against it is
an upper bound, higher than against a converged expert. Exit 2 with a message on a bad argument or report.
"""
from __future__ import annotations

import argparse
import sys

from expert_fraction import expert_arm, fractions
from recarena.plots import load_report

DECIDING_K = (0, 5)  # line 1's R@0 and R@5


def pair_ratios(report: dict, smaller: str, larger: str) -> list:
    """[(K, ratio, lo, hi)]: the larger budget's gain over random as a fraction of the smaller's."""
    expert_arm(report, larger)  # both must be experts: a typo for 'random' would read as a budget
    return fractions(report, larger, expert=smaller)


def still_gains(rows: list) -> bool:
    """Whether the larger budget's interval is above 1 at R@0 or at R@5."""
    return any(lo > 1.0 for k, _, lo, _ in rows if k in DECIDING_K)


def first_converged(pairs: list) -> int | None:
    """Index of the first (smaller, larger, rows) whose larger budget no longer gains, or None."""
    return next((i for i, (_, _, rows) in enumerate(pairs) if not still_gains(rows)), None)


def main(argv: list) -> int:
    ap = argparse.ArgumentParser(prog="bench/expert_budget.py",
                                 description="line 1's denominator: the experts' budget where training stops gaining")
    ap.add_argument("report")
    ap.add_argument("experts", nargs="+", metavar="EXPERT", help="expert arms in increasing budget (at least 2)")
    args = ap.parse_args(argv)
    if len(args.experts) < 2:
        ap.error("give at least two expert arms, in increasing budget")
    try:
        report = load_report(args.report)
        missing = [k for k in DECIDING_K if k not in report["curve_k"]]
        if missing:  # a property of the report: checked once, before any pair's bootstrap
            raise ValueError(f"the report's curve lacks K {', '.join(map(str, missing))} (the rule reads R@0 and R@5)")
        pairs = [(a, b, pair_ratios(report, a, b)) for a, b in zip(args.experts, args.experts[1:])]
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"expert_budget: {args.report}: {e}", file=sys.stderr)
        return 2
    print(f"gain over random of each budget as a fraction of the one before, "
          f"{len(report['arms'][0]['per_task'])} tasks (95% bootstrap intervals)")
    for smaller, larger, rows in pairs:
        print(f"{larger} / {smaller}: " + "  ".join(f"R@{k} {r:.3f} [{lo:.3f}, {hi:.3f}]" for k, r, lo, hi in rows))
    i = first_converged(pairs)
    if i is None:
        print(f"denominator: {pairs[-1][1]}, not converged (it still gains at R@0 or R@5 over the budget "
              "before): line-1 fractions against it are upper bounds")
        return 0
    print(f"denominator: {pairs[i][1]} (its gain over the budget before has an interval reaching 1 at R@0 and R@5)")
    later = [larger for _, larger, rows in pairs[i + 1:] if still_gains(rows)]
    if later:
        print(f"note: {', '.join(later)} still gains beyond it: the rule stopped on noise; read both")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
