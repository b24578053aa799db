#!/bin/sh
# bench/meta_all_sims.sh - meta-trains every recarena-meta algorithm on each simulator within one
# env-step budget, then runs recarena-ab on the test split and on ood with every meta-init as an
# online-adapting target arm next to scratch, the bandits, meta-TS (its prior learnt on TRAIN),
# popularity, random and the oracle (docs/meta.md section 6); with EXPERT_TASKS, a third run on
# the first EXPERT_TASKS test tasks adds per-task experts (the multitask meta-init trained
# EXPERT_STEPS more env steps on each task alone, scripts/train_experts.sh), so every arm's gain
# reads as a fraction of the expert's. Writes OUT/<sim>/<algo>.{safetensors,jsonl,log},
# OUT/<sim>/metats_prior.txt, OUT/<sim>/experts/ and OUT/<sim>/ab_<split>.{json,csv,txt}, and
# prints one table per sim and run, then every meta-init's paired differences from multitask,
# scratch and meta-TS at R@0, R@1, R@5, R@5w and auc (OUT/<sim>/ab_<split>_pairs.txt). Plots:
# OUT/<sim>/meta_training.png (every training's val and meta-train return against env steps,
# recarena.meta_plots), OUT/<sim>/plots_<split>/ (every arm's R@K curve, windows and metrics,
# recarena.plots) and OUT/<sim>/ab_<split>_curve_<base>.{txt,png} (each meta-init's paired
# difference from multitask, and from multitask_ctx, at every R@K; docs/agents.md 2.5). A
# meta-init or prior already in OUT is reused.
# With TEMPS, every target arm (each meta-init and scratch) first plays the CHOOSE_VAL tasks once
# per sampling temperature in the grid (recarena-ab, 8 episodes, OUT/<sim>/ab_val_temp.{json,txt}),
# and plays the test and ood runs at the temperature with its best R@5w there (the first of the
# grid on ties): the same grid for every arm, chosen on val only (docs/meta.md 6.4). ROLLOUTS does
# the same for the arms' update interval (key rollout, docs/meta.md 6.10), after the temperature,
# and LRS for their online learning rate (key lr, docs/meta.md 6.11), after the interval, and PARAMS
# for what they adapt (key adapt_params, all or head; docs/meta.md 6.15), after the rate.
#
# usage: bench/meta_all_sims.sh [OUT]      (default OUT=meta_results)
# settings (environment): SIMS ("ECommerce-v1 Ads-v1 News-v1 Content-v1"), ALGOS ("reptile fomaml
#   es es-maml multitask"), BUDGET (2000000 env steps per meta-training), TRAIN (train:0-63),
#   VAL (val:0-15: meta-validation's tasks), CHOOSE_VAL (VAL: the tasks the TEMPS, ROLLOUTS, LRS
#   and PARAMS grids play; more tasks make the choices less noisy, docs/meta.md 6.66), TEST
#   (test:0-63), OOD (ood:0-63), NUM_ENVS (32 users per task in the A/B run),
#   EPISODES (21: R@0..R@20; at least 8, for R@5w), SEED (1), BUILD (build), CONFIG ("" : sim
#   config "k=v k=v" for every run, e.g. "hidden_tastes=1"), EXPERT_TASKS (0: none),
#   EXPERT_STEPS (300000), EXPERT_JOBS (1: experts trained at once, scripts/train_experts.sh --jobs),
#   META_FLAGS ("": more recarena-meta flags, e.g. "--val-act greedy"; its adaptation flags
#   --inner-lr, --inner-opt, --rollout-len, --slot-credit, --slot-feedback, --affinity and
#   --adapt-params are also the scratch arm's settings, as the meta-inits carry them in their
#   checkpoints), META_FLAGS_<algo> ("": flags for that algorithm's training alone, after
#   META_FLAGS, with '-' in its name read as '_': e.g. META_FLAGS_reptile="--outer-lr 0.1"),
#   ARM_KEYS ("": more keys for every target arm, scratch and meta-inits, after their own; e.g.
#   ":adapt_params=all" adapts head-only meta-inits in every parameter), TEMPS ("": no
#   selection; e.g. "1 0.5 0.25 0.1"), ROLLOUTS ("": no selection; e.g. "16 8 4 2"), LRS ("": no
#   selection; e.g. "3e-3 1e-3 3e-4"), PARAMS ("": no selection; e.g. "all head"), OOD=none skips
#   the ood run, SCRATCH_CONTEXT ("": none; n0, e.g. 16) adds scratch_ctx, the scratch arm with the
#   task context (docs/agents.md T8) at that n0: how much of a context meta-init's adaptation the
#   context alone gives a fresh network (docs/meta.md 6.21); more keys may follow n0, e.g.
#   "16:context_session=2" for the same session as a T12 meta-init (docs/meta.md 6.30),
#   EXTRA_ARMS ("": none; "name=CHECKPOINT ...", e.g. "mtctx=out/mtc.safetensors") more target
#   arms from checkpoints trained elsewhere, for one sim in SIMS: they choose their settings on
#   CHOOSE_VAL and join every paired comparison as the meta-inits do (docs/meta.md 6.55 used it
#   for a multitask network trained with the task context beside --algo multitask without it),
#   MULTITASK_CONTEXT ("": none; the meta-init's network flags, e.g. "--context 16
#   --context-session 2") adds multitask_ctx, --algo multitask trained with META_FLAGS,
#   META_FLAGS_multitask and these flags: the pretrain-then-fine-tune ablation with the same
#   network as a context meta-init, which the meta-inits are also compared against (docs/meta.md 6.56)
# The defaults are the issue's full protocol: about an hour on a 2-core machine (docs/meta.md
# 6.60). A short smoke run:
#   BUDGET=50000 TEST=test:0-7 OOD=ood:0-7 SIMS=ECommerce-v1 EPISODES=8 NUM_ENVS=16 bench/meta_all_sims.sh /tmp/m
set -eu
OUT=${1:-meta_results}
SIMS=${SIMS:-"ECommerce-v1 Ads-v1 News-v1 Content-v1"}
ALGOS=${ALGOS:-"reptile fomaml es es-maml multitask"}
BUDGET=${BUDGET:-2000000}
TRAIN=${TRAIN:-train:0-63}
VAL=${VAL:-val:0-15}
CHOOSE_VAL=${CHOOSE_VAL:-$VAL}
TEST=${TEST:-test:0-63}
OOD=${OOD:-ood:0-63}
NUM_ENVS=${NUM_ENVS:-32}
EPISODES=${EPISODES:-21}
SEED=${SEED:-1}
BUILD=${BUILD:-build}
CONFIG=${CONFIG:-}
EXPERT_TASKS=${EXPERT_TASKS:-0}
EXPERT_STEPS=${EXPERT_STEPS:-300000}
EXPERT_JOBS=${EXPERT_JOBS:-1}
META_FLAGS=${META_FLAGS:-}
ARM_KEYS=${ARM_KEYS:-}
TEMPS=${TEMPS:-}
ROLLOUTS=${ROLLOUTS:-}
LRS=${LRS:-}
PARAMS=${PARAMS:-}
SCRATCH_CONTEXT=${SCRATCH_CONTEXT:-}
MULTITASK_CONTEXT=${MULTITASK_CONTEXT:-}
meta_cfg=""; ab_cfg=""
for kv in $CONFIG; do meta_cfg="$meta_cfg --sim-config $kv"; ab_cfg="$ab_cfg --config $kv"; done
META=$BUILD/agents/recarena-meta
AB=$BUILD/agents/recarena-ab
[ -x "$META" ] && [ -x "$AB" ] || { echo "build recarena-meta and recarena-ab first ($BUILD)" >&2; exit 2; }
# checked now, not when the paired tables at the end need R@5w
case $EPISODES in
  ''|*[!0-9]*) echo "EPISODES must be a whole number, got '$EPISODES'" >&2; exit 2 ;;
