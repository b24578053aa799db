#!/usr/bin/env bash
# recarena-ab's wall time with the sims in its own process on one thread, the same on THREADS
# threads (--threads, default: the CPUs online), and through a recarena-server (--address),
# interleaved run by run on one machine, with a check that all three write the same JSON report
# (docs/agents.md section 2). Prints each repeat's times and the medians' ratios. Needs a build
# with recarena-ab and recarena-server; about a minute and a half on 2 cores.
# Usage: bench/ab_speed.sh [REPEATS=3] [SIM=ECommerce-v1] [TASKS=16] [THREADS=nproc]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
repeats="${1:-3}"
sim="${2:-ECommerce-v1}"
tasks="${3:-16}"
threads="${4:-$(nproc)}"
build="${RECARENA_BUILD_DIR:-$root/build}"
ab="$build/agents/recarena-ab"
tmp=$(mktemp -d)
port=$((20000 + $$ % 20000))
"$build/env/server/recarena-server" --bind "tcp://127.0.0.1:$port" > "$tmp/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$tmp"' EXIT
sleep 0.5
export OPENBLAS_NUM_THREADS=1
run=(--env "$sim" --config hidden_tastes=1 --task-ids "val:0-$((tasks - 1))" --num-envs 16 --episodes 11
     --unit task --seed 7 --arms "random,linucb,target:lr=1e-2:temp=0.5:rollout=8:name=scratch" --quiet)
seconds () { local s e; s=$(date +%s.%N); "$@" > /dev/null 2>&1; e=$(date +%s.%N); awk -v s="$s" -v e="$e" 'BEGIN { print e - s }'; }
printf "%-6s %12s %12s %12s\n" "repeat" "1 thread" "$threads threads" "server"
for r in $(seq 1 "$repeats"); do
  l=$(seconds "$ab" "${run[@]}" --threads 1 --json "$tmp/local.json")
  t=$(seconds "$ab" "${run[@]}" --threads "$threads" --json "$tmp/threads.json")
  s=$(seconds "$ab" "${run[@]}" --address "tcp://127.0.0.1:$port" --json "$tmp/server.json")
  printf "%-6s %11.2fs %11.2fs %11.2fs\n" "$r" "$l" "$t" "$s"
  echo "$l $s $t" >> "$tmp/times"
  cmp -s "$tmp/local.json" "$tmp/server.json" || { echo "the server's JSON report differs"; exit 1; }
  cmp -s "$tmp/local.json" "$tmp/threads.json" || { echo "the $threads threads' JSON report differs"; exit 1; }
done
median () { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ml=$(cut -d' ' -f1 "$tmp/times" | median)
ms=$(cut -d' ' -f2 "$tmp/times" | median)
mt=$(cut -d' ' -f3 "$tmp/times" | median)
printf "medians: in process %.2fs, on %d threads %.2fs (%.2fx faster), server %.2fs (%.2fx as long); the same JSON\n" \
  "$ml" "$threads" "$mt" "$(awk -v a="$ml" -v b="$mt" 'BEGIN { print a / b }')" \
  "$ms" "$(awk -v a="$ms" -v b="$ml" 'BEGIN { print a / b }')"
