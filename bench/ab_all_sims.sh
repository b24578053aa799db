#!/usr/bin/env bash
# The A/B results of docs/agents.md: for each simulator, trains the target policy on the sim's
# default task, then compares it on the test split with random (the control), popularity,
# LinUCB and the oracle, all on the same tasks and seeds (recarena-ab). Prints each sim's table;
# the JSON and CSV reports land in OUT. Takes about 5 minutes on 2 cores.
# Usage: bench/ab_all_sims.sh [OUT=out/ab] [TRAIN_STEPS=300000] [TASKS=16]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="${1:-$root/out/ab}"
steps="${2:-300000}"
tasks="${3:-16}"
build="${RECARENA_BUILD_DIR:-$root/build}"
mkdir -p "$out"
for sim in ECommerce-v1 Ads-v1 News-v1 Content-v1; do
  ckpt="$out/target-$sim.safetensors"
  echo "== $sim: training the target policy ($steps env steps)"
  "$build/agents/recarena-target" --env "$sim" --steps "$steps" --num-envs 128 --progress 30 \
    --checkpoint-out "$ckpt" --eval-episodes 256 2>&1 | tail -n 2
  echo "== $sim: A/B on the test split"
  # Users (env units) are the unit of the confidence intervals, as in an online A/B test;
  # --unit task gives the more conservative per-task intervals.
  "$build/agents/recarena-ab" --env "$sim" --tasks "$tasks" --num-envs 32 --unit env --quiet \
    --arms "random,popularity,linucb,target:checkpoint=$ckpt:name=target,oracle" \
    --json "$out/ab-$sim.json" --csv "$out/ab-$sim.csv"
done
echo "reports in $out (plot them with: .venv/bin/python -m recarena.plots $out/ab-ECommerce-v1.json --out $out)"
