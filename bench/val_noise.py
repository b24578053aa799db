#!/usr/bin/env python3
"""bench/val_noise.py - how much of a search study's spread of val scores is evaluation noise
(docs/tune.md 8.4). It re-validates every completed trial's best-on-val checkpoint of finished
recarena-tune search studies (random search: no pruner, all trials complete) with
`recarena-meta --checkpoint-in CK --iters 0` on fresh val streams (other --seed) of the same val
tasks and on a larger val task set, and prints per study:

  reliability     the correlation between two evaluations of the same checkpoints on independent
                  streams (test-retest): the share of one evaluation's variance that is the trials'
                  own merit; 1 - it is evaluation noise
  noise sd        the sd of one evaluation around the checkpoint's mean, sqrt(mean (a-b)^2 / 2)
  between sd      the sd over trials of the checkpoints' merit, sqrt(cov(a, b))
  own excess      the mean over trials of a trial's own value minus its re-evaluation on fresh
                  streams (the study's streams' level against fresh ones, and each trial's best-of-
                  its-val-points selection)
  best's excess   the same for the study's best trial; best's curse = best's excess - own excess:
                  the winner's curse of "best of the study" (a maximum over noisy scores)
  best's rank     the study's best trial's rank among its trials on the larger task set
  rho             Spearman's rank correlation of the study's values and of its trials' first-rung
                  val score with the mean of the larger task set's two evaluations

Nothing is written into the studies' directories: re-evaluations run in a scratch directory under
--out and are cached there as JSON (rerunning skips what is cached). The trials' fixed keys and
hyperparameters are passed as the trial had them, with --seed and --val-tasks replaced.

usage: .venv/bin/python bench/val_noise.py --out DIR [--meta-bin PATH] [--small val:0-3]
           [--large val:0-15] [--rung 3] [--val-act greedy] STUDY_DIR [STUDY_DIR ...]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
from recarena.tune.report import first_val_at, spearman  # noqa: E402

# Fresh val streams: offsets from the study's --seed (val streams are drawn from --seed,
# docs/meta.md 3). Two for the small task set, two others for the large one, so that the large
# set's tasks shared with the small one are not played on the same streams.
SMALL_OFFSETS = (101, 202)
LARGE_OFFSETS = (303, 404)
# Keys a re-evaluation must not inherit from the trial (it trains nothing and writes nothing).
DROP = {"budget-steps", "iters", "val-every", "seed", "val-tasks"}


def reeval(meta: str, fixed: dict, params: dict, ck: str, seed: int, tasks: str, scratch: str,
           val_act: str):
    """Score of checkpoint `ck` on val `tasks` with val streams of `seed`, and its wall seconds."""
    os.makedirs(scratch, exist_ok=True)
    mpath = os.path.join(scratch, "m.jsonl")
    if os.path.exists(mpath):
        os.remove(mpath)
    cmd = [meta]
    for k, v in list(fixed.items()) + list(params.items()):
        if k not in DROP:
            cmd += [f"--{k}", str(v)]
    if "val-act" not in fixed:
        cmd += ["--val-act", val_act]
    cmd += ["--seed", str(seed), "--val-tasks", tasks, "--checkpoint-in", ck, "--iters", "0",
            "--metrics", mpath, "--quiet"]
    t0 = time.monotonic()
    p = subprocess.run(cmd, cwd=scratch, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise SystemExit(f"val_noise: {' '.join(cmd)} exited {p.returncode}: {p.stderr[-500:]}")
    with open(mpath) as f:
        vals = [json.loads(l) for l in f if '"val"' in l]
    return vals[0]["score"], wall


def pearson(x, y):
    """Pearson's correlation; nan when either side is constant."""
    try:
        return statistics.correlation(x, y)
    except statistics.StatisticsError:
        return float("nan")


