#!/usr/bin/env bash
# The Meta-TS table of docs/agents.md 1.9: for each simulator, learns a Meta-TS prior on the
# train tasks (recarena-ab --learn-prior, Meta-TS run sequentially over train:0-(TRAIN_TASKS-1),
# LEARN_EPISODES episodes of NUM_ENVS users each, credit metric), then runs recarena-ab on
# test:0-(TASKS-1) with common random numbers at every episode, unit task, 21 episodes per user:
# random, lints:credit=metric (the control), metats from the learnt prior, the oracle. Prints
# R@0, R@5w (mean of R@3..R@7), R@20 and the auc with 95% bootstrap CIs over tasks, and each
# arm's paired difference from LinTS (metats - lints is the row that matters).
# Usage: bench/metats_table.sh [OUT=out/metats] [TASKS=32] [NUM_ENVS=16] [TRAIN_TASKS=64]
#        [LEARN_EPISODES=5]     (SIMS="ECommerce-v1 Ads-v1" by default)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="${1:-$root/out/metats}"
tasks="${2:-32}"
envs="${3:-16}"
train="${4:-64}"
leps="${5:-5}"
build="${RECARENA_BUILD_DIR:-$root/build}"
sims="${SIMS:-ECommerce-v1 Ads-v1}"
mkdir -p "$out"
for sim in $sims; do
  echo "== $sim: learning the prior on train:0-$((train - 1))" >&2
  start=$(date +%s)
  "$build/agents/recarena-ab" --env "$sim" --learn-prior "$out/prior-$sim.txt" --quiet \
    --arms metats:prior=none:credit=metric --task-ids "train:0-$((train - 1))" \
    --num-envs "$envs" --episodes "$leps" >&2
  echo "   $(( $(date +%s) - start )) s" >&2
  echo "== $sim: recarena-ab on test:0-$((tasks - 1))" >&2
  start=$(date +%s)
  "$build/agents/recarena-ab" --env "$sim" --task-ids "test:0-$((tasks - 1))" --num-envs "$envs" \
    --episodes 21 --curve-episodes 0,20 --windows 3-7 --unit task --quiet \
    --arms "random,lints:credit=metric,metats:prior=$out/prior-$sim.txt:credit=metric:name=metats,oracle" \
    --control lints:credit=metric --json "$out/ab-$sim.json" > "$out/ab-$sim.txt"
  echo "   $(( $(date +%s) - start )) s" >&2
done
python3 - "$out" $sims <<'PY'
import json, os, sys
out, sims = sys.argv[1], sys.argv[2:]
f = lambda v: "-" if v is None else ("%.3g" % v if abs(v) < 10 else "%.1f" % v)
def cell(x):
    d = x["vs_control"]
    s = "%s [%s, %s]" % (f(x["mean"]), f(x["lo"]), f(x["hi"]))
    return s + ("; %+.3g [%s, %s]" % (d["diff"], f(d["lo"]), f(d["hi"])) if d else "")
print("\nmean [95% CI]; paired difference from lints:credit=metric [95% CI]\n")
print("| sim | arm | R@0 | R@5w (3-7) | R@20 | auc (0-20) |")
print("|---|---|---|---|---|---|")
for sim in sims:
    path = f"{out}/ab-{sim}.json"
    if not os.path.exists(path):
        continue
    for a in json.load(open(path))["arms"]:
        c = {p["k"]: p for p in a["curve"]}
        w = {x["name"]: x for x in a["windows"]}
        print(f"| {sim} | {a['name']} | {cell(c[0])} | {cell(w['R@5w'])} | {cell(c[20])} | {cell(w['auc'])} |")
PY
