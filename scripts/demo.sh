#!/usr/bin/env bash
# The demo: sets up and builds recarena, starts recarena-server on a free loopback port, waits for
# it to answer a ping, runs examples/ecommerce_demo against it, and stops the server on exit.
# Usage: scripts/demo.sh [extra ecommerce_demo args, e.g. --episodes 5]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build"
"$root/scripts/setup.sh"
"$root/scripts/build.sh" "$build"

server="$build/env/server/recarena-server"
demo="$build/examples/ecommerce_demo"
log=$(mktemp -t recarena-demo.XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -f "$log"
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
