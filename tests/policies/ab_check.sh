#!/usr/bin/env bash
# tests/policies/ab_check.sh - recarena-ab --check, the dry run (docs/agents.md 2): good arms pass
# in seconds whatever --episodes asks (16 million: a real run would take days), print one line and
# write neither report nor prior, nor touch an existing one; a bad arm setting is exit 2 naming
# the arm, the task and the key, as the run would say it.
#   usage: ab_check.sh RECARENA_AB
set -u
ab=$(realpath "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
fail () { echo "FAIL: $*"; exit 1; }
tasks=(--task-ids test:0-3 --num-envs 4 --quiet)
timeout 30 "$ab" --check "${tasks[@]}" --episodes 16000000 --arms random,linucb:alpha=0.5,target:lr=0.01 \
  --json r.json --csv r.csv >out 2>err
rc=$?
[ $rc -eq 0 ] || fail "good arms: exit $rc: $(cat err)"
grep -qx "check: 3 arms x 4 tasks (test:0-3) on ECommerce-v1 OK; nothing played" out \
  || fail "good arms said: $(cat out)"
[ "$(ls)" = "$(printf 'err\nout')" ] || fail "the dry run left files behind: $(ls | tr '\n' ' ')"
echo keep >r.json
timeout 30 "$ab" --check "${tasks[@]}" --json r.json >/dev/null 2>err || fail "existing --json: $(cat err)"
[ "$(cat r.json)" = keep ] || fail "the dry run rewrote an existing --json"
timeout 30 "$ab" --check --learn-prior p.txt --arms metats:prior=none:credit=metric \
  --task-ids train:0-1 --num-envs 2 --quiet >out 2>err || fail "--learn-prior: $(cat err)"
grep -q "check: 1 arm x 2 tasks (train:0-1)" out || fail "--learn-prior said: $(cat out)"
[ -e p.txt ] && fail "the dry run of --learn-prior wrote its prior"
expect_bad () {   # expect_bad ARM REGEX: exit 2, REGEX on stderr, nothing on stdout
  timeout 30 "$ab" --check "${tasks[@]}" --arms "random,$1" --json bad.json >out 2>err
  local rc=$?
  [ $rc -eq 2 ] || fail "'$1': exit $rc, expected 2: $(cat err)"
  grep -Eq "$2" err || fail "'$1' said: $(cat err), expected /$2/"
  [ -s out ] && fail "'$1' printed: $(cat out)"
  [ -e bad.json ] && fail "'$1' wrote its report"
  return 0
}
expect_bad linucb:alpha=abc "^recarena-ab: BAD_CONFIG: arm 'linucb:alpha=abc' on task test:0: .*'alpha'"
expect_bad linucb:alpah=1 "unknown arm setting 'alpah'"
expect_bad target:lr=-1 "arm 'target:lr=-1' on task test:0: target: 'lr' is -1"
echo "ab check: ok"
