#!/usr/bin/env bash
# tests/dist/run_mpi.sh - agents/dist over real MPI jobs: the check mode under 1, 2 and 4 ranks
# must pass and print the same digest (bit-identical results whatever the rank count); a stuck
# rank must end the job within its deadline with an error naming it; a killed rank must end the
# job too. Exits 77 (skipped) when the build has no MPI or no mpiexec is found.
# usage: run_mpi.sh MPIEXEC DIST_CHECK_BINARY HAVE_MPI(ON|OFF) SINGLE_RANK_BINARY
set -uo pipefail
mpiexec=$1 bin=$2 have=$3 single=$4
if [ "$have" != "ON" ] || [ -z "$mpiexec" ] || ! command -v "$mpiexec" >/dev/null; then
  echo "run_mpi: built without MPI or no mpiexec: skipped"
  exit 77
fi
# CI runs as root; OpenMPI refuses that unless told. --oversubscribe: more ranks than cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Quiet the transports a container lacks (no InfiniBand, no shared /dev/shm size guarantees).
export OMPI_MCA_btl=self,vader,tcp OMPI_MCA_btl_vader_single_copy_mechanism=none
run() { timeout "$1" "$mpiexec" --oversubscribe -np "$2" "$bin" "${@:3}"; }
fail=0
declare -A digest
for np in 1 2 4; do
  out=$(run 120 "$np" check 2>&1); rc=$?
  echo "$out" | sed "s/^/  np=$np: /"
  if [ $rc -ne 0 ]; then echo "FAIL: check under $np ranks exited $rc"; fail=1; fi
  digest[$np]=$(echo "$out" | grep '^digest' || true)
  if [ -z "${digest[$np]}" ]; then echo "FAIL: no digest under $np ranks"; fail=1; fi
done
# The build without MPI must compute the very same bits.
digest[0]=$("$single" check | grep '^digest' || true)
if [ "${digest[0]}" != "${digest[1]}" ]; then
  echo "FAIL: the single-rank build gives '${digest[0]}', MPI with 1 rank '${digest[1]}'"; fail=1
fi
if [ "${digest[1]}" != "${digest[2]}" ] || [ "${digest[1]}" != "${digest[4]}" ]; then
  echo "FAIL: results differ with the rank count: '${digest[1]}' '${digest[2]}' '${digest[4]}'"
  fail=1
fi
for mode in hang kill; do
  t0=$(date +%s%N)
  out=$(run 60 2 "$mode" 2 2>&1); rc=$?
  dt=$(( ($(date +%s%N) - t0) / 1000000 ))
  echo "$out" | sed "s/^/  $mode: /" | head -20
  echo "  $mode: exit $rc after ${dt} ms"
  if [ $rc -eq 0 ] || [ $rc -eq 124 ]; then
    echo "FAIL: a $mode rank did not end the job with an error (exit $rc)"; fail=1
  fi
  # Our watchdog names the rank ("rank 1 sent no ..."); for a killed rank mpirun may be first
  # ("process rank 1 ... exited on signal 9").
  if ! grep -Eq 'rank 1 sent no|rank 1 with PID' <<<"$out"; then
    echo "FAIL: the $mode error does not name rank 1"; fail=1
  fi
done
exit $fail
