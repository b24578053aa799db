#!/usr/bin/env python3
"""bench/asha_merit.py - the ASHA half-budget question on merit (docs/tune.md 8.5).

`recarena-tune compare` asks whether ASHA's best-so-far val score reaches random search's best val
score within half of random search's budget. Both sides of that are maxima over noisy scores
(docs/tune.md 8.4), so it turns on evaluation draws as much as on the search. This script asks the
same question of the configurations instead: for each pair of finished studies (random search,
ASHA) of one seed it takes

  random@1    random search's incumbent at the end of its budget B (its best completed trial)
  asha@F      ASHA's incumbent once it has spent F x B env steps (F = --fraction, 0.5)
  asha@1      ASHA's incumbent at B
  random@F    random search's incumbent at F x B

(trials counted in the order they finished, as the best-so-far curves of `recarena-tune compare`
count them) and re-validates each incumbent's checkpoint on a larger, fresh val task set
(`recarena-meta --checkpoint-in CK --iters 0`, --tasks, two val streams the studies never used,
averaged). The printed difference asha@F - random@1 on those fresh scores is the merit version of
the bar: ASHA found, in F of the budget, a configuration at least as good as random search's final
one when it is >= 0. The two streams' disagreement gives the re-evaluation's own noise (sd).

Re-evaluations are cached in OUT/reeval.json as in bench/val_noise.py (rerunning skips them).

usage: .venv/bin/python bench/asha_merit.py --out DIR [--meta-bin PATH] [--tasks val:16-79]
           [--fraction 0.5] [--val-act greedy] RANDOM_DIR:ASHA_DIR [RANDOM_DIR:ASHA_DIR ...]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "clients", "python"))
from recarena.tune.report import incumbents  # noqa: E402
from val_noise import reeval  # noqa: E402

# Val stream offsets from the study's --seed that neither the studies nor val_noise.py use.
OFFSETS = (505, 606)


def incumbent(summary: dict, budget: float):
    """The best completed trial among those finished within `budget` cumulative env steps (the
    order of recarena-tune's best-so-far curve); None when none has."""
    best = None
    for steps, inc in incumbents(summary["trials"], maximize=True):
        if steps > budget:
            break
        best = inc
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pairs", nargs="+", help="RANDOM_STUDY_DIR:ASHA_STUDY_DIR, one per seed")
    ap.add_argument("--out", required=True)
    ap.add_argument("--meta-bin", default=os.path.join(os.path.dirname(HERE), "build", "agents", "recarena-meta"))
    ap.add_argument("--tasks", default="val:16-79", help="the fresh val task set (val:16-79)")
    ap.add_argument("--fraction", type=float, default=0.5, help="F: ASHA's share of random's budget (0.5)")
    ap.add_argument("--val-act", default="greedy", help="for spaces that do not fix val-act (greedy)")
    args = ap.parse_args()
    if not 0 < args.fraction <= 1:
        ap.error("--fraction must be in (0, 1]")
    studies = []
    for pair in args.pairs:
        parts = pair.split(":")
        if len(parts) != 2 or not all(parts):
            ap.error(f"'{pair}' is not RANDOM_DIR:ASHA_DIR")
        try:
            studies.append([json.load(open(os.path.join(d, "summary.json"))) | {"dir": d} for d in parts])
        except (OSError, ValueError) as e:
            ap.error(f"{pair}: {e}")
    os.makedirs(args.out, exist_ok=True)
    cache_path = os.path.join(args.out, "reeval.json")
    cache = json.load(open(cache_path)) if os.path.exists(cache_path) else {}

    def fresh(study: dict, trial: dict) -> list:
        key = f"{os.path.abspath(study['dir'])}#{trial['number']}#{args.tasks}#{args.val_act}"
        if key not in cache:
            fixed = study["fixed"]
            ck = os.path.join(study["dir"], "trials", f"{trial['number']:05d}", "checkpoint.safetensors")
            cache[key] = [reeval(args.meta_bin, fixed, trial["params"], ck, int(fixed.get("seed", 0)) + o,
                                 args.tasks, os.path.join(args.out, "scratch"), args.val_act)[0]
                          for o in OFFSETS]
            with open(cache_path + ".part", "w") as f:
                json.dump(cache, f)
            os.replace(cache_path + ".part", cache_path)
        return cache[key]

    rows = []
    for rnd, asha in studies:
        budget = float(rnd["env_steps_total"])
        row = {"env": rnd["fixed"].get("env"), "seed": rnd["fixed"].get("seed"), "budget": budget}
        for name, study, frac in (("random@1", rnd, 1.0), (f"random@{args.fraction:g}", rnd, args.fraction),
                                  (f"asha@{args.fraction:g}", asha, args.fraction), ("asha@1", asha, 1.0)):
            t = incumbent(study, frac * budget)
            scores = fresh(study, t) if t else None
            row[name] = None if t is None else {"trial": t["number"], "value": t["value"], "fresh": scores,
                                                "mean": statistics.fmean(scores)}
        rows.append(row)
    with open(os.path.join(args.out, "merit.json"), "w") as f:
        json.dump(rows, f, indent=1)

    names = ["random@1", f"random@{args.fraction:g}", f"asha@{args.fraction:g}", "asha@1"]
    head = f"asha@{args.fraction:g}"
    print(f"fresh val = {args.tasks}, mean of two new val streams; cell: trial #, study value -> fresh score")
    print("| env | seed | " + " | ".join(names) + f" | {head} - random@1 (fresh) |")
    print("|---" * (3 + len(names)) + "|")
    diffs, noise = {}, []
    for r in rows:
        cells = []
        for n in names:
            c = r[n]
            cells.append("-" if c is None else f"#{c['trial']} {c['value']:.4g} -> {c['mean']:.4g}")
            if c is not None:
                noise.append((c["fresh"][0] - c["fresh"][1]) ** 2 / 2)
        d = (r[head]["mean"] - r["random@1"]["mean"]) if r[head] and r["random@1"] else None
        diffs.setdefault(r["env"], []).append(d)
        print(f"| {r['env']} | {r['seed']} | " + " | ".join(cells) + f" | {'-' if d is None else f'{d:+.4g}'} |")
    for env, ds in diffs.items():
        known = [d for d in ds if d is not None]
        print(f"{env}: {head} at least as good as random@1 on fresh val in {sum(d >= 0 for d in known)} of "
              f"{len(ds)} seeds; median difference "
              f"{statistics.median(known) if known else float('nan'):+.4g}")
    if noise:
        print(f"one fresh evaluation's noise sd (from the two streams): {math.sqrt(statistics.fmean(noise)):.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
