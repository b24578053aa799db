#!/bin/sh
# tests/meta/meta_cli.sh BIN CASE - recarena-meta end to end (docs/meta.md 5). Cases:
#   bad_flags      every bad flag or value: exit 2 and a message naming the flag
#   config         key = value files: read, overridden by the command line, unknown keys named
#   determinism    same seed: bit-identical meta-init with --workers 1 and 2 (reptile and es;
#                  reptile with --task-credit too, which trains another theta than without, and
#                  with --outer-opt adam, another theta than epsilon's step)
#   defaults       es and es-maml without --population, --sigma and --outer-lr train the
#                  meta-init of 16, 0.1 and 5e-2 given (docs/meta.md 4), not that of 32, 0.02, 1e-2;
#                  reptile --outer-opt adam without --outer-lr that of lr 1e-2, not 1e-3
#   adapts_faster  a short reptile run: the best val R@5w beats the random init's (iter 0)
#   patience       --patience N ends the run at the N-th val point in a row without a better score,
#                  with the same val points until then as the run without it; the done line says
#                  why the run stopped (patience, budget, iters)
#   continues      a run continued from its best or last checkpoint validates as the unbroken run
#                  (4 algos, and reptile with --outer-opt adam: its AdamW moments carry over), and without its first val point (--val-at-start false) the same;
#                  --anneal-over run leaves a fresh run alone and changes a continued reptile run
#   resume         --checkpoint-in of the best checkpoint reproduces its val score exactly (with
#                  --val-act greedy and sample; --temp, --inner-opt, --slot-credit,
#                  --slot-feedback, the affinity head and --adapt-params head travel in the
#                  checkpoint; --val-adapt-params all changes how validation adapts, and
#                  --val-inner-lr 0 leaves theta where it was; --context
#                  on a file without it starts from the file)
#   alone          started without an MPI launcher it does not start MPI: two runs side by side
#                  leave no OpenMPI session directory in TMPDIR (singletons raced on it)
#   address SERVER through a recarena-server (--address) the same meta-init as in process
#   held_out       training or validating on test/ood tasks, or val tasks training also draws,
#                  runs with a warning naming it; train and val apart print none
#   distill        --algo distill with a teacher checkpoint runs, reports its imitation loss and
#                  writes a checkpoint that continues; gated (T17) it runs with a scorer yield and
#                  is exit 2 without one; a sampling teacher (T18) gives the same student for the
#                  same seed and another than top-k's; a privileged critic (T19) trains the same
#                  student on the student's own view and another on one that reveals the tastes;
#                  multitask with the task context runs the same loop without a teacher, the same
#                  seed giving the same bytes; a teacher that reads a task context or
#                  cannot be read is exit 2, and a teacher's view of other envs (here: its
#                  tastes hidden where the student's are not) stops the run naming the pairing
set -u
BIN=$1
CASE=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail () { echo "FAIL: $*"; exit 1; }
# val_at KEY FILE: KEY ("R@0", "R@1", "R@5w") of FILE's first val point
val_at () { grep -m1 '"kind":"val"' "$2" | sed "s/.*\"$1\":\([-0-9.e+]*\).*/\1/"; }
SMALL="--val-tasks val:0-3 --envs-per-task 4 --meta-batch 3 --population 6 --rollout-len 8 --hidden 16 --quiet"

bad () { # expected-pattern args...
  pat=$1; shift
  "$BIN" --quiet "$@" >"$T/out" 2>&1; rc=$?
  [ $rc -eq 2 ] || fail "$* exited $rc, expected 2: $(cat "$T/out")"
  grep -q -- "$pat" "$T/out" || fail "$*: message does not name $pat: $(cat "$T/out")"
}