esac
[ "$EPISODES" -ge 8 ] || { echo "EPISODES must be at least 8 (the paired tables read R@5w, episodes 3-7), got $EPISODES" >&2; exit 2; }
case $EXPERT_JOBS in
  ''|0*|*[!0-9]*) echo "EXPERT_JOBS must be a positive whole number, got '$EXPERT_JOBS'" >&2; exit 2 ;;
esac
PY=$(dirname "$0")/../.venv/bin/python
[ -x "$PY" ] || { echo "set up the virtual environment first (scripts/setup.sh)" >&2; exit 2; }
# the adaptation settings META_FLAGS gives the meta-inits (stored in their checkpoints), as the
# scratch arm's keys, so that it adapts the same way (docs/meta.md 6)
scratch_keys=""
set -- $META_FLAGS
while [ $# -gt 1 ]; do
  case $1 in
    --inner-lr) scratch_keys="$scratch_keys:lr=$2" ;;
    --inner-opt) scratch_keys="$scratch_keys:optimizer=$2" ;;
    --rollout-len) scratch_keys="$scratch_keys:rollout=$2" ;;
    --slot-credit) scratch_keys="$scratch_keys:slot_credit=$2" ;;
    --slot-feedback) scratch_keys="$scratch_keys:slot_feedback=$2" ;;
    --affinity) scratch_keys="$scratch_keys:affinity=$2" ;;
    --adapt-params) scratch_keys="$scratch_keys:adapt_params=$2" ;;
  esac
  shift
