#!/bin/sh
# bench/meta_bar.sh - issue 11's bar, lines 2 and 3, read in one command with the project's recipe
# for each sim (docs/meta.md 6.0): hidden tastes on; the meta arm is Reptile with the task context
# (docs/agents.md T8 onwards, each sim's flags below, from the sections that read the bar);
# multitask_ctx is --algo multitask trained with the same network and context (the issue's
# pretrain-then-fine-tune ablation, "same network"); multitask is the same without the context;
# scratch_ctx a fresh network with the same context. bench/meta_all_sims.sh trains them (BUDGET env
# steps each, seed SEED), lets every target arm choose its sampling temperature, update interval,
# online rate and adapted parameters on CHOOSE_VAL, and plays TEST; this script then writes the
# bar's reads to OUT/<sim>/bar.txt and prints them:
#   line 2: reptile - multitask_ctx at R@0, R@1 and R@5 (met on the sim: R@5's 95% CI above 0);
#   line 3: reptile - scratch_ctx, scratch, linucb and metats at R@5 (met: every CI above 0);
#   the climb: reptile's R@K - R@0 (met: no interval wholly below 0);
# and where the curves stand, to show why a line is or is not met: reptile - multitask_ctx at every
# R@K (in bar.txt, and drawn in OUT/<sim>/ab_<split>_curve_multitask_ctx.png), every arm's R@K
# curve (OUT/<sim>/plots_<split>/learning_curves.png) and the meta-training curves of reptile,
# multitask and multitask_ctx (OUT/<sim>/meta_training.png).
# Line 1 needs per-task experts trained to the budget docs/meta.md 6.51 chose (1.2M-19.2M env
# steps each), which this script does not train; EXPERT_TASKS=N passes to meta_all_sims.sh, which
# adds 300k-step experts, short of converged on every sim, on test:0 to N-1 (not on TEST).
#
# usage: bench/meta_bar.sh [OUT]      (default OUT=meta_bar)
# settings (environment): SIMS ("ECommerce-v1 Ads-v1 News-v1 Content-v1"), SEED (1), TEST
#   (test:0-127), VAL (val:0-15: meta-validation's tasks), CHOOSE_VAL (VAL: the tasks the grids
#   below play), TRAIN (train:0-63), BUDGET (1000000), NUM_ENVS (16 users per task), EPISODES
#   (21), OOD (none; e.g. ood:0-63), BUILD (build), the grids every target arm chooses from on
#   CHOOSE_VAL: TEMPS ("1 0.5 0.25 0.1 0.05 0.02 0.01"), ROLLOUTS ("16 8 4 2"), LRS ("1e-2
#   3e-3 1e-3 0"), PARAMS ("all head"); the algorithms, the sim config and each sim's flags are the
#   recipe's.
# A read on tasks and a seed no earlier read used (docs/meta.md 6.0, "Open", lists the fresh ones)
# is a fresh test of the bar. Time on a 2-core machine: 8-10 minutes per sim, 30 for Content-v1
# (docs/meta.md 6.63).
# A short smoke run:
#   SIMS=News-v1 BUDGET=20000 TEST=test:0-3 VAL=val:0-1 EPISODES=8 NUM_ENVS=4 bench/meta_bar.sh /tmp/bar
set -eu
OUT=${1:-meta_bar}
SIMS=${SIMS:-"ECommerce-v1 Ads-v1 News-v1 Content-v1"}
EPISODES=${EPISODES:-21}
PY=$(dirname "$0")/../.venv/bin/python
[ -x "$PY" ] || { echo "set up the virtual environment first (scripts/setup.sh)" >&2; exit 2; }
export SEED="${SEED:-1}" TEST="${TEST:-test:0-127}" VAL="${VAL:-val:0-15}" TRAIN="${TRAIN:-train:0-63}"
export BUDGET="${BUDGET:-1000000}" NUM_ENVS="${NUM_ENVS:-16}" EPISODES OOD="${OOD:-none}"
export ALGOS="multitask reptile" CONFIG="hidden_tastes=1"
export TEMPS="${TEMPS:-1 0.5 0.25 0.1 0.05 0.02 0.01}" ROLLOUTS="${ROLLOUTS:-16 8 4 2}" LRS="${LRS:-1e-2 3e-3 1e-3 0}"
export PARAMS="${PARAMS:-all head}"
# all_above MEASURE: whether reptile's rows for MEASURE in recarena.compare's tables on stdin (arm,
# measure, diff, [lo, hi], p, tasks) are there and all have their 95% CI above 0
all_above() { awk -v m="$1" '$1 == "reptile" && $2 == m { n++; gsub(/[[,]/, "", $4); if ($4 + 0 <= 0) bad = 1 }
                              END { exit bad || !n }'; }
# none_below: whether no reptile row on stdin has its 95% CI wholly below 0
none_below() { awk '$1 == "reptile" { gsub(/[],]/, "", $5); if ($5 + 0 < 0) bad = 1 } END { exit bad }'; }
verdict() { if "$@"; then echo met; else echo "not met"; fi; }
# compare ARGS: reptile against an arm of the sim's test report $j (recarena.compare)
compare() { "$PY" -m recarena.compare "$j" reptile "$@" || exit 1; }
climb=R@1,R@5   # where the climb from R@0 is read, as meta_all_sims.sh reads it
[ "$EPISODES" -gt 20 ] && climb="$climb,R@20"
for sim in $SIMS; do
  # each sim's recipe: META_FLAGS (every training, and the scratch arms' adaptation), the task
  # context (the meta arm's and multitask_ctx's), Reptile's own flags, scratch_ctx's context keys
  case $sim in
    ECommerce-v1) # docs/meta.md 6.44 and 6.47 (T9, T10, T12, T13 handed over by T14)
      common="--val-act sample --slot-credit 3 --inner-lr 1e-2 --affinity true --temp 0.05 --slot-feedback 0"
      ctx="--context 16 --context-residual true --scorer-yield true --context-session 2 --context-baseline 0.1 --context-handover 256"
      reptile="--adapt-params head --outer-lr 0.1"
      scratch_ctx="16:context_session=2:context_baseline=0.1:context_handover=256"
      arm_keys="" ;;
    Ads-v1) # docs/meta.md 6.49 and 6.55 ("paid" per rank, validated at rate 0)
      common="--val-act sample --slot-credit 3 --inner-lr 1e-2 --affinity true --temp 0.05 --slot-feedback 6"
      ctx="--context 4 --context-residual true --scorer-yield true --context-session 2 --context-baseline 0.035 --context-handover 64"
      reptile="--adapt-params head --outer-lr 0.03 --val-inner-lr 0"
      scratch_ctx="4:context_session=2:context_baseline=0.035:context_handover=64"
      arm_keys="" ;;
    News-v1) # docs/meta.md 6.47 and 6.56 (T12)
      common="--val-act sample --slot-credit 3 --inner-lr 1e-2 --affinity true --temp 0.05 --slot-feedback 0"
      ctx="--context 16 --context-session 2"
      reptile="--adapt-params head --outer-lr 0.3"
      scratch_ctx="16:context_session=2"
      arm_keys=":adapt_params=all" ;;
    Content-v1) # docs/meta.md 6.56 and 6.59 (T12 and the affinity head on clicks)
      common="--val-act sample"
      ctx="--slot-feedback 0 --context 16 --context-session 2 --affinity true"
      reptile=""
      scratch_ctx="16:context_session=2:affinity=true"
      arm_keys=":adapt_params=all" ;;
    *) echo "SIMS: no recipe for '$sim' (ECommerce-v1, Ads-v1, News-v1, Content-v1)" >&2; exit 2 ;;
  esac
  echo "== $sim: bench/meta_all_sims.sh with the bar's recipe, seed $SEED, $TEST"
  SIMS=$sim META_FLAGS=$common META_FLAGS_reptile="$reptile $ctx" MULTITASK_CONTEXT=$ctx \
    SCRATCH_CONTEXT=$scratch_ctx ARM_KEYS=$arm_keys "$(dirname "$0")/meta_all_sims.sh" "$OUT"
  d=$OUT/$sim
  j=$d/ab_${TEST%%:*}.json
  compare --against multitask_ctx --at R@0,R@1,R@5 >"$d/bar_line2.txt"
  for base in scratch_ctx scratch linucb metats; do compare --against "$base" --at R@5; done >"$d/bar_line3.txt"
  compare --at "$climb" --minus R@0 >"$d/bar_climb.txt"
  {
    echo "$sim, seed $SEED, $TEST, hidden tastes; the meta arm is reptile (docs/meta.md 6.0)"
    cat "$d/bar_line2.txt" "$d/bar_line3.txt" "$d/bar_climb.txt"
    echo "along the curve ($(basename "${j%.json}")_curve_multitask_ctx.png; every arm's curve in" \
      "plots_${TEST%%:*}/learning_curves.png, meta-training in meta_training.png):"
    cat "${j%.json}_curve_multitask_ctx.txt"
    echo "line 2 (reptile - multitask_ctx at R@5, CI above 0): $(verdict all_above R@5 <"$d/bar_line2.txt")"
    echo "line 3 (reptile - scratch_ctx, scratch, linucb, metats at R@5, every CI above 0):" \
      "$(verdict all_above R@5 <"$d/bar_line3.txt")"
    echo "no R@K below R@0 (no interval of reptile's R@K - R@0 wholly below 0): $(verdict none_below <"$d/bar_climb.txt")"
  } >"$d/bar.txt"
  cat "$d/bar.txt"
done
