#!/usr/bin/env bash
# tests/cli/cli_robustness.sh - feeds one built binary hostile command lines and checks that each
# ends cleanly: within a time limit, by exit (never a signal), without a sanitizer report, with
# an exit status and a message that say the input was refused.
#
#   usage: cli_robustness.sh BINARY [QUICK]
#
# Each binary's flags are listed below (value flags, numeric flags, key=value flags); every case
# is a command line that must be rejected while parsing, so nothing here starts real work:
# repeated flags (the recarena-target --lr x34 crash), very long values and flag names, unknown
# flags, missing values, non-numeric and out-of-range numbers, malformed settings, and thousands
# of arguments. QUICK=1 repeats flags 200 times instead of 3000 (the sanitizer build).
set -u
bin=$(realpath "$1")
quick="${2:-0}"
name=$(basename "$bin")
limit=30
reps=3000
[ "$quick" = 1 ] && reps=200
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1

long=$(head -c 100000 /dev/zero | tr '\0' 'x')
longnum=$(head -c 5000 /dev/zero | tr '\0' '9')
failures=0
cases=0

# check EXPECT ARGS...: runs the binary; EXPECT is "reject" (exit 1..125 with a message on
# stderr), "any" (exit 0..125 with some output, e.g. --help after valid flags) or "ok" (exit 0:
# a short run that must succeed).
check ()
{
  local expect="$1"
  shift
  cases=$((cases + 1))
  timeout -s KILL "$limit" "$bin" "$@" </dev/null >"$work/out" 2>"$work/err"
  local rc=$?
  last_rc=$rc
  local what="$name $(printf '%q ' "${@:1:6}" | cut -c1-160)$([ $# -gt 6 ] && echo "... ($# args)")"
  local bad=""
  if [ $rc -eq 137 ]; then
    bad="did not finish within ${limit}s"
  elif [ $rc -ge 126 ]; then
    bad="ended by a signal or could not run (exit $rc)"
  elif grep -q "Sanitizer\|runtime error:" "$work/err"; then
    bad="sanitizer report: $(grep -m1 "Sanitizer\|runtime error:" "$work/err")"
  elif [ "$expect" = ok ] && [ $rc -ne 0 ]; then
    bad="exit $rc: $(head -c 300 "$work/err")"
  elif [ "$expect" = reject ] && [ $rc -eq 0 ]; then
    bad="accepted the input (exit 0)"
  elif [ "$expect" = reject ] && [ ! -s "$work/err" ]; then
    bad="exit $rc without a message on stderr"
  elif [ ! -s "$work/err" ] && [ ! -s "$work/out" ]; then
    bad="exit $rc without any output"
  fi
  if [ -n "$bad" ]; then
    echo "FAIL: $what: $bad"
    failures=$((failures + 1))
  fi
}

# said TEXT: the last check's stderr holds TEXT (the refusal says what was wrong, and where).
said ()
{
  if ! grep -qF -- "$1" "$work/err"; then
    echo "FAIL: $name: expected '$1' on stderr, got: $(head -c 300 "$work/err")"
    failures=$((failures + 1))
  fi
}

# status N: the last check exited N (where the docs name the status of a refusal).
status ()
{
  if [ "$last_rc" != "$1" ]; then
    echo "FAIL: $name: expected exit $1, got $last_rc: $(head -c 300 "$work/err")"
    failures=$((failures + 1))
  fi
}

# repeat N ARGS...: prints ARGS N times, one word a line (for mapfile).
repeat ()
{
  local n="$1"
  shift
  for ((r = 0; r < n; r++)); do
    printf '%s\n' "$@"
  done
}

value_flags=()   # flags that take a value; a plausible value follows each
numeric_flags=()
setting_flags=() # flags that take key=value
bool_flags=()    # flags that take true or false
positional=0
case "$name" in
  recarena-target)
    value_flags=(--address tcp://127.0.0.1:1 --env ECommerce-v1 --task train:1 --device cpu
                 --checkpoint-in x --checkpoint-out x --metrics x --num-envs 4 --eval-episodes 1
                 --steps 10 --updates 1 --progress 1 --seed 1 --config a=1 --rollout 4 --lr 0.1
                 --gamma 0.9 --lambda 0.9 --entropy 0.1 --value-coef 0.5 --clip-norm 1
                 --reward-scale 1 --hidden 8 --layers 1 --activation relu --eval-tasks val:0-1
                 --eval-envs 2 --eval-rk-episodes 2 --eval-json x.json)
    numeric_flags=(--num-envs --eval-episodes --steps --updates --progress --seed --eval-envs
                   --eval-rk-episodes)
    setting_flags=(--config) ;;
  recarena-ab)
    value_flags=(--env ECommerce-v1 --arms random --control random --split test --tasks 1
                 --num-envs 1 --episodes 1 --seed 1 --config a=1 --curve-episodes 0,1
                 --unit task --bootstrap 10 --credit clicked --max-episode-steps 5
                 --address tcp://127.0.0.1:1 --json x.json --csv x.csv --task-ids test:0-1
                 --windows 3-7 --learn-prior x --threads 1)
    numeric_flags=(--tasks --num-envs --episodes --seed --bootstrap --max-episode-steps --threads)
    setting_flags=(--config) ;;
  recarena-meta)
    value_flags=(--env ECommerce-v1 --algo reptile --train-tasks train:0-3 --val-tasks val:0-1
                 --budget-steps 10 --iters 1 --val-every 1 --seed 1 --device cpu --workers 1
                 --inner-lr 0.01 --inner-steps 1 --outer-lr 0.1 --meta-batch 2 --population 4
                 --sigma 0.1 --entropy 0.01 --envs-per-task 2 --rollout-len 4 --adapt-params all
                 --weight-decay 0 --hidden 8 --layers 1 --address tcp://127.0.0.1:1
                 --checkpoint-out x --checkpoint-in x --metrics x --config x --temp 1
                 --val-act sample --inner-opt adam --slot-credit 0 --slot-feedback 0
                 --affinity false --val-adapt-params all --context 0 --checkpoint-last x
                 --val-at-start true --anneal-over lineage --context-residual false
                 --scorer-yield false --context-ts 0 --context-session 0 --context-baseline 0
                 --context-handover 0 --val-inner-lr 0 --context-kernel 0
                 --sim-config a=1 --teacher x --teacher-weight 1 --teacher-sim-config a=1
                 --teacher-gate false --teacher-temp 1 --teacher-critic false --task-credit 0 --patience 0
                 --outer-opt eps)
    numeric_flags=(--budget-steps --iters --val-every --seed --workers --inner-lr --inner-steps
                   --outer-lr --meta-batch --population --sigma --entropy --envs-per-task
                   --rollout-len --weight-decay --hidden --layers --temp --slot-credit
                   --slot-feedback --context --context-ts --context-session --context-baseline
                   --context-handover --val-inner-lr --context-kernel --teacher-weight
                   --teacher-temp --task-credit --patience)
    bool_flags=(--affinity --val-at-start --context-residual --scorer-yield --teacher-gate
                --teacher-critic) ;;
  recarena-server)
    value_flags=(--bind tcp://127.0.0.1:1 --workers 1 --max-envs 10 --async-min-envs 10
                 --max-total-envs 10 --max-sessions 10 --idle-timeout 5 --max-message-bytes 4096
                 --seed 1 --log-level info --max-session-bytes 1048576 --max-total-bytes 1048576
                 --async-min-bytes 1 --rcv-hwm 1 --drain-ms 1 --curve-secret x --allow-keys x
                 --admin-key x --max-sessions-per-key 10 --max-envs-per-key 10
                 --max-bytes-per-key 1048576 --max-queued-bytes 1048576)
    numeric_flags=(--workers --max-envs --async-min-envs --max-total-envs --max-sessions
                   --idle-timeout --max-message-bytes --seed --max-session-bytes --max-total-bytes
                   --async-min-bytes --rcv-hwm --drain-ms --max-sessions-per-key
                   --max-envs-per-key --max-bytes-per-key --max-queued-bytes) ;;
  ecommerce_demo)
    value_flags=(--endpoint tcp://127.0.0.1:1 --episodes 1 --num-envs 1)
    numeric_flags=(--episodes --num-envs) ;;
  bench_nn)
    value_flags=(--repeats 1)
    numeric_flags=(--repeats) ;;
  bench_protocol)
    value_flags=(--seconds 0.01 --repeats 1 --workers 1)
    numeric_flags=(--seconds --repeats --workers) ;;
  bench_target)
    value_flags=(--this x --landed x --updates 1 --repeats 1 --parts 3 --device cpu)
    numeric_flags=(--updates --repeats) ;;
  bench_sims | nn_checkpoint_demo | gen_golden)
    positional=1 ;;
  *)
    echo "cli_robustness.sh: no flag table for '$name'"
    exit 1 ;;
