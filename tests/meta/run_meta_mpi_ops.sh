#!/usr/bin/env bash
# tests/meta/run_meta_mpi_ops.sh - recarena-meta under mpirun as it is operated (docs/scaling.md 5):
#   servers: two local recarena-server processes on free TCP ports, one per rank
#            (--address EP0,EP1): each server makes envs for its rank only, and the meta-init is
#            byte-identical to the in-process run without mpirun (reptile, es, multitask); an
#            --address list whose length is not the rank count is exit 2 naming the flag and the
#            count.
#   kill:    rank 1 of a long -np 2 run is SIGKILLed mid-run: the job must end within 30 s with
#            a non-zero exit and a message naming rank 1 (OpenMPI's mpirun reports it), and
#            --checkpoint-in resumes from the checkpoint the killed job left (its score is one the
#            killed job recorded) to a normal end.
# Exits 77 (skipped) when the build has no MPI or no mpiexec.
# usage: run_meta_mpi_ops.sh MPIEXEC RECARENA_META HAVE_MPI(ON|OFF) CASE [RECARENA_SERVER]
set -uo pipefail
mpiexec=$1 bin=$2 have=$3 case=$4 server=${5:-}
if [ "$have" != "ON" ] || [ -z "$mpiexec" ] || ! command -v "$mpiexec" >/dev/null; then
  echo "run_meta_mpi_ops: built without MPI or no mpiexec: skipped"
  exit 77
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl=self,vader,tcp OMPI_MCA_btl_vader_single_copy_mechanism=none
T=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
fail=0
SMALL="--val-tasks val:0-3 --envs-per-task 4 --population 6 --rollout-len 8 --hidden 16 --quiet"

# A TCP port nobody listens on now (the kernel's choice for port 0).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

case $case in
servers)
  eps=""
  for k in 0 1; do
    port=$(free_port) || { echo "FAIL: no free port (python3)"; exit 1; }
    "$server" --bind "tcp://127.0.0.1:$port" --workers 1 >"$T/server$k.log" 2>&1 &
    pids+=($!)
    i=0
    until grep -q "listening on" "$T/server$k.log" || [ $i -ge 200 ]; do sleep 0.05; i=$((i + 1)); done
    grep -q "listening on" "$T/server$k.log" || { echo "FAIL: server $k: $(cat "$T/server$k.log")"; exit 1; }
    eps="$eps${eps:+,}tcp://127.0.0.1:$port"
  done
  echo "  servers: $eps"
  for algo in reptile es multitask; do
    args="--algo $algo --meta-batch 4 --budget-steps 3000 --val-every 1 --seed 1 $SMALL"
    timeout 120 "$bin" $args --checkpoint-out "$T/in.st" >"$T/out" 2>&1 \
      || { echo "FAIL: $algo in process: $(cat "$T/out")"; fail=1; continue; }
    for k in 0 1; do grep -c "make" "$T/server$k.log" >"$T/makes$k"; done
    timeout 180 "$mpiexec" --oversubscribe -np 2 "$bin" $args --address "$eps" \
      --checkpoint-out "$T/srv.st" >"$T/out" 2>&1 \
      || { echo "FAIL: $algo -np 2 --address $eps: $(cat "$T/out")"; fail=1; continue; }
    for k in 0 1; do # every rank made its envs (work and val) on its own server
      before=$(cat "$T/makes$k") after=$(grep -c "make" "$T/server$k.log")
      [ "$after" -ge $((before + 2)) ] || { echo "FAIL: $algo: server $k made $((after - before)) batches, expected 2 (rank $k's)"; fail=1; }
    done
    if cmp -s "$T/in.st" "$T/srv.st"; then
      echo "  $algo: -np 2 over two servers == in process"
    else
      echo "FAIL: $algo: the meta-init over one server per rank differs from the in-process one"; fail=1
    fi
  done
  # a list that is not one endpoint per rank: exit 2 naming the flag and the counts
  out=$(timeout 60 "$mpiexec" --oversubscribe -np 2 "$bin" --algo reptile $SMALL --meta-batch 2 \
        --address "$eps,tcp://127.0.0.1:1" 2>&1); rc=$?
  if [ $rc -ne 2 ] || ! grep -q -- "--address: 3 endpoints for 2 ranks" <<<"$out"; then
    echo "FAIL: 3 endpoints for -np 2 exited $rc: $out"; fail=1
  fi
  out=$(timeout 60 "$bin" --algo reptile $SMALL --address "$eps" 2>&1); rc=$?
  if [ $rc -ne 2 ] || ! grep -q -- "--address: 2 endpoints for 1 rank" <<<"$out"; then
    echo "FAIL: 2 endpoints without mpirun exited $rc: $out"; fail=1
  fi
  out=$(timeout 60 "$mpiexec" --oversubscribe -np 2 "$bin" --algo reptile $SMALL --meta-batch 2 \
        --address "${eps%%,*}," 2>&1); rc=$?
  if [ $rc -ne 2 ] || ! grep -q -- "--address: endpoint 1 of 2 is empty" <<<"$out"; then
    echo "FAIL: an empty endpoint exited $rc: $out"; fail=1
  fi
  ;;