case $CASE in
distill)
  "$BIN" --iters 1 $SMALL --checkpoint-out "$T/t.st" >"$T/out" 2>&1 || fail "the teacher's run failed: $(cat "$T/out")"
  "$BIN" --algo distill --teacher "$T/t.st" --teacher-weight 3 --iters 2 --inner-steps 2 $SMALL \
    --metrics "$T/d.jsonl" --checkpoint-out "$T/d.st" >"$T/out" 2>&1 || fail "distill failed: $(cat "$T/out")"
  [ "$(grep -c '"kind":"train".*"imitation":[0-9]' "$T/d.jsonl")" -eq 2 ] ||
    fail "no imitation loss in the train lines: $(cat "$T/d.jsonl")"
  "$BIN" --algo distill --teacher "$T/t.st" --checkpoint-in "$T/d.st" --iters 1 --inner-steps 2 $SMALL >"$T/out" 2>&1 ||
    fail "distill continued from its checkpoint failed: $(cat "$T/out")"
  "$BIN" --iters 1 $SMALL --context 4 --checkpoint-out "$T/ctx.st" >"$T/out" 2>&1 || fail "$(cat "$T/out")"
  bad "--teacher $T/ctx.st: it reads a task context" --algo distill --teacher "$T/ctx.st" --iters 1 $SMALL
  bad "--teacher-gate true: .* no scorer yield" --algo distill --teacher "$T/t.st" --teacher-gate true --iters 1 $SMALL
  "$BIN" --algo distill --teacher "$T/t.st" --teacher-gate true --context 4 --scorer-yield true --iters 1 \
    --inner-steps 2 $SMALL --metrics "$T/g.jsonl" >"$T/out" 2>&1 || fail "gated distill failed: $(cat "$T/out")"
  grep -q '"kind":"train".*"imitation":[0-9]' "$T/g.jsonl" || fail "gated: no imitation loss: $(cat "$T/g.jsonl")"
  for i in 1 2; do # a sampling teacher (T18): runs, and the same seed gives the same student
    "$BIN" --algo distill --teacher "$T/t.st" --teacher-temp 0.5 --iters 1 --inner-steps 2 $SMALL \
      --checkpoint-out "$T/s$i.st" >"$T/out" 2>&1 || fail "a sampling teacher's run failed: $(cat "$T/out")"
  done
  cmp -s "$T/s1.st" "$T/s2.st" || fail "a sampling teacher: the same seed gave two students"
  "$BIN" --algo distill --teacher "$T/t.st" --iters 1 --inner-steps 2 $SMALL --checkpoint-out "$T/k.st" >"$T/out" 2>&1 ||
    fail "$(cat "$T/out")"
  ! cmp -s "$T/s1.st" "$T/k.st" || fail "a sampling teacher trained the student its top-k trains"
  # a privileged critic (T19): on the student's own view it values the same rows, so the same
  # student; on a view that reveals the hidden tastes, another (the last theta: the best may be the start)
  for c in false true; do
    "$BIN" --algo distill --teacher "$T/t.st" --teacher-critic $c --iters 1 --inner-steps 2 $SMALL --context 4 \
      --checkpoint-last "$T/o$c.st" >"$T/out" 2>&1 || fail "--teacher-critic $c: $(cat "$T/out")"
    "$BIN" --algo distill --teacher "$T/t.st" --teacher-critic $c --iters 1 --inner-steps 2 $SMALL --context 4 \
      --sim-config hidden_tastes=1 --teacher-sim-config reveal_tastes=true \
      --checkpoint-last "$T/r$c.st" >"$T/out" 2>&1 || fail "--teacher-critic $c on revealed tastes: $(cat "$T/out")"
  done
  cmp -s "$T/ofalse.st" "$T/otrue.st" || fail "a critic on the student's own view trained another student"
  ! cmp -s "$T/rfalse.st" "$T/rtrue.st" || fail "a critic that sees the tastes trained the same student"
  ! cmp -s "$T/ofalse.st" "$T/rfalse.st" || fail "hidden tastes changed nothing: the comparison above tests nothing"
  # multitask with the task context (docs/meta.md 2.6): distill's loop without a teacher; the same
  # seed gives the same bytes, and the checkpoint, which reads the context, continues
  for i in 1 2; do
    "$BIN" --algo multitask --context 4 --iters 1 --inner-steps 2 $SMALL --checkpoint-last "$T/mc$i.st" \
      >"$T/out" 2>&1 || fail "multitask with the context: $(cat "$T/out")"
  done
  cmp -s "$T/mc1.st" "$T/mc2.st" || fail "multitask with the context: the same seed gave two checkpoints"
  "$BIN" --algo multitask --checkpoint-in "$T/mc1.st" --iters 1 --inner-steps 2 $SMALL >"$T/out" 2>&1 ||
    fail "multitask continued from a checkpoint with the context: $(cat "$T/out")"
  "$BIN" --algo distill --teacher "$T/t.st" --teacher-sim-config hidden_tastes=1 --iters 1 $SMALL >"$T/out" 2>&1
  rc=$?
  [ $rc -eq 1 ] && grep -q "the paired sources' .* differ" "$T/out" || fail "a teacher on other envs: exit $rc: $(cat "$T/out")"
  echo "ok: distill"
  ;;