esac

if [ $positional = 0 ]; then
  check any --help
  check reject --no-such-flag
  check reject "--$long"
  check reject "$long"
  mapfile -t many < <(repeat $((reps * 4)) --no-such-flag)
  check reject "${many[@]}"
  for ((f = 0; f < ${#value_flags[@]}; f += 2)); do
    flag=${value_flags[f]}
    val=${value_flags[f + 1]}
    mapfile -t rep < <(repeat "$reps" "$flag" "$val")
    check any "${rep[@]}" --help
    check reject "${rep[@]}" --no-such-flag
    check reject "$flag" "$long" --no-such-flag
    check reject "$flag"                      # missing value
    check reject "$flag" "$val" "$flag"       # missing value after a good one
  done
  for flag in "${numeric_flags[@]}"; do
    for v in abc "" 1x 0x -1 nan inf 1e999 "$longnum" "-$longnum" " " 1,5; do
      check reject "$flag" "$v"
    done
  done
  for flag in "${bool_flags[@]}"; do
    for v in yes 2 0.5 "" TRUE; do
      check reject "$flag" "$v"
    done
  done
  for flag in "${setting_flags[@]}"; do
    for v in novalue =1 "" " = 1" "$long"; do
      check reject "$flag" "$v"
    done
    mapfile -t rep < <(repeat 10 "$flag" "k=$long")   # 1 MB of arguments
    check reject "${rep[@]}" --no-such-flag
    mapfile -t rep < <(repeat "$reps" "$flag" key=value)
    check reject "${rep[@]}" --no-such-flag
  done
  case "$name" in
    recarena-server)
      check reject --config /nonexistent/recarena.conf
      printf 'workers = 2\nbogus line\n' >"$work/a.conf"
      check reject --config "$work/a.conf"
      printf ' = 2\n' >"$work/b.conf"
      check reject --config "$work/b.conf"
      { printf 'workers = '; printf '%s' "$longnum"; printf '\n'; } >"$work/c.conf"
      check reject --config "$work/c.conf"
      repeat "$reps" "bind = tcp://127.0.0.1:1" >"$work/d.conf"
      check reject --config "$work/d.conf"
      check reject --config "$work"   # a directory opens and used to read as an empty config
      printf 'workers = 2\0 bogus\nmax-envs = 1\n' >"$work/e.conf"   # a NUL used to cut the line short
      check reject --config "$work/e.conf"
      printf 'max-envs = 1\nworkers = 2\0 bogus' >"$work/f.conf"   # and in a last line without a newline
      check reject --config "$work/f.conf"
      # a key hidden past the reader's line length in a comment used to be read as a line of its own
      "$bin" --gen-keys "$work/k" >/dev/null 2>&1
      { printf '#%s' "${long:0:254}"; grep '^secret-key' "$work/k.key"; } >"$work/long.key"
      check reject --curve-secret "$work/long.key"
      # a NUL in a key file's line used to drop the rest of it silently (--help: exit 0 if read)
      { echo '# key'; grep '^secret-key' "$work/k.key" | tr -d '\n'; printf '\0 bogus\n'; } >"$work/nul.key"
      check reject --curve-secret "$work/nul.key" --help
      said "$work/nul.key:2: a NUL byte in the line"
      mkdir "$work/allow"
      { grep '^public-key' "$work/k.pub" | tr -d '\n'; printf '\0'; } >"$work/allow/a.pub"
      check reject --allow-keys "$work/allow" --help
      said "$work/allow/a.pub:1: a NUL byte in the line"
      check reject --admin-key "$work/allow/a.pub" --help
      said "$work/allow/a.pub:1: a NUL byte in the line"
      check reject --reward-plugin /nonexistent/plugin.so
      check reject --max-queued-bytes 1023   # below its minimum, 1024
      check reject --log-level loud
      check reject "--workers=$longnum"
      check reject "--$long=1"
      # docs/protocol.md "Server command line": a bad value is exit 2, an endpoint it cannot bind
      # too (that was exit 1)
      check reject --bind ipc:///nonexistent/recarena/x.sock
      status 2
      said "--bind: cannot bind ipc:///nonexistent/recarena/x.sock"
      check reject --bind nonsense
      status 2
      # a timeout below the millisecond the idle sweep can honour (1e-300 was accepted: every
      # session expired before its next request)
      for v in 1e-300 0.0009 0; do
        check reject --idle-timeout "$v" --bind "ipc://$work/idle.sock"   # not :5555 if accepted
        status 2
        said "expected seconds in [0.001, 1e9]"
      done
      check ok --idle-timeout 0.001 --help
      # an empty prefix, or a directory's, wrote the hidden files .key and .pub
      check reject --gen-keys ""
      status 2
      said "--gen-keys PREFIX is ''"
      mkdir "$work/keys"
      check reject --gen-keys "$work/keys/"
      status 2
      if [ -e "$work/.key" ] || [ -e "$work/.pub" ] || [ -e "$work/keys/.key" ]; then
        echo "FAIL: $name: --gen-keys wrote a hidden .key or .pub"
        failures=$((failures + 1))
      fi
      check reject --gen-keys "$work/k"   # written above: never overwritten
      status 2
      check reject --gen-keys "$work/${long:0:2000}"   # longer than a path may be
      status 2 ;;
    recarena-target)
      check reject --checkpoint-in "$work"   # a directory: its size is no size to allocate
      printf '\377\377\377\377\377\377\377\377{}' >"$work/huge.st"
      check reject --checkpoint-in "$work/huge.st"
      check reject --activation "$long" --no-such-flag
      check reject --lr abc --no-such-flag
      # an output path it cannot write is refused before training (a billion steps: else a timeout)
      check reject --steps 1000000000 --checkpoint-out /nonexistent/t.safetensors
      check reject --steps 1000000000 --checkpoint-out "$work"
      mapfile -t rep < <(repeat 34 --lr 0.1)
      check any "${rep[@]}" --help
      # --eval-json is written after training and evaluation: a path it cannot take is refused first
      check reject --steps 1000000000 --eval-tasks val:0 --eval-json /nonexistent/e.json
      check reject --steps 1000000000 --eval-tasks val:0 --eval-json "$work"
      # a checkpoint path with a ':' cannot be an arm's checkpoint= (the evaluation used to fail
      # after training on "setting 'b.st' is not key=value")
      check ok --steps 16 --num-envs 2 --rollout 4 --hidden 8 --layers 1 --eval-episodes 0 \
        --checkpoint-out "$work/a:b.st" --eval-tasks val:0 --eval-envs 1 --eval-rk-episodes 1 ;;
    recarena-ab)
      check reject --arms "$long"
      check reject --arms "linucb:$long"
      check reject --arms "linucb:=1"
      mapfile -t rep < <(repeat 40 a=1)
      check reject --arms "linucb:$(IFS=:; echo "${rep[*]}")"
      mapfile -t rep < <(repeat 100 random)
      check reject --arms "$(IFS=,; echo "${rep[*]}")"
      check reject --curve-episodes "1,x"
      check reject --curve-episodes "$longnum"
      check reject --curve-episodes "$(seq -s, 0 20)"
      check reject --unit "$long"
      check reject --credit x
      check reject --learn-prior x --arms lints
      check reject --learn-prior x --arms metats:prior=none,metats:prior=none
      check reject --learn-prior x --arms "metats:prior=none:v=$longnum"
      check reject --learn-prior "/nonexistent/$long" --arms metats:prior=none --task-ids train:0
      check reject --learn-prior /nonexistent/p.txt --arms metats:prior=none --task-ids train:0
      # an output path it cannot write is refused before the run (1024 tasks: else a timeout)
      check reject --task-ids train:all --json /nonexistent/r.json
      check reject --task-ids train:all --csv "$work"
      check reject --arms "metats:prior=/nonexistent/p.txt" --task-ids test:0 --episodes 1
      check reject --arms "metats:prior=$long"
      # --check: the arms as a run would build them, nothing played
      check reject --arms "" --check
      check reject --arms , --check
      said "lists no arm"
      check reject --arms random,random --check   # the report, its JSON and compare tell arms by name
      said "two arms are named 'random'"
      check reject --arms "random,target:lr=0:name=x,linucb:name=x" --check
      check reject --arms "target:name=" --check
      said "name= needs a label"
      check reject --arms "target:context=1:scorer_yield=0.5" --task-ids test:0 --num-envs 1 --check
      said "'scorer_yield' must be true or false"
      check reject --windows 0- --check    # read as 0-0
      check reject --curve-episodes 1,1 --check
      check reject --curve-episodes 1, --check
      check reject --curve-episodes "1 2" --check ;;
    recarena-meta)
      fast=(--budget-steps 64 --envs-per-task 2 --meta-batch 2 --val-tasks val:0-1
            --train-tasks train:0-3 --hidden 8 --layers 1 --rollout-len 4 --inner-steps 1 --quiet)
      # a NUL byte used to end the file there, unseen: the lines after it were dropped
      printf 'iters = 2\0\nbogus = 1\n' >"$work/nul.conf"
      check reject --config "$work/nul.conf"
      said "$work/nul.conf line 1: a NUL byte in the line"
      # a repeated --config reads both files (the first one's text used to leak)
      printf 'iters = 1\n' >"$work/a.conf"
      printf 'seed = 2\n' >"$work/b.conf"
      check reject --config "$work/a.conf" --config "$work/b.conf" --no-such-flag
      check any --config "$work/a.conf" --config "$work/b.conf" --help
      # the checkpoints are written at val points: a path that cannot take them is refused first
      # (a billion steps and no early val point: else a timeout)
      late=(--budget-steps 1000000000 --val-at-start false --val-every 1000000000)
      check reject "${late[@]}" --checkpoint-out /nonexistent/m.safetensors
      check reject "${late[@]}" --checkpoint-out "$work"
      check reject "${late[@]}" --checkpoint-last /nonexistent/m.safetensors
      said "--checkpoint-last '/nonexistent/m.safetensors'"
      "$bin" "${fast[@]}" --context 2 --context-residual true --checkpoint-out "$work/ctx.st" >/dev/null 2>&1
      check reject "${fast[@]}" --checkpoint-in "$work/ctx.st" --hidden 16
      said "--hidden 16: --checkpoint-in $work/ctx.st has hidden 8, layers 1"
      check reject "${fast[@]}" --checkpoint-in "$work/ctx.st" --context 0
      said "--context-residual true (from --checkpoint-in $work/ctx.st)" ;;
  esac
else
  case "$name" in
    bench_sims)
      for v in abc "" 1x -1 0 nan inf 1e999 "$longnum" "$long"; do
        check reject "$v"
        check reject 0.01 "$v"
      done
      check reject 0.01 1 extra
      check reject 0.01 1 ECommerce-v1 256 extra
      check reject 0.01 1 ECommerce-v1 abc
      mapfile -t many < <(repeat $((reps * 4)) 1)
      check reject "${many[@]}" ;;
    nn_checkpoint_demo)
      check reject
      check reject one
      check reject "/nonexistent/$long" "/nonexistent/x.json"
      check reject /nonexistent/a.safetensors /nonexistent/a.json
      mapfile -t many < <(repeat $((reps * 4)) x)
      check reject "${many[@]}" ;;
    gen_golden)
      # never without arguments: that rewrites tests/data/golden
      check reject /nonexistent/golden
      check reject "/nonexistent/$long"
      mapfile -t many < <(repeat $((reps * 4)) /nonexistent/golden)
      check reject "${many[@]}" ;;
  esac
fi
echo "$name: $cases command lines, $failures failed"
[ $failures -eq 0 ]
