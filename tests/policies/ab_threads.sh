#!/usr/bin/env bash
# tests/policies/ab_threads.sh - recarena-ab --threads (docs/agents.md 2.1): tasks played on 1, 3
# and 8 threads (more threads than tasks) give byte-identical reports (table, JSON, CSV) on two
# sims, with every kind of arm that learns within a task (bandits, Meta-TS, a target network with
# the task context), the oracle and the frozen episodes; --threads with --address or
# --learn-prior, or out of range, is refused naming the flag.
#   usage: ab_threads.sh RECARENA_AB
set -u
ab=$(realpath "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
fail () { echo "FAIL: $*"; exit 1; }
"$ab" --env ECommerce-v1 --task-ids train:0-1 --num-envs 2 --episodes 1 --quiet --learn-prior prior.txt \
  --arms metats:prior=none:credit=metric >/dev/null 2>err || fail "learn: $(cat err)"
run () {   # run SIM THREADS ARMS
  "$ab" --env "$1" --config hidden_tastes=1 --task-ids test:3-9 --num-envs 3 --episodes 3 \
    --frozen-episodes 1 --curve-episodes 0,1,2 --bootstrap 200 --threads "$2" --arms "$3" \
    --json "$1.t$2.json" --csv "$1.t$2.csv" >"$1.t$2.txt" 2>"$1.t$2.err" \
    || fail "$1 --threads $2: $(cat "$1.t$2.err")"
}
bandits=random,popularity,linucb,lints,logts
target=target:init=random:lr=1e-2:rollout=2:context=4:affinity=true:name=tctx
run ECommerce-v1 1 "$bandits,metats:prior=prior.txt:credit=metric,$target,oracle"
grep -q "tctx" ECommerce-v1.t1.txt || fail "no target row: $(cat ECommerce-v1.t1.txt)"
for t in 3 8; do
  run ECommerce-v1 "$t" "$bandits,metats:prior=prior.txt:credit=metric,$target,oracle"
  for ext in txt json csv; do
    cmp -s "ECommerce-v1.t1.$ext" "ECommerce-v1.t$t.$ext" || fail "ECommerce-v1: --threads $t's $ext differs from 1's"
  done
done
run News-v1 1 "$bandits,$target,oracle"
run News-v1 3 "$bandits,$target,oracle"
for ext in txt json csv; do
  cmp -s "News-v1.t1.$ext" "News-v1.t3.$ext" || fail "News-v1: --threads 3's $ext differs from 1's"
done
expect_err () {   # expect_err REGEX ARGS...
  local re="$1"
  shift
  "$ab" "$@" >out 2>err
  [ $? -eq 2 ] || fail "'$*' did not exit 2: $(cat err)"
  grep -Eq "$re" err || fail "'$*' said: $(cat err), expected /$re/"
}
expect_err "^recarena-ab: --threads 2: .*with --address" --threads 2 --address tcp://127.0.0.1:1 --quiet
expect_err "^recarena-ab: --threads 2: --learn-prior" --threads 2 --learn-prior p.txt \
  --arms metats:prior=none --task-ids train:0-1 --quiet
expect_err "^recarena-ab: --threads: " --threads 0 --quiet
expect_err "^recarena-ab: --threads: " --threads many --quiet
echo "ab threads: ok"
