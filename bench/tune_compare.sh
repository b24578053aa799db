#!/usr/bin/env bash
# docs/tune.md section 8 as one command: defaults vs random search vs ASHA (TPE) vs PBT for Reptile
# on one sim, each search under the same env-step BUDGET, then every resulting meta-init measured
# once on the test split in one recarena-ab run (paired against the defaults, unit task, 95% CIs).
# Searches score on val:0-15 (R@5w after adaptation); nothing is chosen on test. The space keeps
# a meta-iteration between 6k and 33k env steps so that val-every (in iterations) spends a similar
# share of each trial on validation (a val point on 16 tasks costs several meta-iterations).
#   OUT/space.toml              the search space (below)
#   OUT/{random,asha,pbt}/      each study (summary.json, best.cfg, plots)
#   OUT/defaults.safetensors    Reptile at the space's fixed keys alone, same per-trial budget
#   OUT/compare.txt             env steps each study needed to reach random search's best val score
#   OUT/test.{txt,json}         recarena-ab on TEST_TASKS test tasks from TEST_FROM
# Every arm adapts online with its checkpoint's own settings; the random-search arm is "random-tuned"
# (plain "random" is the uniform-random recommender).
# PBT_LINEAGE=1 (environment) removes PBT's training-length advantage: every lineage stops at
# TRIAL_STEPS env steps (recarena-tune pbt --lineage-steps, docs/tune.md 5.1) and the population is
# BUDGET / TRIAL_STEPS members, so PBT spends the same budget and each final member has trained as
# long as one search trial; unset, PBT runs 4 members for as many generations as BUDGET allows
# (docs/tune.md 8.1's protocol).
# ALGO=es (environment) searches ES instead (docs/tune.md 8.7): population size, sigma and Adam lr,
# validation as recarena-meta's default (sampled play), ASHA's rungs and PBT's generations in env
# steps (a meta-iteration costs P x 800 env steps, so iterations would not be one resource across
# populations), and the defaults run is ES's own: recarena-meta's defaults, P 16, sigma 0.1 and
# lr 5e-2 since docs/meta.md 6.61 (8.7-8.10 ran at the former P 32, sigma 0.02, lr 1e-2). Unset:
# Reptile as in 8.1.
# SEED (environment, default 1) seeds every study (sampler and each trial's --seed), PBT and the
# defaults run; TEST_FROM (default 0) is the first test task, so a replicate with another SEED can
# be read on tasks no earlier run has seen (docs/tune.md 8.9).
# Usage: bench/tune_compare.sh [SIM=ECommerce-v1] [OUT=out/tune-SIM] [BUDGET=1200000]
#        [TRIAL_STEPS=200000] [TEST_TASKS=32]
set -euo pipefail
. "$(dirname "$0")/tune_lib.sh"
sim="${1:-ECommerce-v1}"
out="${2:-$root/out/tune-$sim}"
budget="${3:-1200000}"
trial_steps="${4:-200000}"
test_tasks="${5:-32}"
seed="${SEED:-1}"
test_from="${TEST_FROM:-0}"
test_ids="test:$test_from-$((test_from + test_tasks - 1))"
mkdir -p "$out"
algo="${ALGO:-reptile}"
case "$algo" in
reptile)
  iters=1000 val_every=3 val_act=$'\nval-act = "greedy"'
  searched='[inner-lr]
type = "log-uniform"
low = 3e-4
high = 3e-2
[outer-lr]
type = "uniform"
low = 0.1
high = 1.0
[inner-steps]
type = "int"
low = 3
high = 8
[meta-batch]
type = "choice"
values = [8, 16]'
  asha=()
  ready=(--ready 6)
  shown="inner-lr|outer-lr|inner-steps|meta-batch"
  ;;
es)
  # val-every 5 iterations is 32k-256k env steps for P 8-64. PBT exploits every TRIAL_STEPS/16
  # env steps, so members of every population size advance alike (docs/tune.md 8.8; in
  # iterations, a P 64 lineage reached the cap in 3 generations and exploits stopped there).
  iters=100000 val_every=5 val_act=""  # recarena-meta's default, sampled play
  searched=$(es_searched_keys)
  read -r -a asha <<< "$(es_asha_flags "$trial_steps")"
  ready=(--ready-unit steps --ready $((trial_steps / 16)))
  shown="population|sigma|outer-lr"
  ;;
*) echo "tune_compare.sh: ALGO must be reptile or es, not '$algo'" >&2; exit 2 ;;
esac
fixed="env = \"$sim\"
algo = \"$algo\"
budget-steps = $trial_steps
iters = $iters
val-every = $val_every
val-tasks = \"val:0-15\"$val_act"
printf '%s\n\n%s\n' "$fixed" "$searched" > "$out/space.toml"
step () { tune_step "$sim: $1"; }
step "random search"
tune_search "$out/space.toml" "$out/random" "$seed" "$budget" random none
step "TPE + ASHA"
tune_search "$out/space.toml" "$out/asha" "$seed" "$budget" tpe asha "${asha[@]}"
step "PBT"
pbt=(--population 4)
if [ -n "${PBT_LINEAGE:-}" ]; then
  pbt=(--population $((budget / trial_steps > 2 ? budget / trial_steps : 2)) --lineage-steps "$trial_steps")
fi
"${tune[@]}" pbt --space "$out/space.toml" --budget "$budget" --meta-bin "$meta" --seed "$seed" "${pbt[@]}" "${ready[@]}" --generations 1000 --out "$out/pbt" > "$out/pbt.txt"
"${tune[@]}" compare random="$out/random" asha="$out/asha" pbt="$out/pbt" > "$out/compare.txt"
if [ ! -f "$out/defaults.safetensors" ]; then
  step "defaults"  # the space's fixed keys alone, seed as every study's trials
  printf '%s\n' "$fixed" | tr -d '"' > "$out/defaults.cfg"
  "$meta" --config "$out/defaults.cfg" --seed "$seed" --quiet --checkpoint-out "$out/defaults.safetensors.tmp"
  mv "$out/defaults.safetensors.tmp" "$out/defaults.safetensors"
fi
best_ckpt () {  # the best run's checkpoint, as its summary.json names it
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["best"]["checkpoint"])' "$1/summary.json"
}
arms="target:checkpoint=$out/defaults.safetensors:name=defaults"
for m in random asha pbt; do arms="$arms,target:checkpoint=$(best_ckpt "$out/$m"):name=$m-tuned"; done
step "recarena-ab on $test_ids"
"$build/agents/recarena-ab" --env "$sim" --task-ids "$test_ids" --num-envs 16 \
  --episodes 8 --curve-episodes 0,1,5 --windows 3-7 --unit task --quiet --arms "$arms,random" --control defaults \
  --json "$out/test.json" > "$out/test.txt"
cat "$out/compare.txt"
for m in random asha pbt; do echo "-- $m best.cfg"; grep -E "^($shown) " "$out/$m/best.cfg"; done
sed -n '/learning curve/,$p' "$out/test.txt"
