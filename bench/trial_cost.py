#!/usr/bin/env python3
"""bench/trial_cost.py - what validation costs a recarena-tune study in wall time (docs/tune.md 8.4).
Validation env steps are not counted in a budget (docs/meta.md 4), so a larger val task set is free
in env steps but not in time. From the trials' own metrics.jsonl (train lines carry the run's
wall_s) it prints per study: the median seconds of one meta-iteration (between two train lines
with no val point between them), the median seconds of one validation (the gap across a val point
minus one iteration), the ratio of the two (measured within the same runs, so it does not depend on
how loaded the machine was as much as either figure does), and the study's trial-seconds (the sum
of its trials' wall times, recarena-tune's summary.json).

usage: .venv/bin/python bench/trial_cost.py STUDY_DIR [STUDY_DIR ...]
"""
from __future__ import annotations

import json
import os
import statistics
import sys


def trial_times(path: str):
    """(iteration seconds, validation seconds) lists of one trial's metrics file."""
    its, gaps = [], []
    prev_wall, val_between = None, False
    with open(path) as f:
        for line in f:
            d = json.loads(line)
            if d["kind"] == "val":
                val_between = prev_wall is not None
            elif d["kind"] == "train":
                if prev_wall is not None:
                    (gaps if val_between else its).append(d["wall_s"] - prev_wall)
                prev_wall, val_between = d["wall_s"], False
    return its, gaps


def main(argv) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    print("| study | trials | s per iteration | s per validation | validation / iteration | trial-seconds |")
    print("|---|---|---|---|---|---|")
    for sd in argv:
        summ = json.load(open(os.path.join(sd, "summary.json")))
        its, gaps = [], []
        for t in summ["trials"]:
            m = os.path.join(sd, "trials", f"{t['number']:05d}", "metrics.jsonl")
            if os.path.exists(m):
                i, g = trial_times(m)
                its += i
                gaps += g
        it = statistics.median(its)
        val = statistics.median(gaps) - it
        wall = sum(t["wall_s"] or 0 for t in summ["trials"])
        print(f"| {sd} | {len(summ['trials'])} | {it:.3f} | {val:.3f} | {val / it:.1f} | {wall:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