held_out)
  warns () { # expected-pattern args...
    pat=$1; shift
    "$BIN" --iters 1 $SMALL "$@" >"$T/out" 2>&1 || fail "$* failed: $(cat "$T/out")"
    grep -q -- "$pat" "$T/out" || fail "$*: no warning '$pat': $(cat "$T/out")"
  }
  warns "warning: --train-tasks draws from test" --train-tasks test:0-7
  warns "warning: --val-tasks on ood" --val-tasks ood:0-3
  warns "warning: 2 of the 4 val tasks are also training tasks" --train-tasks val:2-9
  "$BIN" --iters 1 $SMALL --train-tasks train:0-7 >"$T/out" 2>&1 || fail "a clean run failed: $(cat "$T/out")"
  ! grep -q warning "$T/out" || fail "train and val apart warned: $(cat "$T/out")"
  ;;
alone)
  mkdir "$T/tmp"
  TMPDIR="$T/tmp" "$BIN" --help >"$T/h1" 2>&1 &
  TMPDIR="$T/tmp" "$BIN" --algo reptile --iters 1 $SMALL >"$T/h2" 2>&1 || fail "a short run failed: $(cat "$T/h2")"
  wait $! || fail "--help failed: $(cat "$T/h1")"
  [ -z "$(ls -A "$T/tmp")" ] || fail "MPI started without mpirun: $(ls -A "$T/tmp")"
  ;;
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
  bad "--val-adapt-params" --val-adapt-params body
  bad "--val-inner-lr" --val-inner-lr -1
  bad "--checkpoint-in" --checkpoint-in "$T/missing.safetensors"
  # damaged files: a directory, empty, text, a header length near 2^64 (it used to wrap a check)
  bad "--checkpoint-in $T: nn checkpoint: '$T' is not a regular file" --checkpoint-in "$T"
  : >"$T/empty.st"
  bad "--checkpoint-in" --checkpoint-in "$T/empty.st"
  echo "not a checkpoint" >"$T/text.st"
  bad "--checkpoint-in" --checkpoint-in "$T/text.st"
  printf '\377\377\377\377\377\377\377\377{"__metadata__":{}}' >"$T/huge.st"
  bad "--checkpoint-in $T/huge.st: meta: '$T/huge.st' is not a safetensors checkpoint" --checkpoint-in "$T/huge.st"
  bad "--config $T: cannot read it" --config "$T"
  bad "--bogus" --bogus 1
  bad "--address: 2 endpoints for 1 rank" --address tcp://127.0.0.1:1,tcp://127.0.0.1:2
  bad "--metrics" --metrics
  bad "--checkpoint-last" --checkpoint-last
  bad "--val-at-start" --val-at-start maybe
  bad "--anneal-over" --anneal-over sometimes
  bad "--anneal-over run: only reptile" --algo es --anneal-over run
  bad "--outer-opt" --outer-opt sgd
  bad "--outer-opt adam: only reptile" --algo fomaml --outer-opt adam
  bad "--anneal-over run: with --outer-opt adam" --outer-opt adam --anneal-over run
  bad "--metrics" --metrics "$T/no/such/dir/m.jsonl"
  bad "unexpected argument" stray
  bad "--config" --config "$T/missing.conf"
  bad "--sim-config" --sim-config hidden_tastes
  bad "--temp" --temp 0
  bad "--temp" --temp -1
  bad "--val-act" --val-act top
  bad "--inner-opt" --inner-opt rmsprop
  bad "--slot-credit" --slot-credit -1
  bad "--task-credit" --task-credit -1
  bad "--patience" --patience -1
  bad "--patience" --patience soon
  bad "--task-credit" --task-credit many
  bad "--task-credit 2: es takes no actor-critic step" --algo es --task-credit 2 --iters 0 $SMALL
  bad "--task-credit 2: without the task context multitask" --algo multitask --task-credit 2 --iters 0 $SMALL
  bad "--slot-feedback" --slot-feedback x
  bad "--slot-feedback 9" --slot-credit 1 --slot-feedback 9 --iters 0 $SMALL
  bad "--affinity" --affinity maybe
  bad "--context" --context -1
  bad "--slot-feedback 9" --context 4 --slot-feedback 9 --iters 0 $SMALL
  bad "--context-residual" --context-residual maybe
  bad "--context-residual true: r(u) is read from the task context" --context-residual true --iters 0 $SMALL
  bad "--scorer-yield" --scorer-yield maybe
  bad "--scorer-yield true: the yield is read from the task context" --scorer-yield true --iters 0 $SMALL
  bad "--context-ts" --context-ts -1
  bad "--context-ts 0.5: the draws are of the task context" --context-ts 0.5 --iters 0 $SMALL
  bad "--context-session" --context-session -1
  bad "--context-session 4: the session adds to the task context" --context-session 4 --iters 0 $SMALL
  bad "--context-baseline" --context-baseline 2
  bad "--context-baseline 0.1: it weighs the task context's feedback" --context-baseline 0.1 --iters 0 $SMALL
  bad "--context-handover" --context-handover -1
  bad "--context-handover 64: it hands T13's weighing" --context 4 --context-handover 64 --iters 0 $SMALL
  bad "--context-kernel" --context-kernel -1
  bad "--context-kernel 4: the kernel reads the task context" --context-kernel 4 --iters 0 $SMALL
  bad "--context-kernel 4: the kernel replaces T8's linear regression" --context 4 --context-kernel 4 --context-ts 0.5 --iters 0 $SMALL
  bad "--algo distill needs --teacher F" --algo distill --iters 0 $SMALL
  bad "--teacher: only distill has a teacher" --teacher "$T/t.st" --iters 0 $SMALL
  bad "--teacher-sim-config: only distill has a teacher" --teacher-sim-config reveal_tastes=true
  bad "--teacher-gate: only distill has a teacher" --teacher-gate true --iters 0 $SMALL
  bad "--teacher-gate" --algo distill --teacher "$T/t.st" --teacher-gate maybe
  bad "--teacher-temp: only distill has a teacher" --teacher-temp 1 --iters 0 $SMALL
  bad "--teacher-critic: only distill has a teacher" --teacher-critic true --iters 0 $SMALL
  bad "--teacher-critic" --algo distill --teacher "$T/t.st" --teacher-critic maybe
  bad "--teacher-temp" --algo distill --teacher "$T/t.st" --teacher-temp 0
  bad "--teacher-weight" --algo distill --teacher "$T/t.st" --teacher-weight 0
  bad "--teacher-weight" --algo distill --teacher "$T/t.st" --teacher-weight 101
  bad "--teacher-sim-config" --algo distill --teacher "$T/t.st" --teacher-sim-config reveal_tastes
  bad "--teacher $T/missing.st" --algo distill --teacher "$T/missing.st" --iters 0 $SMALL
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
  for algo in reptile es credit radam; do
    for w in 1 2; do
      flags="--algo $algo"; [ $algo = credit ] && flags="--algo reptile --task-credit 2"
      [ $algo = radam ] && flags="--algo reptile --outer-opt adam"
      "$BIN" $flags --budget-steps 6000 --val-every 1 --seed 7 --workers $w $BIG \
        --checkpoint-out "$T/$algo.$w.st" --checkpoint-last "$T/$algo.$w.last" --metrics "$T/$algo.$w.jsonl" \
        >"$T/out" 2>&1 || fail "$algo workers $w: $(cat "$T/out")"
    done
    cmp -s "$T/$algo.1.st" "$T/$algo.2.st" || fail "$algo: meta-init differs between 1 and 2 workers"
    # everything but the timings and the checkpoint's own name
    sed 's/"samples_per_s":[^}]*//; s/"checkpoint":.*//' "$T/$algo.1.jsonl" >"$T/a"
    sed 's/"samples_per_s":[^}]*//; s/"checkpoint":.*//' "$T/$algo.2.jsonl" >"$T/b"
    cmp -s "$T/a" "$T/b" || fail "$algo: metrics differ between 1 and 2 workers"
    # the profile fields: env stepping and the policy's act are disjoint parts of the iteration
    awk -F'[:,}]' '/"kind":"train"/ { n++; split("", v); for (i = 1; i < NF; i++) v[$i] = $(i + 1)
        it = v["\"iter_s\""]; e = v["\"env_s\""]; a = v["\"act_s\""]
        if (it == "" || e == "" || a == "" || e < 0 || a < 0 || e + a > it + 2e-4) { print "bad timings: " $0; exit 1 } }
      END { if (!n) { print "no train lines"; exit 1 } }' "$T/$algo.2.jsonl" >"$T/t" || fail "$algo: $(cat "$T/t")"
  done
  # the best val point of so short a run is the initialisation: the latest theta shows the training
  cmp -s "$T/reptile.1.last" "$T/credit.1.last" && fail "--task-credit 2 left the training as it was"
  cmp -s "$T/reptile.1.last" "$T/radam.1.last" && fail "--outer-opt adam stepped as epsilon does"
  echo "ok: bit-identical meta-init for 1 and 2 workers"
  ;;
