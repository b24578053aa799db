#!/bin/sh
# bench/meta_all_sims.sh - meta-trains every recarena-meta algorithm on each simulator within one
# env-step budget, then runs recarena-ab on the test split and on ood with every meta-init as an
# online-adapting target arm next to scratch, the bandits, meta-TS (its prior learnt on TRAIN),
# popularity, random and the oracle (docs/meta.md section 6); with EXPERT_TASKS, a third run on
# the first EXPERT_TASKS test tasks adds per-task experts (the multitask meta-init trained
# EXPERT_STEPS more env steps on each task alone, scripts/train_experts.sh), so every arm's gain
# reads as a fraction of the expert's. Writes OUT/<sim>/<algo>.{safetensors,jsonl,log},
# OUT/<sim>/metats_prior.txt, OUT/<sim>/experts/ and OUT/<sim>/ab_<split>.{json,csv,txt}, and
# prints one table per sim and run. A meta-init or prior already in OUT is reused.
#
# usage: bench/meta_all_sims.sh [OUT]      (default OUT=meta_results)
# settings (environment): SIMS ("ECommerce-v1 Ads-v1 News-v1 Content-v1"), ALGOS ("reptile fomaml
#   es es-maml multitask"), BUDGET (2000000 env steps per meta-training), TRAIN (train:0-63),
#   VAL (val:0-15), TEST (test:0-63), OOD (ood:0-63), NUM_ENVS (32 users per task in the A/B run),
#   EPISODES (21: R@0..R@20), SEED (1), BUILD (build), CONFIG ("" : sim config "k=v k=v" for
#   every run, e.g. "hidden_tastes=1"), EXPERT_TASKS (0: none), EXPERT_STEPS (300000)
# The defaults are the issue's full protocol: hours on a 2-core machine. A short smoke run:
#   BUDGET=50000 TEST=test:0-7 OOD=ood:0-7 SIMS=ECommerce-v1 EPISODES=8 NUM_ENVS=16 bench/meta_all_sims.sh /tmp/m
set -eu
OUT=${1:-meta_results}
SIMS=${SIMS:-"ECommerce-v1 Ads-v1 News-v1 Content-v1"}
ALGOS=${ALGOS:-"reptile fomaml es es-maml multitask"}
BUDGET=${BUDGET:-2000000}
TRAIN=${TRAIN:-train:0-63}
VAL=${VAL:-val:0-15}
TEST=${TEST:-test:0-63}
OOD=${OOD:-ood:0-63}
NUM_ENVS=${NUM_ENVS:-32}
EPISODES=${EPISODES:-21}
SEED=${SEED:-1}
BUILD=${BUILD:-build}
CONFIG=${CONFIG:-}
EXPERT_TASKS=${EXPERT_TASKS:-0}
EXPERT_STEPS=${EXPERT_STEPS:-300000}
meta_cfg=""; ab_cfg=""
for kv in $CONFIG; do meta_cfg="$meta_cfg --sim-config $kv"; ab_cfg="$ab_cfg --config $kv"; done
META=$BUILD/agents/recarena-meta
AB=$BUILD/agents/recarena-ab
[ -x "$META" ] && [ -x "$AB" ] || { echo "build recarena-meta and recarena-ab first ($BUILD)" >&2; exit 2; }
curve=""
for K in 0 1 2 5 7 10 20; do [ "$K" -lt "$EPISODES" ] && curve="$curve${curve:+,}$K"; done
for sim in $SIMS; do
  d=$OUT/$sim
  mkdir -p "$d"
  arms=""
  echo "== $sim: meta-training, $BUDGET env steps each"
  printf '%-10s %12s %10s %12s %12s\n' algo env_steps wall_s best_R@5w samples/s
  for algo in $ALGOS; do
    start=$(date +%s.%N)
    if [ ! -f "$d/$algo.safetensors" ]; then
      rm -f "$d/$algo.jsonl"
      # shellcheck disable=SC2086 # meta_cfg is a list of flags
      "$META" --env "$sim" --algo "$algo" --train-tasks "$TRAIN" --val-tasks "$VAL" --budget-steps "$BUDGET" \
        --seed "$SEED" $meta_cfg --checkpoint-out "$d/$algo.safetensors" --metrics "$d/$algo.jsonl" --quiet \
        >"$d/$algo.log" 2>&1 || { echo "$algo failed: $(tail -2 "$d/$algo.log")" >&2; exit 1; }
      end=$(date +%s.%N)
    else
      end=$start  # reused: wall_s reads 0 and samples/s is not measured
    fi
    done_line=$(grep '"kind":"done"' "$d/$algo.jsonl" | tail -1)
    steps=$(echo "$done_line" | sed 's/.*"env_steps":\([0-9]*\).*/\1/')
    best=$(echo "$done_line" | sed 's/.*"best_score":\([-0-9.e+]*\).*/\1/')
    awk -v a="$algo" -v s="$steps" -v b="$best" -v t0="$start" -v t1="$end" \
      'BEGIN { printf "%-10s %12d %10.1f %12.3f %12.0f\n", a, s, t1 - t0, b, (t1 > t0) ? s / (t1 - t0) : 0 }'
    spec="target:checkpoint=$d/$algo.safetensors:name=$algo"
    # the control first: recarena-ab compares against the first listed arm matching --control
    if [ "$algo" = multitask ]; then arms="$spec$arms"; else arms="$arms,$spec"; fi
  done
  arms="${arms#,}"
  prior=$d/metats_prior.txt
  if [ ! -f "$prior" ]; then
    # shellcheck disable=SC2086
    "$AB" --env "$sim" $ab_cfg --learn-prior "$prior" --arms metats:prior=none:credit=metric \
      --task-ids "$TRAIN" --num-envs 16 --episodes 5 --seed "$SEED" --quiet >"$d/metats_prior.log" 2>&1 \
      || { echo "meta-TS prior failed: $(tail -3 "$d/metats_prior.log")" >&2; exit 1; }
  fi
  arms="${arms},target:name=scratch,linucb,lints:credit=metric,metats:prior=$prior:credit=metric:name=metats,popularity,random,oracle"
  control=random
  case " $ALGOS " in *" multitask "*) control=multitask ;; esac
  splits="$TEST $OOD"
  if [ "$EXPERT_TASKS" -gt 0 ] && [ -f "$d/multitask.safetensors" ]; then
    echo "== $sim: experts on test:0-$((EXPERT_TASKS - 1)), $EXPERT_STEPS env steps each from the multitask meta-init"
    # shellcheck disable=SC2086
    "$(dirname "$0")/../scripts/train_experts.sh" --dir "$d/experts" --env "$sim" --tasks "$EXPERT_TASKS" --steps "$EXPERT_STEPS" \
      --bin "$BUILD/agents/recarena-target" -- --checkpoint-in "$d/multitask.safetensors" --eval-episodes 0 $ab_cfg \
      >"$d/experts.log" 2>&1 || { echo "experts failed: $(tail -3 "$d/experts.log")" >&2; exit 1; }
    splits="$splits expert:test:0-$((EXPERT_TASKS - 1))"
  fi
  for split in $splits; do
    tag=${split%%:*}
    run_arms=$arms
    case $split in expert:*) split=${split#expert:}; run_arms="$arms,expert:dir=$d/experts" ;; esac
    echo "== $sim: recarena-ab on $split (unit task, $NUM_ENVS users per task, $EPISODES episodes)"
    # shellcheck disable=SC2086
    "$AB" --env "$sim" $ab_cfg --arms "$run_arms" --task-ids "$split" --num-envs "$NUM_ENVS" --episodes "$EPISODES" \
      --curve-episodes "$curve" --unit task --seed "$SEED" --control "$control" \
      --json "$d/ab_$tag.json" --csv "$d/ab_$tag.csv" --quiet >"$d/ab_$tag.txt" 2>&1 \
      || { echo "recarena-ab failed: $(tail -3 "$d/ab_$tag.txt")" >&2; exit 1; }
    cat "$d/ab_$tag.txt"
  done
done