done
for algo in $ALGOS; do
  # an algorithm's name also names its META_FLAGS_<algo> variable
  case $algo in *[!a-z-]*) echo "ALGOS: '$algo' is not an algorithm name" >&2; exit 2 ;; esac
done
case " $MULTITASK_CONTEXT " in
  "  "|*" --context "*) ;;
  *) echo "MULTITASK_CONTEXT: '$MULTITASK_CONTEXT' has no --context N (it gives multitask the meta-init's context)" >&2; exit 2 ;;
esac
EXTRA_ARMS=${EXTRA_ARMS:-}
extra_names=${MULTITASK_CONTEXT:+multitask_ctx}
for ex in $EXTRA_ARMS; do
  name=${ex%%=*}
  case $name in ''|*[!a-z0-9_]*|"$ex") echo "EXTRA_ARMS: '$ex' is not name=CHECKPOINT (name: a-z, 0-9, _)" >&2; exit 2 ;; esac
  case " $ALGOS scratch scratch_ctx $extra_names " in *" $name "*) echo "EXTRA_ARMS: '$name' is already an arm" >&2; exit 2 ;; esac
  [ -f "${ex#*=}" ] || { echo "EXTRA_ARMS: no checkpoint ${ex#*=}" >&2; exit 2; }
  extra_names="$extra_names $name"
