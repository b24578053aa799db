#!/usr/bin/env bash
# The demo: sets up and builds recarena, starts recarena-server on a free loopback port, waits for
# it to answer a ping, runs examples/ecommerce_demo against it (random vs greedy), trains the
# target policy briefly and runs a short A/B test of it against the classic baselines, meta-trains
# the target across tasks (Reptile with the task context) and A/B tests it against fresh networks
# that adapt the same way, without and with the context (the second is the fair baseline: the
# context alone carries most of the adaptation on this sim, docs/meta.md 6.21), then stops the
# server on exit. Takes about a minute on 2 cores.
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
meta_ckpt=$(mktemp -t recarena-meta.XXXXXX)
report=$(mktemp -t recarena-ab.XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -f "$log" "$ckpt" "$meta_ckpt" "$report"
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

echo
echo "demo: meta-learning: Reptile with the task context (docs/meta.md) across 64 train tasks whose"
echo "      users have hidden tastes (docs/sims/shared.md 4), 100,000 env steps"
"$build/agents/recarena-meta" --address "$endpoint" --env ECommerce-v1 --algo reptile \
  --sim-config hidden_tastes=1 --train-tasks train:0-63 --val-tasks val:0-7 --val-every 5 \
  --budget-steps 100000 --val-act sample --slot-credit 3 --inner-lr 1e-2 --affinity true --temp 0.05 \
  --adapt-params head --outer-lr 0.1 --context 16 --checkpoint-out "$meta_ckpt"
fresh="target:slot_credit=3:lr=1e-2:affinity=true:temp=0.05"   # the meta-init's adaptation settings
echo
echo "demo: A/B test on 8 held-out test tasks: the meta-init and two fresh networks, one without the"
echo "      task context (scratch) and one with it (scratch_ctx), all keep adapting online on each"
echo "      task; R@K is the mean return after K episodes of learning on a task"
"$build/agents/recarena-ab" --address "$endpoint" --env ECommerce-v1 --config hidden_tastes=1 \
  --task-ids test:0-7 --num-envs 16 --episodes 6 --unit task --curve-episodes 0,1,5 --quiet \
  --arms "target:checkpoint=$meta_ckpt:name=meta,$fresh:name=scratch,$fresh:context=16:name=scratch_ctx,linucb" \
  --json "$report" | sed -n '/^learning curve R@K/,/^$/p'
echo "demo: paired differences over the 8 tasks (python -m recarena.compare)"
for other in scratch scratch_ctx linucb; do
  "$root/.venv/bin/python" -m recarena.compare "$report" meta --against "$other" --at R@0,R@1,R@5
done
