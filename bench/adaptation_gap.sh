#!/usr/bin/env bash
# The adaptation gap of each sim's task distribution (docs/agents.md 2.10): how much any
# adaptation could add over the best single policy. Per sim:
#   1. a multitask target: recarena-target on train:0-63 for MT_STEPS env steps (the budget the
#      meta learners get);
#   2. per-task experts on test:0..TASKS-1: that checkpoint trained EXPERT_STEPS more env steps on
#      each task alone (scripts/train_experts.sh, cached);
#   3. recarena-ab on those tasks, one greedy episode per user (K = 0, learning off), USERS users per
#      task, unit task: random, the multitask target frozen, the expert, the myopic oracle;
#   4. gap = mean_t(expert - multitask) / mean_t(expert - random) with a paired bootstrap 95% CI
#      over tasks (B = 2000, seed 1), beside both arms' fractions of the oracle's gain.
# A gap below 0.1 means a single policy already gets 90% of what per-task training gets.
# Extra sim config (e.g. CONFIG="hidden_tastes=1") goes to every binary; OUT is reused (delete it
# to retrain). Prints a markdown table on stdout, progress on stderr.
# Usage: [SIMS="ECommerce-v1 ..."] [CONFIG="k=v k=v"] bench/adaptation_gap.sh [OUT=out/gap]
#        [MT_STEPS=2000000] [TASKS=16] [EXPERT_STEPS=300000] [USERS=32]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="${1:-$root/out/gap}"
mt_steps="${2:-2000000}"
tasks="${3:-16}"
esteps="${4:-300000}"
users="${5:-32}"
build="${RECARENA_BUILD_DIR:-$root/build}"
sims="${SIMS:-ECommerce-v1 Ads-v1 News-v1 Content-v1}"
cfg=()
for kv in ${CONFIG:-}; do cfg+=(--config "$kv"); done
mkdir -p "$out"
for sim in $sims; do
  mt="$out/multitask-$sim.safetensors"
  if [ ! -f "$mt" ]; then
    echo "== $sim: multitask target on train:0-63 ($mt_steps env steps)" >&2
    start=$(date +%s)
    "$build/agents/recarena-target" --env "$sim" "${cfg[@]}" --task train:0-63 --steps "$mt_steps" \
      --num-envs 64 --progress 60 --eval-episodes 0 --checkpoint-out "$mt.tmp" >&2
    mv "$mt.tmp" "$mt"
    echo "   $(( $(date +%s) - start )) s" >&2
  fi
  echo "== $sim: experts on test:0-$((tasks - 1)) ($esteps env steps each from the multitask target)" >&2
  start=$(date +%s)
  "$root/scripts/train_experts.sh" --dir "$out/experts-$sim" --env "$sim" --tasks "$tasks" \
    --steps "$esteps" --num-envs 64 --bin "$build/agents/recarena-target" \
    -- --checkpoint-in "$mt" --eval-episodes 0 "${cfg[@]}" >&2
  echo "   $(( $(date +%s) - start )) s" >&2
  "$build/agents/recarena-ab" --env "$sim" "${cfg[@]}" --task-ids "test:0-$((tasks - 1))" \
    --num-envs "$users" --episodes 1 --unit task --quiet \
    --arms "random,target:checkpoint=$mt:lr=0:name=multitask,expert:dir=$out/experts-$sim,oracle" \
    --json "$out/gap-$sim.json" > "$out/gap-$sim.txt" 2> "$out/gap-$sim.err"
done
python3 - "$out" "${CONFIG:-}" $sims <<'PY'
import json, os, random, sys
out, config, sims = sys.argv[1], sys.argv[2], sys.argv[3:]
def per_task(arm):
    return [t["return"] for t in arm["per_task"]]
def gap(e, m, r, idx):
    num = sum(e[i] - m[i] for i in idx)
    den = sum(e[i] - r[i] for i in idx)
    return num / den if den else float("nan")
print(f"config: {config or '(defaults)'}\n")
print("| sim | tasks | random R@0 | multitask R@0 | expert R@0 | oracle R@0 "
      "| multitask of oracle's gain | expert of oracle's gain | gap [95% CI] |")
print("|---|---|---|---|---|---|---|---|---|")
for sim in sims:
    path = f"{out}/gap-{sim}.json"
    if not os.path.exists(path):
        continue
    arms = {a["name"].split(":")[0] if a["name"].startswith("expert") else a["name"]: a
            for a in json.load(open(path))["arms"]}
    r, m, e, o = (per_task(arms[k]) for k in ("random", "multitask", "expert", "oracle"))
    n = len(r)
    rng = random.Random(1)
    boot = sorted(gap(e, m, r, [rng.randrange(n) for _ in range(n)]) for _ in range(2000))
    mean = lambda v: sum(v) / len(v)
    of_oracle = lambda v: (mean(v) - mean(r)) / (mean(o) - mean(r))
    print(f"| {sim} | {n} | {mean(r):.4g} | {mean(m):.4g} | {mean(e):.4g} | {mean(o):.4g} "
          f"| {of_oracle(m):.3f} | {of_oracle(e):.3f} "
          f"| {gap(e, m, r, range(n)):.3f} [{boot[50]:.3f}, {boot[1949]:.3f}] |")
PY
