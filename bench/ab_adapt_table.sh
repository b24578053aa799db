#!/usr/bin/env bash
# The adaptation table of docs/agents.md section 2.8: for each simulator, trains the target
# policy briefly on the sim's default task, then runs recarena-ab on test tasks with common
# random numbers at every episode and prints R@0, R@5w (mean of R@3..R@7), R@20 and the area
# under R@K (auc), each with its 95% bootstrap CI over tasks (unit task), for random (control),
# popularity, LinUCB, LinTS on the sim's metric, the target fine-tuning as it plays, the same
# target frozen (lr = 0) and the myopic oracle. JSON/CSV reports and checkpoints land in OUT
# (checkpoints are reused when present).
# Usage: bench/ab_adapt_table.sh [OUT=out/adapt] [TRAIN_STEPS=200000] [TASKS=32] [NUM_ENVS=16]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="${1:-$root/out/adapt}"
steps="${2:-200000}"
tasks="${3:-32}"
envs="${4:-16}"
build="${RECARENA_BUILD_DIR:-$root/build}"
sims="${SIMS:-ECommerce-v1 Ads-v1 News-v1 Content-v1}"
mkdir -p "$out"
for sim in $sims; do
  ckpt="$out/target-$sim.safetensors"
  if [ ! -f "$ckpt" ]; then
    echo "== $sim: training the target policy ($steps env steps)" >&2
    "$build/agents/recarena-target" --env "$sim" --steps "$steps" --num-envs 128 --progress 60 \
      --checkpoint-out "$ckpt" --eval-episodes 256 2>&1 | tail -n 2 >&2
  fi
  echo "== $sim: recarena-ab on test:0-$((tasks - 1))" >&2
  start=$(date +%s)
  "$build/agents/recarena-ab" --env "$sim" --task-ids "test:0-$((tasks - 1))" --num-envs "$envs" \
    --episodes 21 --curve-episodes 0,20 --windows 3-7 --unit task --quiet \
    --arms "random,popularity,linucb,lints:credit=metric,target:checkpoint=$ckpt:name=target,target:checkpoint=$ckpt:lr=0:name=target-frozen,oracle" \
    --json "$out/ab-$sim.json" --csv "$out/ab-$sim.csv" > "$out/ab-$sim.txt"
  echo "   $(( $(date +%s) - start )) s" >&2
done
python3 - "$out" $sims <<'PY'
import json, sys
out, sims = sys.argv[1], sys.argv[2:]
def cell(x):
    f = lambda v: "-" if v is None else ("%.3g" % v if abs(v) < 10 else "%.1f" % v)
    return "%s [%s, %s]" % (f(x["mean"]), f(x["lo"]), f(x["hi"]))
print("| sim | arm | R@0 | R@5w (3-7) | R@20 | auc (0-20) | auc vs random: diff, p |")
print("|---|---|---|---|---|---|---|")
for sim in sims:
    r = json.load(open(f"{out}/ab-{sim}.json"))
    for a in r["arms"]:
        c = {p["k"]: p for p in a["curve"]}
        w = {x["name"]: x for x in a["windows"]}
        vs = w["auc"]["vs_control"]
        d = "(control)" if vs is None else "%+.3g, %.4f" % (vs["diff"], vs["p"])
        print(f"| {sim} | {a['name']} | {cell(c[0])} | {cell(w['R@5w'])} | {cell(c[20])} | "
              f"{cell(w['auc'])} | {d} |")
PY
