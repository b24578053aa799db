#!/bin/sh
# tests/meta/meta_cli.sh BIN CASE - recarena-meta end to end (docs/meta.md 5). Cases:
#   bad_flags      every bad flag or value: exit 2 and a message naming the flag
#   config         key = value files: read, overridden by the command line, unknown keys named
#   determinism    same seed: bit-identical meta-init with --workers 1 and 2 (reptile and es)
#   adapts_faster  a short reptile run: the best val R@5w beats the random init's (iter 0)
#   resume         --checkpoint-in of the best checkpoint reproduces its val score exactly (with
#                  --val-act greedy and sample; --temp and --inner-opt travel in the checkpoint)
#   address SERVER through a recarena-server (--address) the same meta-init as in process
set -u
BIN=$1
CASE=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail () { echo "FAIL: $*"; exit 1; }
SMALL="--val-tasks val:0-3 --envs-per-task 4 --meta-batch 3 --population 6 --rollout-len 8 --hidden 16 --quiet"

bad () { # expected-pattern args...
  pat=$1; shift
  "$BIN" --quiet "$@" >"$T/out" 2>&1; rc=$?
  [ $rc -eq 2 ] || fail "$* exited $rc, expected 2: $(cat "$T/out")"
  grep -q -- "$pat" "$T/out" || fail "$*: message does not name $pat: $(cat "$T/out")"
}

case $CASE in
bad_flags)
  bad "--algo" --algo maml2
  bad "--env" --env ''
  bad "--train-tasks" --train-tasks train:3-1
  bad "--val-tasks" --val-tasks nope:1
  bad "--budget-steps" --budget-steps 0
  bad "--iters" --iters -1
  bad "--val-every" --val-every x
  bad "--seed" --seed -3
  bad "--device" --device gpu9
  bad "--workers" --workers 0
  bad "--inner-lr" --inner-lr nan
  bad "--inner-steps" --inner-steps 1.5
  bad "--outer-lr" --outer-lr 0
  bad "--meta-batch" --meta-batch 0
  bad "--population" --population 1
  bad "--population" --algo es --population 5
  bad "--sigma" --sigma -1
  bad "--entropy" --entropy abc
  bad "--envs-per-task" --envs-per-task 0
  bad "--rollout-len" --rollout-len 0
  bad "--adapt-params" --adapt-params body
  bad "--checkpoint-in" --checkpoint-in "$T/missing.safetensors"
  bad "--bogus" --bogus 1
  bad "--address: 2 endpoints for 1 rank" --address tcp://127.0.0.1:1,tcp://127.0.0.1:2
  bad "--metrics" --metrics
  bad "--metrics" --metrics "$T/no/such/dir/m.jsonl"
  bad "unexpected argument" stray
  bad "--config" --config "$T/missing.conf"
  bad "--sim-config" --sim-config hidden_tastes
  bad "--temp" --temp 0
  bad "--temp" --temp -1
  bad "--val-act" --val-act top
  bad "--inner-opt" --inner-opt rmsprop
  echo "ok: bad flags"
  ;;
config)
  printf '# comment\nalgo = es\nbudget-steps = 100\nnot-a-key = 3\n' >"$T/bad.conf"
  bad "not-a-key" --config "$T/bad.conf"
  printf 'algo = es\npopulation = 7\n' >"$T/pop.conf"
  bad "population" --config "$T/pop.conf"
  printf 'algo = bogus\n' >"$T/algo.conf"
  bad "line 1: algo" --config "$T/algo.conf"
  # a good file, with the command line overriding its algo and budget
  printf 'algo = es   # overridden\nbudget-steps = 999999999\nval-every = 100\n' >"$T/ok.conf"
  "$BIN" --config "$T/ok.conf" --algo reptile --budget-steps 500 $SMALL --metrics "$T/m.jsonl" >"$T/out" 2>&1 \
    || fail "good config: $(cat "$T/out")"
  grep -q '^reptile:' "$T/out" || fail "the command line's --algo did not win: $(cat "$T/out")"
  grep -q '"kind":"done"' "$T/m.jsonl" || fail "no done line"
  grep -q '"kind":"val","iter":0' "$T/m.jsonl" || fail "no val line at iter 0"
  grep -q '"kind":"train","iter":1,' "$T/m.jsonl" || fail "no train line"
  # --sim-config reaches the sims: a value the sim rejects is a runtime error naming the key,
  # a good one (also as a file line) runs
  "$BIN" --sim-config hidden_tastes=2 --budget-steps 100 $SMALL >"$T/out" 2>&1; rc=$?
  [ $rc -eq 1 ] && grep -q "hidden_tastes" "$T/out" || fail "--sim-config hidden_tastes=2: rc $rc, $(cat "$T/out")"
  printf 'sim-config = hidden_tastes=1\n' >"$T/sim.conf"
  "$BIN" --config "$T/sim.conf" --budget-steps 100 $SMALL >"$T/out" 2>&1 || fail "sim-config line: $(cat "$T/out")"
  echo "ok: config"
  ;;
