#!/usr/bin/env bash
# The demo: sets up and builds recarena, starts recarena-server on a free loopback port, waits for
# it to answer a ping, runs examples/ecommerce_demo against it (random vs greedy), trains the
# target policy briefly and runs a short A/B test of it against the classic baselines, then stops
# the server on exit. Takes about a minute on 2 cores.
# Usage: scripts/demo.sh [extra ecommerce_demo args, e.g. --episodes 5]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build"
"$root/scripts/setup.sh"
"$root/scripts/build.sh" "$build"

server="$build/env/server/recarena-server"
demo="$build/examples/ecommerce_demo"
log=$(mktemp -t recarena-demo.XXXXXX)
ckpt=$(mktemp -t recarena-target.XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -f "$log" "$ckpt"
}
trap cleanup EXIT INT TERM

# Port "*": ZeroMQ picks a free one; the server prints the endpoint it got.
"$server" --bind 'tcp://127.0.0.1:*' --log-level warn >"$log" 2>&1 &
pid=$!
endpoint=""
for _ in $(seq 100); do
  endpoint=$(sed -n 's/^recarena-server: listening on //p' "$log" | head -n 1)
  [ -n "$endpoint" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; echo "demo: the server exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$endpoint" ] || { cat "$log" >&2; echo "demo: the server did not start" >&2; exit 1; }
for _ in $(seq 50); do
  "$demo" --ping --endpoint "$endpoint" && break
  sleep 0.1
done
"$demo" --ping --endpoint "$endpoint" || { echo "demo: no answer from $endpoint" >&2; exit 1; }
echo "demo: recarena-server is up on $endpoint"
"$demo" --endpoint "$endpoint" "$@"

echo
echo "demo: training the target policy for 150,000 env steps (an MLP scorer, actor-critic)"
"$build/agents/recarena-target" --address "$endpoint" --env ECommerce-v1 --steps 150000 \
  --num-envs 64 --progress 5 --eval-episodes 0 --checkpoint-out "$ckpt"
echo
echo "demo: A/B test on 4 held-out test tasks, same users and seeds for every arm"
"$build/agents/recarena-ab" --address "$endpoint" --env ECommerce-v1 --tasks 4 --num-envs 32 \
  --unit env --curve-episodes 0,1,2,5 --quiet \
  --arms "random,popularity,linucb,target:checkpoint=$ckpt:name=target,oracle"
