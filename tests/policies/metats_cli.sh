#!/usr/bin/env bash
# tests/policies/metats_cli.sh - Meta-TS end to end through recarena-ab (docs/agents.md 1.9):
# --learn-prior writes a prior on two train tasks, the same command twice gives the same file,
# metats:prior=FILE plays from it, and a prior used on another sim, with another credit, or
# missing, or --learn-prior with a non-metats arm, is refused with a message naming the cause.
#   usage: metats_cli.sh RECARENA_AB
set -u
ab=$(realpath "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
fail () { echo "FAIL: $*"; exit 1; }
learn=(--env ECommerce-v1 --task-ids train:0-1 --num-envs 2 --episodes 1 --quiet)
"$ab" "${learn[@]}" --learn-prior p1.txt --arms metats:prior=none:credit=metric >out1 2>err1 \
  || fail "learn: $(cat err1)"
grep -q "ECommerce-v1, 2 tasks (train:0-1), credit metric, D = 37" out1 || fail "learn summary: $(cat out1)"
"$ab" "${learn[@]}" --learn-prior p2.txt --arms metats:prior=none:credit=metric >/dev/null 2>&1
cmp -s p1.txt p2.txt || fail "the same learn command gave different priors"
grep -q "^task_count 2$" p1.txt || fail "task_count is not 2"
# continuing from a file folds two more tasks in
"$ab" --env ECommerce-v1 --task-ids train:2-3 --num-envs 2 --episodes 1 --quiet --learn-prior p3.txt \
  --arms metats:prior=p1.txt:credit=metric >/dev/null 2>err3 || fail "continue: $(cat err3)"
grep -q "^task_count 4$" p3.txt || fail "continuing did not fold 2 more tasks"
run=(--task-ids test:0-1 --num-envs 2 --episodes 2 --curve-episodes 0,1 --bootstrap 50 --quiet)
"$ab" --env ECommerce-v1 "${run[@]}" --arms random,metats:prior=p1.txt:credit=metric >out4 2>err4 \
  || fail "play: $(cat err4)"
grep -q "metats:prior=p1.txt:credit=metric" out4 || fail "no metats row"
expect_err () {   # expect_err REGEX ARGS...
  local re="$1"
  shift
  "$ab" "$@" >out 2>err && fail "accepted: $*"
  grep -Eq "$re" err || fail "'$*' said: $(cat err), expected /$re/"
}
expect_err "prior 'p1.txt' was learnt on ECommerce-v1; this arm plays Ads-v1" \
  --env Ads-v1 "${run[@]}" --arms random,metats:prior=p1.txt:credit=metric
expect_err "prior 'p1.txt' was learnt from credit metric; .*credit=metric" \
  --env ECommerce-v1 "${run[@]}" --arms random,metats:prior=p1.txt
expect_err "cannot read metats prior 'nope.txt'" \
  --env ECommerce-v1 "${run[@]}" --arms random,metats:prior=nope.txt:credit=metric
expect_err "needs prior=FILE" --env ECommerce-v1 "${run[@]}" --arms random,metats
expect_err "learns the prior of a metats arm" "${learn[@]}" --learn-prior x.txt --arms lints
expect_err "learns one metats arm; --arms lists 2" "${learn[@]}" --learn-prior x.txt \
  --arms metats:prior=none,metats:prior=none:v=1
[ -e x.txt ] && fail "a refused --learn-prior wrote its file"
echo "metats cli: ok"
