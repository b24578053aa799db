#!/usr/bin/env bash
# The adaptation table of docs/agents.md section 2.9: for each simulator, trains the target
# policy briefly on the sim's default task, then runs recarena-ab on test tasks with common
# random numbers at every episode and prints R@0, R@5w (mean of R@3..R@7), R@20, the area under
# R@K (auc) and the frozen evaluation (2 fresh episodes per user after the 21, learning off), each
# with its 95% bootstrap CI over tasks (unit task), for random (control), popularity, LinUCB,
# LinTS on the sim's metric, the target fine-tuning on-policy as it plays, the same target frozen
# (lr = 0) and the myopic oracle. Then per-task experts (scripts/train_experts.sh: the default-task
# checkpoint trained EXPERT_STEPS more env steps on each of the first EXPERT_TASKS test tasks) and
# a second run on those tasks with the expert arm, so the report gives each arm's fraction of the
# expert's gain beside the oracle's. Reports, checkpoints and experts land in OUT (reused when
# present and, for experts, trained under the same command).
# Usage: bench/ab_adapt_table.sh [OUT=out/adapt] [TRAIN_STEPS=200000] [TASKS=32] [NUM_ENVS=16]
#        [EXPERT_TASKS=8] [EXPERT_STEPS=50000]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="${1:-$root/out/adapt}"
steps="${2:-200000}"
tasks="${3:-32}"
envs="${4:-16}"
etasks="${5:-8}"
esteps="${6:-50000}"
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
  tgt="target:checkpoint=$ckpt:name=target,target:checkpoint=$ckpt:lr=0:name=target-frozen"
  echo "== $sim: experts on test:0-$((etasks - 1)) ($esteps env steps each, from the checkpoint)" >&2
  start=$(date +%s)
  "$root/scripts/train_experts.sh" --dir "$out/experts-$sim" --env "$sim" --tasks "$etasks" \
    --steps "$esteps" --num-envs 64 --bin "$build/agents/recarena-target" -- --checkpoint-in "$ckpt" >&2
  echo "   $(( $(date +%s) - start )) s" >&2
  echo "== $sim: recarena-ab with the experts on test:0-$((etasks - 1))" >&2
  start=$(date +%s)
  "$build/agents/recarena-ab" --env "$sim" --task-ids "test:0-$((etasks - 1))" --num-envs "$envs" \
    --episodes 21 --frozen-episodes 2 --curve-episodes 0,20 --windows 3-7 --unit task --quiet \
    --arms "random,$tgt,expert:dir=$out/experts-$sim,oracle" \
    --json "$out/abx-$sim.json" --csv "$out/abx-$sim.csv" > "$out/abx-$sim.txt"
  echo "   $(( $(date +%s) - start )) s" >&2
  echo "== $sim: recarena-ab on test:0-$((tasks - 1))" >&2
  start=$(date +%s)
  "$build/agents/recarena-ab" --env "$sim" --task-ids "test:0-$((tasks - 1))" --num-envs "$envs" \
    --episodes 21 --frozen-episodes 2 --curve-episodes 0,20 --windows 3-7 --unit task --quiet \
    --arms "random,popularity,linucb,lints:credit=metric,$tgt,oracle" \
    --json "$out/ab-$sim.json" --csv "$out/ab-$sim.csv" > "$out/ab-$sim.txt"
  echo "   $(( $(date +%s) - start )) s" >&2
done
python3 - "$out" $sims <<'PY'
import json, os, sys
out, sims = sys.argv[1], sys.argv[2:]
f = lambda v: "-" if v is None else ("%.3g" % v if abs(v) < 10 else "%.1f" % v)
def cell(x):
    return "%s [%s, %s]" % (f(x["mean"]), f(x["lo"]), f(x["hi"]))
for prefix, title in (("ab", "all test tasks"), ("abx", "the expert's tasks")):
    print(f"\n{title}\n")
    print("| sim | arm | R@0 | R@5w (3-7) | R@20 | auc (0-20) | frozen (21-22) | auc of oracle's gain | auc of expert's gain |")
    print("|---|---|---|---|---|---|---|---|---|")
    for sim in sims:
        path = f"{out}/{prefix}-{sim}.json"
        if not os.path.exists(path):
            continue
        r = json.load(open(path))
        for a in r["arms"]:
            c = {p["k"]: p for p in a["curve"]}
            w = {x["name"]: x for x in a["windows"]}
            print(f"| {sim} | {a['name'].split(':name=')[-1] if ':name=' in a['name'] else a['name'].split(':dir=')[0]} | "
                  f"{cell(c[0])} | {cell(w['R@5w'])} | {cell(c[20])} | {cell(w['auc'])} | {cell(w['frozen'])} | "
                  f"{f(w['auc']['of_oracle'])} | {f(w['auc']['of_expert'])} |")
PY
