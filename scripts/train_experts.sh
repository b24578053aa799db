#!/usr/bin/env bash
# scripts/train_experts.sh - per-task experts (docs/agents.md, "Per-task experts"): trains the
# target policy with recarena-target on each of N tasks of a split, one at a time, and caches each
# as DIR/<split>-<id>.safetensors (the file recarena-ab's expert:dir=DIR arm plays on that task)
# beside DIR/<split>-<id>.key, the exact training command. A task whose key matches the command
# it would run now and whose checkpoint exists is reused; any difference (sim, task, sim config,
# seed, steps, envs, any other recarena-target flag, the binary's path, the content of a file given
# as a flag value such as --checkpoint-in) retrains it, so an expert
# is never played under settings it was not trained with.
#
# usage: scripts/train_experts.sh --dir DIR --env SIM [--split test] [--tasks N | --ids "0 3 7"]
#          [--steps S] [--num-envs N] [--seed S] [--jobs N] [--bin PATH/recarena-target]
#          [-- more recarena-target flags, e.g. --config reward=clicks --lr 1e-3]
# --jobs N trains up to N tasks at once (default 1; one core each with OPENBLAS_NUM_THREADS=1).
# An expert is the same file whatever N: each training is its own seeded process.
# Prints one line per task as it ends: "<split>:<id> reused|trained <checkpoint>" (with N > 1 not
# in task order). Exit 2 on a bad command line, 1 when a training fails (its checkpoint and key are
# then not written; no further task starts, those running finish), 143 when stopped by TERM or INT
# (the running trainings are stopped with it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir= env= split=test tasks=8 ids= steps=50000 envs=64 seed=1 jobs=1
bin="${RECARENA_BUILD_DIR:-$root/build}/agents/recarena-target"
die () { echo "train_experts: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="${2:?--dir needs a value}"; shift 2 ;;
    --env) env="${2:?--env needs a value}"; shift 2 ;;
    --split) split="${2:?--split needs a value}"; shift 2 ;;
    --tasks) tasks="${2:?--tasks needs a value}"; shift 2 ;;
    --ids) ids="${2:?--ids needs a value}"; shift 2 ;;
    --steps) steps="${2:?--steps needs a value}"; shift 2 ;;
    --num-envs) envs="${2:?--num-envs needs a value}"; shift 2 ;;
    --seed) seed="${2:?--seed needs a value}"; shift 2 ;;
    --jobs) jobs="${2:?--jobs needs a value}"; shift 2 ;;
    --bin) bin="${2:?--bin needs a value}"; shift 2 ;;
    --) shift; break ;;
    *) die "unknown flag '$1' (expected --dir, --env, --split, --tasks, --ids, --steps, --num-envs, --seed, --jobs, --bin, --)" ;;
  esac
done
[ -n "$dir" ] || die "--dir DIR is required"
[ -n "$env" ] || die "--env SIM is required"
[[ "$tasks" =~ ^[1-9][0-9]*$ ]] || die "--tasks '$tasks': expected a positive count"
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "--jobs '$jobs': expected a positive count"
[ -x "$bin" ] || die "'$bin' is not an executable recarena-target (build it, or give --bin)"
[ -n "$ids" ] || ids=$(seq 0 $((tasks - 1)))
seen=" "
for id in $ids; do # every id checked before anything trains; a repeated one would race on its files
  [[ "$id" =~ ^[0-9]+$ ]] || die "--ids: '$id' is not a task id"
  [[ "$seen" != *" $id "* ]] || die "--ids: task $id is given twice"
  seen+="$id "
done
mkdir -p "$dir"

expert () { # id: reuse the task's cached expert, or train it
  local id=$1 ckpt="$dir/$split-$1.safetensors" key
  local cmd=("$bin" --env "$env" --task "$split:$id" --steps "$steps" --num-envs "$envs" --seed "$seed"
             --eval-episodes 0 --progress 1000000 "${extra[@]}" --checkpoint-out "$ckpt.part")
  key=$(printf '%s\n' "${cmd[@]}")$inputs
  if [ -f "$ckpt" ] && [ -f "$dir/$split-$id.key" ] && [ "$(cat "$dir/$split-$id.key")" = "$key" ]; then
    echo "$split:$id reused $ckpt"
    return 0
  fi
  rm -f "$ckpt" "$dir/$split-$id.key"
  if ! "${cmd[@]}" > "$dir/$split-$id.log" 2>&1; then
    echo "train_experts: training $split:$id failed; see $dir/$split-$id.log" >&2
    rm -f "$ckpt.part"
    return 1
  fi
  mv "$ckpt.part" "$ckpt"
  printf '%s\n' "$key" > "$dir/$split-$id.key"
  echo "$split:$id trained $ckpt"
}

extra=("$@")
inputs="" # the files the command reads (--checkpoint-in F): their content is part of every task's key
for a in "${extra[@]}"; do
  if [ -f "$a" ]; then inputs+=$'\n'"$(md5sum < "$a")"; fi
done
# each task in its own process group (set -m), so that a stop (a signal, or timeout's TERM) stops
# its training too, not only the subshell waiting on it
set -m
trap 'for p in $(jobs -p); do kill -TERM -- "-$p"; done 2>/dev/null; exit 143' TERM INT
running=0 failed=0
reap () { wait -n || failed=1; running=$((running - 1)); } # one training ends
for id in $ids; do
  [ "$running" -lt "$jobs" ] || reap
  [ "$failed" -eq 0 ] || break
  expert "$id" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do reap; done
exit "$failed"