defaults)
  ES="--val-tasks val:0-3 --envs-per-task 4 --meta-batch 3 --rollout-len 8 --hidden 16 --quiet --iters 2 --seed 3"
  for algo in es es-maml; do
    "$BIN" --algo $algo $ES --checkpoint-last "$T/d.st" >"$T/out" 2>&1 || fail "$algo at its defaults: $(cat "$T/out")"
    "$BIN" --algo $algo $ES --population 16 --sigma 0.1 --outer-lr 5e-2 --checkpoint-last "$T/given.st" >"$T/out" 2>&1 ||
      fail "$algo with the defaults given: $(cat "$T/out")"
    "$BIN" --algo $algo $ES --population 32 --sigma 0.02 --outer-lr 1e-2 --checkpoint-last "$T/old.st" >"$T/out" 2>&1 ||
      fail "$algo at the former defaults: $(cat "$T/out")"
    cmp -s "$T/d.st" "$T/given.st" || fail "$algo: its defaults are not population 16, sigma 0.1, outer lr 5e-2"
    cmp -s "$T/d.st" "$T/old.st" && fail "$algo: the former defaults train the same meta-init"
  done
  # reptile with --outer-opt adam: its lr defaults to 1e-2 (docs/meta.md 2.1), not epsilon's 1.0
  "$BIN" --algo reptile --outer-opt adam $ES --checkpoint-last "$T/d.st" >"$T/out" 2>&1 || fail "reptile adam: $(cat "$T/out")"
  "$BIN" --algo reptile --outer-opt adam $ES --outer-lr 1e-2 --checkpoint-last "$T/given.st" >"$T/out" 2>&1 ||
    fail "reptile adam with lr 1e-2 given: $(cat "$T/out")"
  "$BIN" --algo reptile --outer-opt adam $ES --outer-lr 1e-3 --checkpoint-last "$T/old.st" >"$T/out" 2>&1 ||
    fail "reptile adam at lr 1e-3: $(cat "$T/out")"
  cmp -s "$T/d.st" "$T/given.st" || fail "reptile --outer-opt adam: its lr does not default to 1e-2"
  cmp -s "$T/d.st" "$T/old.st" && fail "reptile --outer-opt adam: lr 1e-3 trains the same meta-init"
  echo "ok: es and es-maml default to population 16, sigma 0.1, outer lr 5e-2; reptile's adam step to lr 1e-2"
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
patience)
  RUN="--algo reptile --val-every 2 --seed 3 --val-tasks val:0-3 --envs-per-task 4 --meta-batch 3 --hidden 16 --quiet"
  "$BIN" $RUN --budget-steps 10000000 --iters 200 --patience 3 --metrics "$T/p.jsonl" >"$T/out" 2>&1 || fail "$(cat "$T/out")"
  grep -q '"kind":"done".*"stopped":"patience"' "$T/p.jsonl" || fail "did not stop by patience: $(tail -1 "$T/p.jsonl")"
  grep -q 'stopped early: 3 val points without a better score' "$T/out" || fail "no early stop in the summary: $(cat "$T/out")"
  done=$(sed -n 's/.*"kind":"done","iter":\([0-9]*\),.*"best_iter":\([0-9]*\),.*/\1 \2/p' "$T/p.jsonl")
  set -- $done
  [ "$1" -eq $(($2 + 3 * 2)) ] || fail "stopped at iter $1, expected the third val point after the best ($2)"
  [ "$1" -lt 200 ] || fail "ran to the --iters cap"
  # the same run without --patience, cut at that iteration: the same val points
  "$BIN" $RUN --budget-steps 10000000 --iters "$1" --metrics "$T/n.jsonl" >"$T/out" 2>&1 || fail "$(cat "$T/out")"
  grep '"kind":"val"' "$T/p.jsonl" >"$T/a"
  grep '"kind":"val"' "$T/n.jsonl" >"$T/b"
  cmp -s "$T/a" "$T/b" || fail "--patience changed the val points before its stop"
  grep -q '"kind":"done".*"stopped":"iters"' "$T/n.jsonl" || fail "no stopped:iters: $(tail -1 "$T/n.jsonl")"
  "$BIN" $RUN --budget-steps 3000 --metrics "$T/b.jsonl" >"$T/out" 2>&1 || fail "$(cat "$T/out")"
  grep -q '"kind":"done".*"stopped":"budget"' "$T/b.jsonl" || fail "no stopped:budget: $(tail -1 "$T/b.jsonl")"
  echo "ok: stopped by patience at iter $1 (best at $2)"
  ;;
