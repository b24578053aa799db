#!/usr/bin/env python3
"""bench/bench_shard.py - env-steps/s of one RemoteVectorEnv batch sharded over 2 local
recarena-servers (addresses=[a, b]) against the same batch on 1 server, measured in one run.

Rows, at --envs envs (default 1,024) of ECommerce-v1:
  1 server, --workers W      the reference: one batch, one message per step
  1 server, --workers W/2    what one of the shards' servers does alone
  2 servers, --workers W/2   the same threads in all, the batch in two shards stepped at once
  2 servers, --workers W     each server with as many threads as the reference
W is --workers (default: this machine's CPU count). The servers run on this machine, so the
ratio shows what the fan-out costs and whether two processes overlap; across machines each
shard gets its own CPUs (docs/scaling.md section 3). Each figure is the median of --repeats
windows of --seconds; the rows take turns window by window so that drift in a shared
machine's load hits them alike. Actions are sampled before timing.

usage: .venv/bin/python bench/bench_shard.py [--envs 1024] [--repeats 5] [--seconds 1]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))

import recarena  # noqa: E402
from recarena.client import Client  # noqa: E402
from recarena.server import LocalServer  # noqa: E402

ENV = "ECommerce-v1"


def start(server: str, workers: int) -> LocalServer:
    s = LocalServer(server, transport="tcp", extra_args=["--workers", str(workers)])
    with Client(s.endpoint, timeout=10) as c:
        c.ping()
    return s


def window(env, actions, n: int, seconds: float) -> float:
    steps, t0 = 0, time.perf_counter()
    while True:
        env.step(actions[steps & 15])
        steps += 1
        t = time.perf_counter()
        if t - t0 >= seconds:
            return steps * n / (t - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", default=os.path.join(ROOT, "build", "env", "server",
                                                      "recarena-server"))
    ap.add_argument("--envs", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.0)
    args = ap.parse_args()
    w, half = args.workers, max(1, args.workers // 2)
    servers = [start(args.server, w), start(args.server, w),
               start(args.server, half), start(args.server, half)]
    rows = [(f"1 server, --workers {w}", [servers[0].endpoint]),
            (f"1 server, --workers {half}", [servers[2].endpoint]),
            (f"2 servers, --workers {half} each", [servers[2].endpoint, servers[3].endpoint]),
            (f"2 servers, --workers {w} each", [servers[0].endpoint, servers[1].endpoint])]
    envs = []
    try:
        for _, addrs in rows:
            e = recarena.RemoteVectorEnv(ENV, args.envs, addresses=addrs, seed=1)
            e.action_space.seed(0)
            e.reset(seed=1)
            envs.append((e, [e.action_space.sample() for _ in range(16)]))
        for e, acts in envs:  # warm-up: first steps allocate reply buffers
            window(e, acts, args.envs, 0.2)
        rates = [[] for _ in rows]
        for _ in range(args.repeats):
            for k, (e, acts) in enumerate(envs):
                rates[k].append(window(e, acts, args.envs, args.seconds))
        med = [statistics.median(r) for r in rates]
        print(f"{ENV}, {args.envs} envs, median of {args.repeats} x {args.seconds:g} s, "
              f"{os.cpu_count()} CPUs")
        print(f"| {'set-up':<28} | {'env-steps/s':>12} | {'vs 1 server':>11} |")
        print(f"|{'-' * 30}|{'-' * 14}|{'-' * 13}|")
        for (name, _), m in zip(rows, med):
            print(f"| {name:<28} | {m:>12,.0f} | {m / med[0]:>10.2f}x |")
    finally:
        for e, _ in envs:
            e.close()
        for s in servers:
            s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
