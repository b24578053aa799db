#!/usr/bin/env bash
# tests/meta/run_meta_mpi.sh - recarena-meta over MPI (docs/scaling.md 5): for es, reptile, es-maml,
# fomaml, multitask (with and without the task context) and distill, a short run under mpirun -np 1, 2
# and 3 (3: uneven slices, an antithetic
# pair split over two ranks), and -np 4 for es and reptile (and the build's single-rank path, no
# mpirun) must write byte-identical checkpoints, and rank 0's metrics must agree too (timings and
# the inner rollouts' mean return aside). Bad rank counts, and a sampling teacher (T18) on more than
# one rank, are an error naming the limit. Exits 77
# (skipped) when the build has no MPI or no mpiexec.
# usage: run_meta_mpi.sh MPIEXEC RECARENA_META HAVE_MPI(ON|OFF)
set -uo pipefail
mpiexec=$1 bin=$2 have=$3
if [ "$have" != "ON" ] || [ -z "$mpiexec" ] || ! command -v "$mpiexec" >/dev/null; then
  echo "run_meta_mpi: built without MPI or no mpiexec: skipped"
  exit 77
fi
# CI runs as root; OpenMPI refuses that unless told. --oversubscribe: more ranks than cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl=self,vader,tcp OMPI_MCA_btl_vader_single_copy_mechanism=none
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
SMALL="--val-tasks val:0-3 --envs-per-task 4 --population 6 --rollout-len 8 --hidden 16 --quiet"
# meta_return of reptile, fomaml, multitask and distill, and distill's imitation, sum doubles over
# ranks (metrics; docs/meta.md 5)
strip() { sed 's/"samples_per_s":[^}]*//; s/"ranks":.*//' "$1" | case $2 in es|es-maml) cat ;; *) sed 's/"meta_return":[^,]*,//; s/"imitation":[^,]*,//' ;; esac; }
# distill's teacher: a short reptile run's network
timeout 120 "$bin" --algo reptile --iters 1 --meta-batch 4 $SMALL --checkpoint-out "$T/teacher.st" >"$T/out" 2>&1 \
  || { echo "FAIL: the teacher's run: $(cat "$T/out")"; exit 1; }
# seeds where the best val score comes after training, so the checkpoint compared is a trained
# meta-init, not the initialisation (checked below)
for run in es:1:4 reptile:1:4 es-maml:1:3 fomaml:4:3 multitask:1:3 distill:1:3 multitask-context:1:3; do
  algo=${run%%:*} rest=${run#*:}
  seed=${rest%:*} maxnp=${rest#*:}
  before=$fail fail=0
  args="--algo ${algo%-context} --meta-batch 4 --budget-steps 6000 --val-every 1 --seed $seed $SMALL"
  [ "$algo" = distill ] && args="$args --teacher $T/teacher.st --inner-steps 2"
  # blocks of one task each (docs/meta.md 2.6); no validation of the start, so a trained theta is kept
  [ "$algo" = multitask-context ] && args="$args --context 4 --inner-steps 2 --val-at-start false"
  timeout 120 "$bin" $args --checkpoint-out "$T/$algo.0.st" --metrics "$T/$algo.0.jsonl" >"$T/out" 2>&1 \
    || { echo "FAIL: $algo without mpirun: $(cat "$T/out")"; fail=1; continue; }
  for np in $(seq 1 $maxnp); do
    timeout 240 "$mpiexec" --oversubscribe -np $np "$bin" $args --checkpoint-out "$T/$algo.$np.st" \
      --metrics "$T/$algo.$np.jsonl" >"$T/out" 2>&1 \
      || { echo "FAIL: $algo -np $np: $(cat "$T/out")"; fail=1; continue; }
    cat "$T/out" | sed "s/^/  $algo np=$np: /"
    if ! cmp "$T/$algo.0.st" "$T/$algo.$np.st"; then
      echo "FAIL: $algo: the checkpoint of -np $np differs from the single-process one"; fail=1
    fi
    if [ "$(strip "$T/$algo.0.jsonl" $algo)" != "$(strip "$T/$algo.$np.jsonl" $algo)" ]; then
      echo "FAIL: $algo: the val metrics of -np $np differ from the single-process ones"; fail=1
    fi
  done
  [ $fail -eq 0 ] && echo "  $algo: $(grep -c '"kind":"train"' "$T/$algo.0.jsonl") iterations, checkpoints identical for 0 to $maxnp ranks"
  fail=$((fail | before))
done
# more ranks than population members: an error naming the need, exit 2 on every rank
out=$(timeout 60 "$mpiexec" --oversubscribe -np 2 "$bin" --algo reptile $SMALL --meta-batch 1 2>&1); rc=$?
if [ $rc -ne 2 ] || ! grep -q "2 ranks need at least one meta-batch task" <<<"$out"; then
  echo "FAIL: -np 2 with --meta-batch 1 exited $rc: $out"; fail=1
fi
# a sampling teacher (T18) draws over its rank's envs: refused with more than one rank
out=$(timeout 60 "$mpiexec" --oversubscribe -np 2 "$bin" --algo distill --teacher "$T/teacher.st" --teacher-temp 1 \
  --meta-batch 4 --iters 1 $SMALL 2>&1); rc=$?
if [ $rc -ne 2 ] || ! grep -q "teacher-temp 1: .*number of ranks (2)" <<<"$out"; then
  echo "FAIL: -np 2 with --teacher-temp exited $rc: $out"; fail=1
fi
exit $fail