resume)
  # trains NAME with the flags after --, checks the checkpoint's metadata holds KEY (a "k":"v"
  # pair, or "" for none), and resumes it with --iters 0 and the validation flags VAL: the
  # resumed score must be the checkpoint's exactly. Sets resumed_best.
  resumes () { # NAME KEY VAL -- train flags...
    name=$1 key=$2 val=$3; shift 4
    "$BIN" --budget-steps 4000 --val-every 2 --seed 5 $val $SMALL "$@" --checkpoint-out "$T/$name.st" \
      --metrics "$T/$name.jsonl" >"$T/out" 2>&1 || fail "$name: $(cat "$T/out")"
    [ -z "$key" ] || head -c 4096 "$T/$name.st" | grep -q "$key" || fail "$name: the checkpoint does not carry $key"
    resumed_best=$(grep '"kind":"done"' "$T/$name.jsonl" | sed 's/.*"best_score":\([-0-9.e+]*\).*/\1/')
    "$BIN" --checkpoint-in "$T/$name.st" --iters 0 --seed 5 $val $SMALL --metrics "$T/$name.r.jsonl" >"$T/out" 2>&1 \
      || fail "$name resumed: $(cat "$T/out")"
    again=$(grep -m1 '"kind":"val"' "$T/$name.r.jsonl" | sed 's/.*"score":\([-0-9.e+]*\).*/\1/')
    [ "$resumed_best" = "$again" ] || fail "$name: resumed val score $again, the checkpoint's was $resumed_best"
  }
  # greedy validation: top-k play moves with every parameter (sampled play of a near-uniform
  # init can score the same across iterations, which would make this check weak)
  resumes fomaml "" "--val-act greedy" -- --algo fomaml
  best=$resumed_best
  # a temperature: written into the checkpoint, read back on resume (sampled validation)
  resumes temp '"target.temp":"0.5"' "--val-act sample" -- --algo reptile --temp 0.5
  tbest=$resumed_best
  # the inner optimizer: written into the checkpoint, read back on resume (the score only matches
  # if the resumed validation adapts with SGD again), and overridden by the command line
  resumes sgd '"target.optimizer":"sgd"' "--val-act greedy" -- --algo reptile --inner-opt sgd --inner-lr 0.1
  "$BIN" --checkpoint-in "$T/sgd.st" --iters 0 --seed 5 --val-act greedy --inner-opt adam $SMALL --metrics "$T/adam.jsonl" \
    >"$T/out" 2>&1 || fail "$(cat "$T/out")"
  oadam=$(val_at R@1 "$T/adam.jsonl")
  osgd=$(val_at R@1 "$T/sgd.r.jsonl")
  [ "$oadam" != "$osgd" ] || fail "--inner-opt adam on an sgd checkpoint adapted the same (R@1 $osgd)"
  sbest=$resumed_best
  # per-slot credit and where its feedback starts: read back on resume (ECommerce-v1's response is
  # 2k + 1 = 7 wide: clicks from 0, purchases from k = 3), and the term changes the adaptation
  resumes slot '"target.slot_credit":"2"' "--val-act greedy" -- --algo reptile --slot-credit 2 --slot-feedback 3
  head -c 4096 "$T/slot.st" | grep -q '"target.slot_feedback":"3"' || fail "slot: no target.slot_feedback"
  "$BIN" --checkpoint-in "$T/slot.st" --iters 0 --seed 5 --val-act greedy --slot-credit 0 $SMALL --metrics "$T/noslot.jsonl" \
    >"$T/out" 2>&1 || fail "$(cat "$T/out")"
  ono=$(val_at R@1 "$T/noslot.jsonl")
  oslot=$(val_at R@1 "$T/slot.r.jsonl")
  [ "$ono" != "$oslot" ] || fail "--slot-credit 0 on a slot-credit checkpoint adapted the same (R@1 $oslot)"
  cbest=$resumed_best
  # the affinity head (docs/agents.md T7) is architecture: the file's, and a contrary flag is refused
  resumes aff '"a.w"' "--val-act greedy" -- --algo reptile --affinity true
  bad "--affinity false" --checkpoint-in "$T/aff.st" --affinity false --iters 0 $SMALL
  # --context on a file without it starts from the file with the context's inputs added
  # (tests/policies/test_target_context.c holds the columns to the file's scores)
  "$BIN" --checkpoint-in "$T/aff.st" --context 4 --iters 0 --seed 5 --val-act greedy $SMALL \
    --checkpoint-out "$T/addctx.st" >"$T/out" 2>&1 || fail "--context 4 on a context-less file: $(cat "$T/out")"
  head -c 4096 "$T/addctx.st" | grep -q '"target.context":"4"' || fail "addctx: the checkpoint does not carry the context"
  abest=$resumed_best
  # head-only adaptation: also written for the A/B arm (target.adapt_params), which then adapts
  # the head alone as the inner loop did
  resumes head '"target.adapt_params":"head"' "--val-act greedy" -- --algo reptile --adapt-params head
  # validation adapting every parameter of it scores it another way
  "$BIN" --checkpoint-in "$T/head.st" --iters 0 --seed 5 --val-act greedy --val-adapt-params all $SMALL \
    --metrics "$T/vall.jsonl" >"$T/out" 2>&1 || fail "$(cat "$T/out")"
  oall=$(val_at R@1 "$T/vall.jsonl")
  ohead=$(val_at R@1 "$T/head.r.jsonl")
  [ "$oall" != "$ohead" ] || fail "--val-adapt-params all adapted as head only (R@1 $ohead)"
  # validation at rate 0 moves nothing: without a task context every R@j is R@0 (at its own rate
  # the same file's R@1 is another number, above)
  "$BIN" --checkpoint-in "$T/head.st" --iters 0 --seed 5 --val-act greedy --val-inner-lr 0 $SMALL \
    --metrics "$T/vlr0.jsonl" >"$T/out" 2>&1 || fail "$(cat "$T/out")"
  z0=$(val_at R@0 "$T/vlr0.jsonl") z1=$(val_at R@1 "$T/vlr0.jsonl") z5=$(val_at R@5w "$T/vlr0.jsonl")
  [ "$z1" = "$z0" ] && [ "$z5" = "$z0" ] || fail "--val-inner-lr 0 moved theta (R@0 $z0, R@1 $z1, R@5w $z5)"
  h0=$(val_at R@0 "$T/head.r.jsonl")
  [ "$ohead" != "$h0" ] || fail "the file's own rate left R@1 at R@0 ($h0): the check above cannot fail"
  echo "ok: resume (greedy $best; sampled at temp 0.5: $tbest; inner sgd: $sbest; slot credit: $cbest; affinity: $abest; head only: $resumed_best)"
  ;;