kill)
  args="--algo reptile --meta-batch 4 --budget-steps 100000000 --val-every 1 --seed 1 $SMALL"
  "$mpiexec" --oversubscribe -np 2 "$bin" $args --checkpoint-out "$T/c.st" --metrics "$T/m.jsonl" \
    >"$T/out" 2>&1 &
  mp=$!
  pids+=($mp)
  # wait until the job trains (two iterations done, a checkpoint written)
  i=0
  until [ "$(cat "$T/m.jsonl" 2>/dev/null | grep -c '"kind":"train"')" -ge 2 ] && [ -f "$T/c.st" ] || [ $i -ge 600 ]; do
    sleep 0.1; i=$((i + 1))
  done
  [ -f "$T/c.st" ] || { echo "FAIL: the job did not start training: $(cat "$T/out")"; exit 1; }
  # rank 1: the descendant of mpirun whose environment says OMPI_COMM_WORLD_RANK=1
  victim=""
  todo=$mp
  while [ -n "$todo" ] && [ -z "$victim" ]; do
    next=""
    for p in $todo; do
      for c in $(ps -o pid= --ppid "$p"); do
        if grep -qx "OMPI_COMM_WORLD_RANK=1" <(tr "\0" "\n" <"/proc/$c/environ" 2>/dev/null); then
          victim=$c
        fi
        next="$next $c"
      done
    done
    todo=$next
  done
  [ -n "$victim" ] || { echo "FAIL: rank 1's process not found under mpirun $mp"; exit 1; }
  t0=$(date +%s.%N)
  kill -9 "$victim"
  # the job must end by itself within the deadline
  i=0
  while kill -0 "$mp" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
  if kill -0 "$mp" 2>/dev/null; then
    echo "FAIL: the job still runs 30 s after rank 1 was killed"
    kill -- "$mp"; exit 1
  fi
  wait "$mp"; rc=$?
  took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  echo "  killed rank 1 (pid $victim): the job ended in ${took} s with exit $rc; it said:"
  grep -v '^ *$' "$T/out" | grep -v "^--" | sed 's/^/    /' | head -12
  [ $rc -ne 0 ] || { echo "FAIL: exit 0 after a rank was killed"; fail=1; }
  grep -q "rank 1" "$T/out" || { echo "FAIL: nothing names rank 1"; fail=1; }
  ! grep -q '"kind":"done"' "$T/m.jsonl" || { echo "FAIL: the killed job wrote a done line"; fail=1; }
  # resume: the checkpoint is whole and holds one of the recorded meta-inits
  scores=$(grep '"kind":"val"' "$T/m.jsonl" | sed 's/.*"score":\([-0-9.e+]*\).*/\1/')
  timeout 120 "$mpiexec" --oversubscribe -np 2 "$bin" --algo reptile --meta-batch 4 --budget-steps 100000000 \
    --iters 2 --val-every 1 --seed 1 $SMALL --checkpoint-in "$T/c.st" --checkpoint-out "$T/r.st" \
    --metrics "$T/r.jsonl" >"$T/out" 2>&1 || { echo "FAIL: resume: $(cat "$T/out")"; exit 1; }
  # (a continued run numbers on from the checkpoint's iteration, docs/meta.md 5)
  first=$(grep -m1 '"kind":"val"' "$T/r.jsonl" | sed 's/.*"score":\([-0-9.e+]*\).*/\1/')
  from=$(grep -m1 '"kind":"val"' "$T/r.jsonl" | sed 's/.*"iter":\([0-9]*\),.*/\1/')
  grep -q "\"kind\":\"val\",\"iter\":$from,.*\"score\":$first}" "$T/m.jsonl" \
    || { echo "FAIL: the resumed start (iter $from) scores $first, not what the killed job recorded there ($(echo $scores))"; fail=1; }
  grep -q "\"kind\":\"done\",\"iter\":$((from + 2))," "$T/r.jsonl" || { echo "FAIL: the resumed job did not end normally"; fail=1; }
  [ $fail -eq 0 ] && echo "  resumed from the killed job's checkpoint (score $first) and ran 2 iterations"
  ;;
*) echo "unknown case $case"; exit 1 ;;
esac
exit $fail