done
# choose_on_val KEY "GRID" WHAT: every target arm plays CHOOSE_VAL once per value of KEY in GRID
# (recarena-ab, 8 episodes, one run per arm: OUT/<sim>/ab_val_KEY_<arm>.{json,txt}; a run holds at
# most 31 arms, and with common random numbers an arm's rows do not depend on the others in its
# run); each arm keeps the value with its best R@5w (the first of the grid on ties), written with
# the table to OUT/<sim>/KEYs.txt and appended to its spec in $targets for what follows
choose_on_val() {
  echo "== $sim: $3 of each target arm on $CHOOSE_VAL (recarena-ab, 8 episodes, R@5w)"
  jsons=""
  for tg in $targets; do
    varms=""
    for v in $2; do varms="$varms${varms:+,}${tg#*=}:$1=$v:name=${tg%%=*}_$v"; done
    out="$d/ab_val_$1_${tg%%=*}"
    # shellcheck disable=SC2086
    "$AB" --env "$sim" $ab_cfg --arms "$varms" --task-ids "$CHOOSE_VAL" --num-envs "$NUM_ENVS" --episodes 8 \
      --curve-episodes 0,1,5,7 --unit task --seed "$SEED" --json "$out.json" --quiet \
      >"$out.txt" 2>&1 || { echo "recarena-ab on $CHOOSE_VAL failed: $(tail -3 "$out.txt")" >&2; exit 1; }
    jsons="$jsons $out.json"
  done
  # shellcheck disable=SC2086 # targets is a list of name=spec words
  python3 - "$jsons" "$1" "$2" $targets >"$d/$1s.txt" <<'PY' || exit 1
import json, sys
arms = [a for f in sys.argv[1].split() for a in json.load(open(f))["arms"]]
key, grid = sys.argv[2], sys.argv[3].split()
w5 = {a["name"]: next(w["mean"] for w in a["windows"] if w["name"] == "R@5w") for a in arms}
print("%-13s " % "arm" + " ".join("%10s" % (key + "=" + v) for v in grid) + " %8s" % "chosen")
for tg in sys.argv[4:]:
    name = tg.split("=", 1)[0]
    vals = [w5[name + "_" + v] for v in grid]
    print("%-13s " % name + " ".join("%10.2f" % v for v in vals) + " %8s" % grid[vals.index(max(vals))])
PY
  cat "$d/$1s.txt"
  chosen=""
  for tg in $targets; do
    chosen="$chosen $tg:$1=$(awk -v n="${tg%%=*}" '$1 == n { print $NF }' "$d/$1s.txt")"
  done
  targets=$chosen
}
# meta_train ARM ALGO "FLAGS": trains OUT/<sim>/ARM.safetensors with recarena-meta --algo ALGO,
# META_FLAGS and FLAGS (reused if there), and prints its row of the meta-training table
meta_train() {
  start=$(date +%s.%N)
  if [ ! -f "$d/$1.safetensors" ]; then
    rm -f "$d/$1.jsonl"
    # shellcheck disable=SC2086 # lists of flags
    "$META" --env "$sim" --algo "$2" --train-tasks "$TRAIN" --val-tasks "$VAL" --budget-steps "$BUDGET" \
      --seed "$SEED" $meta_cfg $META_FLAGS $3 --checkpoint-out "$d/$1.safetensors" --metrics "$d/$1.jsonl" --quiet \
      >"$d/$1.log" 2>&1 || { echo "$1 failed: $(tail -2 "$d/$1.log")" >&2; exit 1; }
    end=$(date +%s.%N)
  else
    end=$start  # reused: wall_s reads 0 and samples/s is not measured
    if [ ! -f "$d/$1.jsonl" ]; then  # a checkpoint brought from elsewhere, without its metrics
      printf '%-13s %12s\n' "$1" "reused; its $1.jsonl is not in $d"
      return
    fi
  fi
  done_line=$(grep '"kind":"done"' "$d/$1.jsonl" | tail -1)
  steps=$(echo "$done_line" | sed 's/.*"env_steps":\([0-9]*\).*/\1/')
  best=$(echo "$done_line" | sed 's/.*"best_score":\([-0-9.e+]*\).*/\1/')
  awk -v a="$1" -v s="$steps" -v b="$best" -v t0="$start" -v t1="$end" \
    'BEGIN { printf "%-13s %12d %10.1f %12.3f %12.0f\n", a, s, t1 - t0, b, (t1 > t0) ? s / (t1 - t0) : 0 }'
}
curve=""
for K in 0 1 2 5 7 10 20; do [ "$K" -lt "$EPISODES" ] && curve="$curve${curve:+,}$K"; done
climb=R@1,R@5   # where each meta-init's climb from R@0 is read (the bar's "no R@K below R@0")
[ "$EPISODES" -gt 20 ] && climb="$climb,R@20"
for sim in $SIMS; do
  d=$OUT/$sim
  mkdir -p "$d"
  arms=""
  echo "== $sim: meta-training, $BUDGET env steps each"
  printf '%-13s %12s %10s %12s %12s\n' algo env_steps wall_s best_R@5w samples/s
  for algo in $ALGOS; do
    eval "algo_flags=\${META_FLAGS_$(echo "$algo" | tr - _):-}"
    # shellcheck disable=SC2154 # algo_flags is set by the eval
    meta_train "$algo" "$algo" "$algo_flags"
  done
  [ -z "$MULTITASK_CONTEXT" ] || meta_train multitask_ctx multitask "${META_FLAGS_multitask:-} $MULTITASK_CONTEXT"
  runs=""
  for algo in $ALGOS ${MULTITASK_CONTEXT:+multitask_ctx}; do
    [ -f "$d/$algo.jsonl" ] && runs="$runs $d/$algo.jsonl"
  done
  # shellcheck disable=SC2086 # a list of files
  [ -z "$runs" ] || "$PY" -m recarena.meta_plots $runs --out "$d/meta_training.png" \
    --title "$sim: meta-training, seed $SEED" >/dev/null || { echo "recarena.meta_plots failed in $d" >&2; exit 1; }
  # every target arm as "name=spec" (scratch: a fresh network with the same adaptation)
  targets="scratch=target$scratch_keys$ARM_KEYS"
  [ -n "$SCRATCH_CONTEXT" ] && targets="$targets scratch_ctx=target$scratch_keys:context=$SCRATCH_CONTEXT$ARM_KEYS"
  for algo in $ALGOS ${MULTITASK_CONTEXT:+multitask_ctx}; do
    targets="$targets $algo=target:checkpoint=$d/$algo.safetensors$ARM_KEYS"
  done
  for ex in $EXTRA_ARMS; do targets="$targets ${ex%%=*}=target:checkpoint=${ex#*=}$ARM_KEYS"; done
  [ -n "$TEMPS" ] && choose_on_val temp "$TEMPS" "sampling temperature"
  [ -n "$ROLLOUTS" ] && choose_on_val rollout "$ROLLOUTS" "update interval"
  [ -n "$LRS" ] && choose_on_val lr "$LRS" "online learning rate"
  [ -n "$PARAMS" ] && choose_on_val adapt_params "$PARAMS" "adapted parameters"
  arms=""
  for tg in $targets; do
    name=${tg%%=*}
    spec="${tg#*=}"
    spec="$spec:name=$name"
    # the control first: recarena-ab compares against the first listed arm matching --control;
    # scratch after the meta-inits
    case $name in
      multitask) arms="$spec${arms:+,}$arms" ;;
      scratch) scratch_spec=$spec ;;
      *) arms="$arms${arms:+,}$spec" ;;
    esac
  done
  prior=$d/metats_prior.txt
  if [ ! -f "$prior" ]; then
    # shellcheck disable=SC2086
    "$AB" --env "$sim" $ab_cfg --learn-prior "$prior" --arms metats:prior=none:credit=metric \
      --task-ids "$TRAIN" --num-envs 16 --episodes 5 --seed "$SEED" --quiet >"$d/metats_prior.log" 2>&1 \
      || { echo "meta-TS prior failed: $(tail -3 "$d/metats_prior.log")" >&2; exit 1; }
  fi
  arms="${arms},$scratch_spec,linucb,lints:credit=metric,metats:prior=$prior:credit=metric:name=metats,popularity,random,oracle"
  control=random
  case " $ALGOS " in *" multitask "*) control=multitask ;; esac
  echo "== $sim: arms $arms"
  splits=$TEST
  [ "$OOD" = none ] || splits="$splits $OOD"
  if [ "$EXPERT_TASKS" -gt 0 ] && [ -f "$d/multitask.safetensors" ]; then
    echo "== $sim: experts on test:0-$((EXPERT_TASKS - 1)), $EXPERT_STEPS env steps each from the multitask meta-init"
    # shellcheck disable=SC2086
    "$(dirname "$0")/../scripts/train_experts.sh" --dir "$d/experts" --env "$sim" --tasks "$EXPERT_TASKS" --steps "$EXPERT_STEPS" \
      --jobs "$EXPERT_JOBS" --bin "$BUILD/agents/recarena-target" -- --checkpoint-in "$d/multitask.safetensors" --eval-episodes 0 $ab_cfg \
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
    "$PY" -m recarena.plots "$d/ab_$tag.json" --out "$d/plots_$tag" >/dev/null \
      || { echo "recarena.plots failed on $d/ab_$tag.json" >&2; exit 1; }
    # recarena-ab tests every arm against the control; the issue also asks for the meta-inits
    # against scratch and meta-TS, and for R@1 and R@5 themselves (docs/agents.md 2.5)
    for base in $control ${MULTITASK_CONTEXT:+multitask_ctx} scratch ${SCRATCH_CONTEXT:+scratch_ctx} metats; do
      others=""
      for algo in $ALGOS $extra_names; do [ "$algo" = "$base" ] || others="$others $algo"; done
      [ -n "$others" ] || continue
      # shellcheck disable=SC2086 # a list of arm names
      "$PY" -m recarena.compare "$d/ab_$tag.json" $others --against "$base" --at R@0,R@1,R@5,R@5w,auc
      # against multitask (with and without the context): where along the curve each meta-init
      # pulls ahead or falls behind
      case $base in "$control"|multitask_ctx)
        # shellcheck disable=SC2086 # a list of arm names
        "$PY" -m recarena.compare "$d/ab_$tag.json" $others --against "$base" --at curve \
          --plot "$d/ab_${tag}_curve_$base.png" >"$d/ab_${tag}_curve_$base.txt" \
          || { echo "recarena.compare --at curve failed on $d/ab_$tag.json" >&2; exit 1; } ;;
      esac
    done >"$d/ab_${tag}_pairs.txt" || { echo "recarena.compare failed on $d/ab_$tag.json" >&2; exit 1; }
    # each meta-init's climb from its own R@0, alone and less the oracle's between the same episodes
    # shellcheck disable=SC2086 # a list of arm names
    { "$PY" -m recarena.compare "$d/ab_$tag.json" $ALGOS $extra_names --at "$climb" --minus R@0 &&
      "$PY" -m recarena.compare "$d/ab_$tag.json" $ALGOS $extra_names --against oracle --at "$climb" --minus R@0
    } >>"$d/ab_${tag}_pairs.txt" || { echo "recarena.compare --minus failed on $d/ab_$tag.json" >&2; exit 1; }
    cat "$d/ab_${tag}_pairs.txt"
  done
done
