#!/usr/bin/env python3
"""bench/bench_local.py - a single Python env on the in-process backend (backend="local") against
the same env through a local server (backend="server", the embedded server on ipc://), measured
interleaved in one run, for each simulator.

Each row: env-steps/s of gym.make(...) (with Gymnasium's wrappers, as a user gets it), median of
--repeats windows of --seconds, the two backends alternating window by window, with actions
sampled before timing and episodes reset when they end. The budget (docs/local.md): local at
least 10x the server path.

usage: .venv/bin/python bench/bench_local.py [--envs ECommerce-v1,...] [--repeats 5] [--seconds 0.5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import gymnasium as gym

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
os.environ.setdefault("RECARENA_SERVER", os.path.join(ROOT, "build", "env", "server",
                                                      "recarena-server"))

import recarena  # noqa: E402,F401

BUDGET = 10.0


def window(env, actions, seconds: float) -> float:
    steps, t0 = 0, time.perf_counter()
    while True:
        for a in actions:
            _, _, term, trunc, _ = env.step(a)
            if term or trunc:
                env.reset()
        steps += len(actions)
        t = time.perf_counter() - t0
        if t >= seconds:
            return steps / t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--envs", default=",".join(recarena.KNOWN_ENVS))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=0.5)
    args = ap.parse_args()
    print(f"{'env':<14}{'server steps/s':>16}{'local steps/s':>16}{'ratio':>9}  budget >= {BUDGET:g}x")
    ok = True
    for name in args.envs.split(","):
        envs = {b: gym.make(f"recarena/{name}", backend=b, seed=1) for b in ("server", "local")}
        rates = {b: [] for b in envs}
        try:
            acts = None
            for b, env in envs.items():
                env.reset(seed=0)
                env.action_space.seed(0)
                acts = acts or [env.action_space.sample() for _ in range(64)]
                window(env, acts, 0.1)  # warm up
            for _ in range(args.repeats):
                for b, env in envs.items():
                    rates[b].append(window(env, acts, args.seconds))
        finally:
            for env in envs.values():
                env.close()
        s, lo = statistics.median(rates["server"]), statistics.median(rates["local"])
        ok &= lo / s >= BUDGET
        print(f"{name:<14}{s:>16.0f}{lo:>16.0f}{lo / s:>8.1f}x  {'ok' if lo / s >= BUDGET else 'BELOW'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