continues)
  # a run stopped at the checkpoint's iteration and continued with --checkpoint-in (and the budget
  # left) validates exactly as the unbroken run from there on: the iteration count, the task
  # draws, the outer Adam state and Reptile's annealing carry over (docs/meta.md 5)
  for algo in reptile fomaml es es-maml radam; do
    flags="--algo $algo"; [ $algo = radam ] && flags="--algo reptile --outer-opt adam"
    run () { "$BIN" $flags --val-every 1 --seed 5 --val-act greedy $SMALL "$@" >"$T/out" 2>&1 || fail "$algo $*: $(cat "$T/out")"; }
    run --budget-steps 40000 --iters 8 --metrics "$T/$algo.whole.jsonl"
    run --budget-steps 40000 --iters 4 --checkpoint-out "$T/$algo.st" --checkpoint-last "$T/$algo.last.st" \
      --metrics "$T/$algo.first.jsonl"
    # from the best checkpoint (its iteration: the done line's best_iter) and from the last (4)
    best_from=$(grep '"kind":"done"' "$T/$algo.first.jsonl" | sed 's/.*"best_iter":\([0-9]*\).*/\1/')
    for ck in "$T/$algo.st:$best_from" "$T/$algo.last.st:4"; do
      file=${ck%:*} from=${ck##*:}
      done_steps=$(head -c 4096 "$file" | grep -ao '"meta_env_steps":"[0-9]*"' | grep -o '[0-9][0-9]*')
      [ -n "$done_steps" ] || fail "$algo: $file has no meta_env_steps"
      rm -f "$T/$algo.rest.jsonl"
      run --budget-steps $((40000 - done_steps)) --iters $((8 - from)) --checkpoint-in "$file" --metrics "$T/$algo.rest.jsonl"
      grep -q "(R@0 at iter $from was the initialisation's)" "$T/out" || fail "$algo: did not number on from $from: $(cat "$T/out")"
      # the val lines of both from the checkpoint's iteration on, without this run's env step count
      strip () { grep '"kind":"val"' "$1" | sed 's/"env_steps":[0-9]*,//' | awk -F'"iter":' -v f="$from" '{ split($2, a, ","); if (a[1] + 0 >= f) print }'; }
      strip "$T/$algo.whole.jsonl" >"$T/a"
      strip "$T/$algo.rest.jsonl" >"$T/b"
      [ "$(wc -l <"$T/b")" -ge 2 ] || fail "$algo: the continued run validated fewer than twice"
      cmp -s "$T/a" "$T/b" || fail "$algo: continued from iteration $from ($file) differs from the unbroken run: $(diff "$T/a" "$T/b" | head -4)"
    done
    # --val-at-start false: the same run without its first val point (validation changes nothing)
    rm -f "$T/$algo.rest.jsonl"
    run --budget-steps $((40000 - done_steps)) --iters 4 --checkpoint-in "$T/$algo.last.st" --val-at-start false \
      --metrics "$T/$algo.rest.jsonl"
    strip "$T/$algo.rest.jsonl" >"$T/b"
    tail -n +2 "$T/a" | cmp -s - "$T/b" || fail "$algo: --val-at-start false changed the run: $(tail -n +2 "$T/a" | diff - "$T/b" | head -4)"
  done
  # --anneal-over run: a fresh run is the same (nothing before it); a continued one restarts
  # epsilon's schedule, so it steps differently from the lineage's
  run () { "$BIN" --algo reptile --val-every 1 --seed 5 --val-act greedy $SMALL "$@" >"$T/out" 2>&1 || fail "reptile $*: $(cat "$T/out")"; }
  run --budget-steps 40000 --iters 4 --anneal-over run --metrics "$T/fresh.run.jsonl"
  vals () { grep '"kind":"val"' "$1"; }
  vals "$T/fresh.run.jsonl" >"$T/a"
  vals "$T/reptile.first.jsonl" >"$T/b"
  cmp -s "$T/a" "$T/b" || fail "--anneal-over run changed a fresh run: $(diff "$T/a" "$T/b" | head -4)"
  for mode in lineage run; do
    run --budget-steps 20000 --iters 2 --checkpoint-in "$T/reptile.last.st" --anneal-over $mode --metrics "$T/cont.$mode.jsonl"
    vals "$T/cont.$mode.jsonl" | tail -1 >"$T/$mode.last"
  done
  cmp -s "$T/lineage.last" "$T/run.last" && fail "--anneal-over run continued reptile as --anneal-over lineage does"
  # another algorithm starts afresh from the file's theta: iteration 0
  "$BIN" --algo es --iters 1 --seed 5 $SMALL --checkpoint-in "$T/reptile.st" --metrics "$T/other.jsonl" >"$T/out" 2>&1 \
    || fail "es from a reptile checkpoint: $(cat "$T/out")"
  grep -q '"kind":"val","iter":0,' "$T/other.jsonl" || fail "es from a reptile checkpoint did not start at iteration 0"
  echo "ok: continued runs match the unbroken ones (reptile, fomaml, es, es-maml, reptile with --outer-opt adam)"
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
