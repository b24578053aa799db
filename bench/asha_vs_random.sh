#!/usr/bin/env bash
# docs/tune.md section 8.2 as one command: does TPE + ASHA reach random search's best val score in
# at most half of random search's env-step budget? For every study seed, random search and TPE +
# ASHA each spend the same BUDGET of env steps on Reptile trials of TRIAL_STEPS env steps,
# scored on val (nothing here touches test); then `recarena-tune compare` prints, per seed and as
# the median over seeds, the env steps each study needed to reach random search's best val score,
# as a fraction of random search's budget.
# The search space is fixed here, before any study was run (docs/tune.md 8.2 says why it is what
# a user who does not know the answer would search); trials are small (a meta-iteration is 2,560
# env steps: 4 tasks x 8 envs x 16 steps x 5 inner steps) and validate on 4 val tasks, so that a
# study of 16 full trials costs a few CPU minutes.
# Seeds: seed S fixes every trial's training seed (recarena-meta --seed S, the same init for both
# studies) and is random search's sampler seed; ASHA's sampler seed is S + 1000, so that TPE's
# random start-up trials are not random search's first trials again (with one sampler seed they
# would be the same draws, and ASHA could inherit random search's best trial).
#   OUT/seedS/space.toml           the space with seed = S
#   OUT/seedS/{random,asha}/       each study (summary.json, best.cfg, plots); .txt: its table
#   OUT/compare.txt                per-seed tables, the median over seeds, and how well random
#                                  search's val score at ASHA's rungs (iterations 3, 9, 27)
#                                  ranks its trials' values
# ASHA runs with recarena-tune's defaults (eta 3, first rung at val-every iterations, 10 TPE
# start-up trials).
# VAL_TASKS is the val task set of both studies' trials (the objective): val:0-3 in 8.2/8.3,
# val:0-15 in 8.4, where val_noise.py found 4 tasks' scores mostly evaluation noise.
# PRUNER=hyperband (environment) runs TPE + Hyperband in ASHA's place, with the same rungs' first
# resource, eta and sampler seeds (study directory OUT/seedS/hyperband; docs/tune.md 8.11).
# ALGO=es (environment) runs the same comparison for ES (docs/tune.md 8.7): tune_compare.sh's ES
# space (population, sigma, Adam lr; tune_lib.sh) with sampled validation, ASHA's rungs in env
# steps from an eighth of a trial; compare's --rungs then name env steps.
# Usage: bench/asha_vs_random.sh [SIM=ECommerce-v1] [OUT=out/asha-SIM] [SEEDS="1 2 3 4 5"]
#        [BUDGET=1230000] [TRIAL_STEPS=76800] [VAL_TASKS=val:0-3]
set -euo pipefail
. "$(dirname "$0")/tune_lib.sh"
sim="${1:-ECommerce-v1}"
out="${2:-$root/out/asha-$sim}"
seeds="${3:-1 2 3 4 5}"
budget="${4:-1230000}"     # 16 trials of 76,800 env steps, and a little slack
trial_steps="${5:-76800}"  # 30 meta-iterations; Reptile's epsilon anneals to 0 over them
val_tasks="${6:-val:0-3}"  # validation env steps are not counted in BUDGET (docs/meta.md 4)
case "${ALGO:-reptile}" in reptile | es) ;; *) echo "asha_vs_random.sh: ALGO must be reptile or es, not '$ALGO'" >&2; exit 2 ;; esac
pruner="${PRUNER:-asha}"
case "$pruner" in asha | hyperband) ;; *) echo "asha_vs_random.sh: PRUNER must be asha or hyperband, not '$pruner'" >&2; exit 2 ;; esac
mkdir -p "$out"
randoms=() ashas=() asha=() random=() rungs=3,9,27
for s in $seeds; do
  d="$out/seed$s"
  mkdir -p "$d"
  if [ "${ALGO:-reptile}" = es ]; then
    printf '%s\n' "env = \"$sim\"" 'algo = "es"' "seed = $s" "budget-steps = $trial_steps" 'iters = 100000' \
      'val-every = 5' "val-tasks = \"$val_tasks\"" '' > "$d/space.toml"
    es_searched_keys >> "$d/space.toml"
    read -r -a asha <<< "$(es_asha_flags "$trial_steps")"
    random=(--resource steps)  # its val points keyed by env steps too, for compare's --rungs
    rungs="$((trial_steps / 8)),$((3 * trial_steps / 8))"  # the third, 9/8 of a trial, is past its end
  else
  cat > "$d/space.toml" <<EOS
env = "$sim"
algo = "reptile"
seed = $s
budget-steps = $trial_steps
meta-batch = 4
envs-per-task = 8
val-every = 3
val-tasks = "$val_tasks"
val-act = "greedy"

[inner-lr]
type = "log-uniform"
low = 1e-4
high = 1e-1
[outer-lr]
type = "log-uniform"
low = 0.03
high = 1.0
[entropy]
type = "log-uniform"
low = 1e-4
high = 1e-1
EOS
  fi
  tune_step "$sim seed $s: random search"
  tune_search "$d/space.toml" "$d/random" "$s" "$budget" random none "${random[@]}"
  tune_step "$sim seed $s: TPE + $pruner"
  tune_search "$d/space.toml" "$d/$pruner" "$((s + 1000))" "$budget" tpe "$pruner" "${asha[@]}"
  randoms+=("$d/random") ashas+=("$d/$pruner")
done
join () { local IFS=,; echo "$*"; }
"${tune[@]}" compare random="$(join "${randoms[@]}")" "$pruner=$(join "${ashas[@]}")" \
  --labels "$(join $seeds)" --rungs "$rungs" > "$out/compare.txt"
cat "$out/compare.txt"