determinism)
  # batches of >= 64 envs, so a second worker really steps half of them (RA_SESSION_MIN_PARALLEL)
  BIG="--val-tasks val:0-3 --envs-per-task 16 --meta-batch 4 --population 6 --rollout-len 8 --hidden 16 --quiet"
  for algo in reptile es; do
    for w in 1 2; do
      "$BIN" --algo $algo --budget-steps 6000 --val-every 1 --seed 7 --workers $w $BIG \
        --checkpoint-out "$T/$algo.$w.st" --metrics "$T/$algo.$w.jsonl" >"$T/out" 2>&1 || fail "$algo workers $w: $(cat "$T/out")"
    done
    cmp -s "$T/$algo.1.st" "$T/$algo.2.st" || fail "$algo: meta-init differs between 1 and 2 workers"
    # everything but the timings and the checkpoint's own name
    sed 's/"samples_per_s":[^,]*,"wall_s":[^}]*//; s/"checkpoint":.*//' "$T/$algo.1.jsonl" >"$T/a"
    sed 's/"samples_per_s":[^,]*,"wall_s":[^}]*//; s/"checkpoint":.*//' "$T/$algo.2.jsonl" >"$T/b"
    cmp -s "$T/a" "$T/b" || fail "$algo: metrics differ between 1 and 2 workers"
  done
  echo "ok: bit-identical meta-init for 1 and 2 workers"
  ;;
adapts_faster)
  # greedy validation: at 30,000 env steps the policy is still close to uniform, so sampled play
  # (the default --val-act) scores near random for both; top-k play shows what the init learnt
  "$BIN" --algo reptile --budget-steps 30000 --val-every 5 --seed 3 --val-tasks val:0-7 --envs-per-task 8 \
    --meta-batch 4 --val-act greedy --quiet --metrics "$T/m.jsonl" >"$T/out" 2>&1 || fail "$(cat "$T/out")"
  init=$(grep '"kind":"val","iter":0,' "$T/m.jsonl" | sed 's/.*"score":\([-0-9.e+]*\).*/\1/')
  best=$(grep '"kind":"done"' "$T/m.jsonl" | sed 's/.*"best_score":\([-0-9.e+]*\).*/\1/')
  echo "val R@5w after adaptation: random init $init, meta-init $best"
  awk -v a="$init" -v b="$best" 'BEGIN { exit !(b > a * 1.03) }' \
    || fail "meta-init $best does not adapt better than the random init $init (+3%)"
  echo "ok: adapts faster"
  ;;