def study_stats(rows: list, rung: int) -> dict:
    v = [r["value"] for r in rows]
    a, b = [r["small"][0] for r in rows], [r["small"][1] for r in rows]
    c, d = [r["large"][0] for r in rows], [r["large"][1] for r in rows]
    large = [(x + y) / 2 for x, y in zip(c, d)]
    best = max(range(len(rows)), key=lambda i: v[i])
    r3 = [first_val_at(r["intermediate"], rung) for r in rows]
    out = {
        "trials": len(rows),
        "rel_small": pearson(a, b), "rel_large": pearson(c, d),
        "noise_small": math.sqrt(statistics.fmean([(x - y) ** 2 for x, y in zip(a, b)]) / 2),
        "noise_large": math.sqrt(statistics.fmean([(x - y) ** 2 for x, y in zip(c, d)]) / 2),
        "between_small": math.sqrt(max(statistics.covariance(a, b), 0.0)),
        "between_large": math.sqrt(max(statistics.covariance(c, d), 0.0)),
        "own_excess": statistics.fmean([x - (y + z) / 2 for x, y, z in zip(v, a, b)]),
        "best_excess": v[best] - (a[best] + b[best]) / 2,
        "best_curse": (v[best] - (a[best] + b[best]) / 2)
                      - statistics.fmean([x - (y + z) / 2 for x, y, z in zip(v, a, b)]),
        "best_rank_large": 1 + sorted(range(len(rows)), key=lambda i: -large[i]).index(best),
        "rho_value_large": spearman(v, large),
        "rho_value_small_fresh": spearman(v, [(x + y) / 2 for x, y in zip(a, b)]),
        "rho_rung_value": spearman(r3, v) if None not in r3 else None,
        "rho_rung_large": spearman(r3, large) if None not in r3 else None,
    }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("studies", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--meta-bin", default=os.path.join(ROOT, "build", "agents", "recarena-meta"))
    ap.add_argument("--small", default="val:0-3")
    ap.add_argument("--large", default="val:0-15")
    ap.add_argument("--rung", type=int, default=3)
    ap.add_argument("--val-act", default="greedy",
                    help="for studies whose space does not fix val-act: those made before recarena-meta "
                         "had --val-act validated greedy play, its only kind then (greedy)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    cache_path = os.path.join(args.out, "reeval.json")
    cache = json.load(open(cache_path)) if os.path.exists(cache_path) else {}
    walls = {"small": [], "large": []}
    table = []
    for sd in args.studies:
        summ = json.load(open(os.path.join(sd, "summary.json")))
        fixed = summ["fixed"]
        seed = int(fixed.get("seed", 0))
        rows = []
        for t in summ["trials"]:
            if t["state"] != "COMPLETE":
                continue
            ck = os.path.join(sd, "trials", f"{t['number']:05d}", "checkpoint.safetensors")
            key = f"{os.path.abspath(sd)}#{t['number']}#{args.small}#{args.large}#{args.val_act}"
            if key not in cache:
                rec = {"small": [], "large": []}
                for kind, tasks, offs in (("small", args.small, SMALL_OFFSETS),
                                          ("large", args.large, LARGE_OFFSETS)):
                    for o in offs:
                        s, w = reeval(args.meta_bin, fixed, t["params"], ck, seed + o, tasks,
                                      os.path.join(args.out, "scratch"), args.val_act)
                        rec[kind].append(s)
                        walls[kind].append(w)
                cache[key] = rec
                with open(cache_path + ".part", "w") as f:
                    json.dump(cache, f)
                os.replace(cache_path + ".part", cache_path)
            rows.append({"value": t["value"], "intermediate": t["intermediate"], **cache[key]})
        st = study_stats(rows, args.rung)
        st["study"] = sd
        st["env"] = fixed.get("env")
        st["seed"] = seed
        table.append(st)
    with open(os.path.join(args.out, "stats.json"), "w") as f:
        json.dump(table, f, indent=1)

    def fmt(x, p=2):
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{p}f}"

    cols = [("rel_small", 2), ("rel_large", 2), ("noise_small", 1), ("between_small", 1),
            ("noise_large", 1), ("between_large", 1), ("own_excess", 1), ("best_excess", 1), ("best_curse", 1),
            ("best_rank_large", 0), ("rho_value_large", 2), ("rho_rung_value", 2),
            ("rho_rung_large", 2)]
    print(f"small = {args.small}, large = {args.large}, rung = iteration {args.rung}")
    print("| env | seed | trials | " + " | ".join(c for c, _ in cols) + " |")
    print("|---" * (3 + len(cols)) + "|")
    for env in sorted({s["env"] for s in table}):
        sub = [s for s in table if s["env"] == env]
        for s in sub:
            print(f"| {env} | {s['seed']} | {s['trials']} | "
                  + " | ".join(fmt(s[c], p) for c, p in cols) + " |")
        med = {c: statistics.median([s[c] for s in sub if s[c] is not None]) for c, _ in cols}
        print(f"| {env} | median | - | " + " | ".join(fmt(med[c], p) for c, p in cols) + " |")
    for kind in ("small", "large"):
        if walls[kind]:
            print(f"re-evaluation wall time, {kind} task set: median {statistics.median(walls[kind]):.2f} s "
                  f"over {len(walls[kind])} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
