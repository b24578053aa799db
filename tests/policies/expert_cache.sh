#!/usr/bin/env bash
# tests/policies/expert_cache.sh - scripts/train_experts.sh caches one expert per task and reuses
# it only under the same training command: a second run reuses (checkpoints untouched), a change
# of steps, sim config or seed retrains, a missing checkpoint retrains that task alone; with
# --jobs 2 the same experts come out byte for byte, and a stopped run leaves no training behind;
# then recarena-ab's expert arm plays each task's own expert and names the file it lacks.
# usage: expert_cache.sh ROOT RECARENA_TARGET RECARENA_AB
set -euo pipefail
root="$1" target="$2" ab="$3"
dir=$(mktemp -d)
# the trainings of the stop check below, if any outlived their script (their pids)
survivors () { grep -l -s -- "$dir/[s]top/test-" /proc/[0-9]*/cmdline | cut -d/ -f3; } # [s]: not grep
trap 'kill $(survivors) 2>/dev/null; rm -rf "$dir"' EXIT
fail () { echo "FAIL: $*" >&2; exit 1; }
train () { "$root/scripts/train_experts.sh" --dir "$dir" --env ECommerce-v1 --ids "2 5" --steps 256 \
             --num-envs 8 --bin "$target" "$@"; }
count () { grep -c " $1 " <<<"$2" || true; }

out=$(train); echo "$out"
[ "$(count trained "$out")" = 2 ] || fail "first run must train both tasks"
sum1=$(md5sum "$dir"/test-*.safetensors)
out=$(train); echo "$out"
[ "$(count reused "$out")" = 2 ] || fail "second run must reuse both"
[ "$(md5sum "$dir"/test-*.safetensors)" = "$sum1" ] || fail "reuse rewrote a checkpoint"
out=$("$root/scripts/train_experts.sh" --dir "$dir" --env ECommerce-v1 --ids "2 5" --steps 384 \
        --num-envs 8 --bin "$target"); echo "$out"
[ "$(count trained "$out")" = 2 ] || fail "other steps must retrain"
out=$(train -- --config reward=clicks); echo "$out"
[ "$(count trained "$out")" = 2 ] || fail "another sim config must retrain"
out=$("$root/scripts/train_experts.sh" --dir "$dir" --env ECommerce-v1 --ids "2 5" --steps 256 \
        --num-envs 8 --seed 9 --bin "$target"); echo "$out"
[ "$(count trained "$out")" = 2 ] || fail "another seed must retrain"
out=$(train); echo "$out"
[ "$(count trained "$out")" = 2 ] || fail "back to the first settings must retrain"
rm "$dir/test-5.safetensors"
out=$(train); echo "$out"
[ "$(count reused "$out")" = 1 ] && [ "$(count trained "$out")" = 1 ] || fail "a missing checkpoint retrains that task only"
# two at a time: the same files as one at a time (each training is its own seeded process)
rm "$dir"/test-*.safetensors
out=$(train --jobs 2); echo "$out"
[ "$(count trained "$out")" = 2 ] || fail "--jobs 2 must train both tasks"
[ "$(md5sum "$dir"/test-*.safetensors)" = "$sum1" ] || fail "--jobs 2 trained other experts than one at a time"
out=$(train --jobs 2); echo "$out"
[ "$(count reused "$out")" = 2 ] || fail "--jobs 2 must reuse both"
# a stopped run stops its trainings too: none of them may outlive the script
"$root/scripts/train_experts.sh" --dir "$dir/stop" --env ECommerce-v1 --ids "7 8" --steps 100000000 \
  --num-envs 8 --jobs 2 --bin "$target" > /dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do [ -f "$dir/stop/test-8.log" ] && [ -f "$dir/stop/test-7.log" ] && break; sleep 0.1; done
kill -TERM "$pid"; wait "$pid" && fail "a stopped run exited 0"
for _ in $(seq 50); do [ -z "$(survivors)" ] && break; sleep 0.1; done
[ -z "$(survivors)" ] || fail "trainings outlived a stopped train_experts.sh"
[ ! -e "$dir/stop/test-7.safetensors" ] || fail "a stopped training left a checkpoint"
# bad command lines: each exit 2 with a message naming the flag, nothing trained
bad () { # expected-words flags...
  local want=$1; shift
  if "$root/scripts/train_experts.sh" --dir "$dir/bad" --env ECommerce-v1 --bin "$target" "$@" 2> "$dir/err.txt"; then
    fail "accepted: $*"
  fi
  grep -q -- "$want" "$dir/err.txt" || { cat "$dir/err.txt"; fail "the error for '$*' does not say '$want'"; }
  [ ! -e "$dir/bad" ] || fail "'$*' made the expert directory"
}
bad "--tasks 'x'" --tasks x
bad "--jobs '0'" --jobs 0
bad "--jobs 'two'" --jobs two
bad "task 5 is given twice" --ids "5 2 5"
bad "'x5' is not a task id" --ids "2 x5"

# the expert arm: each task's own checkpoint; a task without one is an error naming the file
"$ab" --env ECommerce-v1 --task-ids test:2,5 --num-envs 4 --episodes 2 --curve-episodes 0 --windows none \
  --arms "random,expert:dir=$dir" --max-episode-steps 8 --quiet > "$dir/ab.txt" || fail "expert arm run"
grep -q "expert:dir=" "$dir/ab.txt" || fail "expert arm missing from the report"
if "$ab" --env ECommerce-v1 --task-ids test:3 --num-envs 2 --episodes 1 --curve-episodes 0 --windows none \
     --arms "random,expert:dir=$dir" --max-episode-steps 4 --quiet > /dev/null 2> "$dir/err.txt"; then
  fail "expert arm ran without an expert for test:3"
fi
grep -q "test-3.safetensors" "$dir/err.txt" || { cat "$dir/err.txt"; fail "error does not name the missing file"; }
echo "expert cache: ok"