resume)
  # greedy validation: top-k play moves with every parameter (sampled play of a near-uniform
  # init can score the same across iterations, which would make this check weak)
  "$BIN" --algo fomaml --budget-steps 4000 --val-every 2 --seed 5 --val-act greedy $SMALL --checkpoint-out "$T/c.st" \
    --metrics "$T/m.jsonl" >"$T/out" 2>&1 || fail "$(cat "$T/out")"
  best=$(grep '"kind":"done"' "$T/m.jsonl" | sed 's/.*"best_score":\([-0-9.e+]*\).*/\1/')
  "$BIN" --checkpoint-in "$T/c.st" --iters 0 --seed 5 --val-act greedy $SMALL --metrics "$T/r.jsonl" >"$T/out" 2>&1 \
    || fail "$(cat "$T/out")"
  again=$(grep '"kind":"val","iter":0,' "$T/r.jsonl" | sed 's/.*"score":\([-0-9.e+]*\).*/\1/')
  [ "$best" = "$again" ] || fail "resumed val score $again, the checkpoint's was $best"
  # a temperature: written into the checkpoint, read back on resume (sampled validation)
  "$BIN" --algo reptile --budget-steps 4000 --val-every 2 --seed 5 --temp 0.5 --val-act sample $SMALL \
    --checkpoint-out "$T/t.st" --metrics "$T/t.jsonl" >"$T/out" 2>&1 || fail "$(cat "$T/out")"
  head -c 4096 "$T/t.st" | grep -q '"target.temp":"0.5"' || fail "the checkpoint does not carry target.temp 0.5"
  tbest=$(grep '"kind":"done"' "$T/t.jsonl" | sed 's/.*"best_score":\([-0-9.e+]*\).*/\1/')
  "$BIN" --checkpoint-in "$T/t.st" --iters 0 --seed 5 --val-act sample $SMALL --metrics "$T/tr.jsonl" >"$T/out" 2>&1 \
    || fail "$(cat "$T/out")"
  tagain=$(grep '"kind":"val","iter":0,' "$T/tr.jsonl" | sed 's/.*"score":\([-0-9.e+]*\).*/\1/')
  [ "$tbest" = "$tagain" ] || fail "temp 0.5: resumed val score $tagain, the checkpoint's was $tbest"
  # the inner optimizer: written into the checkpoint, read back on resume (the score only matches
  # if the resumed validation adapts with SGD again)
  "$BIN" --algo reptile --budget-steps 4000 --val-every 2 --seed 5 --inner-opt sgd --inner-lr 0.1 --val-act greedy \
    $SMALL --checkpoint-out "$T/o.st" --metrics "$T/o.jsonl" >"$T/out" 2>&1 || fail "$(cat "$T/out")"
  head -c 4096 "$T/o.st" | grep -q '"target.optimizer":"sgd"' || fail "the checkpoint does not carry target.optimizer sgd"
  obest=$(grep '"kind":"done"' "$T/o.jsonl" | sed 's/.*"best_score":\([-0-9.e+]*\).*/\1/')
  "$BIN" --checkpoint-in "$T/o.st" --iters 0 --seed 5 --val-act greedy $SMALL --metrics "$T/or.jsonl" >"$T/out" 2>&1 \
    || fail "$(cat "$T/out")"
  oagain=$(grep '"kind":"val","iter":0,' "$T/or.jsonl" | sed 's/.*"score":\([-0-9.e+]*\).*/\1/')
  [ "$obest" = "$oagain" ] || fail "inner-opt sgd: resumed val score $oagain, the checkpoint's was $obest"
  "$BIN" --checkpoint-in "$T/o.st" --iters 0 --seed 5 --val-act greedy --inner-opt adam $SMALL --metrics "$T/oa.jsonl" \
    >"$T/out" 2>&1 || fail "$(cat "$T/out")"
  oadam=$(grep '"kind":"val","iter":0,' "$T/oa.jsonl" | sed 's/.*"R@1":\([-0-9.e+]*\).*/\1/')
  osgd=$(grep '"kind":"val","iter":0,' "$T/or.jsonl" | sed 's/.*"R@1":\([-0-9.e+]*\).*/\1/')
  [ "$oadam" != "$osgd" ] || fail "--inner-opt adam on an sgd checkpoint adapted the same (R@1 $osgd)"
  echo "ok: resume (greedy $best; sampled at temp 0.5: $tbest; inner sgd: $obest)"
  ;;
address)
  SERVER=$3
  "$SERVER" --bind "ipc://$T/s.sock" --workers 1 >"$T/server.log" 2>&1 &
  spid=$!
  trap 'kill $spid 2>/dev/null; wait $spid 2>/dev/null; rm -rf "$T"' EXIT
  i=0
  while [ ! -S "$T/s.sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
  for algo in multitask es; do
    "$BIN" --algo $algo --budget-steps 3000 --val-every 2 --seed 2 $SMALL --checkpoint-out "$T/in.st" >"$T/out" 2>&1 \
      || fail "in process: $(cat "$T/out")"
    "$BIN" --algo $algo --budget-steps 3000 --val-every 2 --seed 2 $SMALL --checkpoint-out "$T/srv.st" \
      --address "ipc://$T/s.sock" >"$T/out" 2>&1 || fail "through the server: $(cat "$T/out")"
    cmp -s "$T/in.st" "$T/srv.st" || fail "$algo: the server run's meta-init differs from the in-process one"
  done
  echo "ok: same meta-init through a server"
  ;;
*) fail "unknown case $CASE" ;;
esac
