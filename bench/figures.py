#!/usr/bin/env python3
"""bench/figures.py - prints the figures the READMEs quote, from the current build, so that no
quoted number is typed by hand. With --write it also replaces each figures block in the docs
(between "<!-- figures:NAME -->" and "<!-- /figures:NAME -->") by what it printed.

Blocks:
  random      the random policy's mean episode return on every simulator with its default config
              (in-process backend, episodes seeded 0..N-1, slates drawn by the seeded action
              space): deterministic, the same on every machine for the same code.
  throughput  bench/bench_sims at batch 1, 256 and 4096 (env-steps/s, one thread) and
              bench/bench_local.py (one Python env, in-process against the embedded server):
              machine- and load-dependent; read the ratios.

usage: .venv/bin/python bench/figures.py [--episodes 200] [--only random|throughput] [--write]
"""
from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
os.environ.setdefault("RECARENA_SERVER", os.path.join(ROOT, "build", "env", "server",
                                                      "recarena-server"))

import recarena  # noqa: E402

DOCS = ("README.md", os.path.join("clients", "python", "README.md"),
        os.path.join("docs", "sims", "news.md"))


def random_block(episodes: int) -> str:
    rows = ["| simulator | random policy, mean episode return (95% CI) | mean episode length |",
            "|---|---|---|"]
    for name in recarena.KNOWN_ENVS:
        env = recarena.RemoteEnv(name, backend="local", seed=0)
        returns, lengths = [], []
        try:
            for ep in range(episodes):
                env.reset(seed=ep)
                env.action_space.seed(ep)
                total, steps, done = 0.0, 0, False
                while not done:
                    _, r, term, trunc, _ = env.step(env.action_space.sample())
                    total += r
                    steps += 1
                    done = term or trunc
                returns.append(total)
                lengths.append(steps)
        finally:
            env.close()
        n = len(returns)
        mean = sum(returns) / n
        sd = math.sqrt(sum((x - mean) ** 2 for x in returns) / (n - 1))
        rows.append(f"| {name} | {mean:.1f} +- {1.96 * sd / math.sqrt(n):.1f} | "
                    f"{sum(lengths) / n:.1f} |")
    rows.append("")
    rows.append(f"{episodes} episodes per simulator, default config, printed by "
                "`.venv/bin/python bench/figures.py --only random`.")
    return "\n".join(rows)


def throughput_block() -> str:
    sims = subprocess.run([os.path.join(ROOT, "build", "bench", "bench_sims"), "0.2", "5"],
                          check=True, capture_output=True, text=True).stdout
    rates = {}
    for line in sims.splitlines():
        m = re.match(r"(\S+)\s+(\d+)\s+(\d+)\s", line)
        if m:
            rates.setdefault(m.group(1), {})[int(m.group(2))] = int(m.group(3))
    rows = ["| simulator | in-process env-steps/s, batch 1 | 256 | 4096 | Python env, local / server |",
            "|---|---|---|---|---|"]
    local = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "bench_local.py"),
                            "--repeats", "3", "--seconds", "0.3"],
                           capture_output=True, text=True).stdout
    ratio = {}
    for line in local.splitlines():
        m = re.match(r"(\S+)\s+(\d+)\s+(\d+)\s+([\d.]+)x", line)
        if m:
            ratio[m.group(1)] = (int(m.group(2)), int(m.group(3)), float(m.group(4)))
    for name, r in rates.items():
        lr = ratio.get(name)
        lcol = f"{lr[1]:,} / {lr[0]:,} = {lr[2]:.1f}x" if lr else "n/a"
        rows.append(f"| {name} | {r.get(1, 0):,} | {r.get(256, 0):,} | {r.get(4096, 0):,} | {lcol} |")
    rows.append("")
    rows.append(f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPUs (shared machines "
                "swing with the load: compare ratios), printed by "
                "`.venv/bin/python bench/figures.py --only throughput`.")
    return "\n".join(rows)


def write_block(name: str, text: str) -> None:
    pat = re.compile(r"(<!-- figures:%s -->\n)(?:.*?\n)?(<!-- /figures:%s -->)" % (name, name), re.S)
    for doc in DOCS:
        path = os.path.join(ROOT, doc)
        with open(path) as f:
            old = f.read()
        new = pat.sub(lambda m: m.group(1) + text + "\n" + m.group(2), old)
        if new != old:
            with open(path, "w") as f:
                f.write(new)
            print(f"(wrote the {name} block of {doc})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--episodes", type=int, default=200)
    ap.add_argument("--only", choices=("random", "throughput"))
    ap.add_argument("--write", action="store_true", help="update the figures blocks in the docs")
    args = ap.parse_args()
    blocks = []
    if args.only in (None, "random"):
        blocks.append(("random", random_block(args.episodes)))
    if args.only in (None, "throughput"):
        blocks.append(("throughput", throughput_block()))
    for name, text in blocks:
        print(f"== {name}\n{text}\n")
        if args.write:
            write_block(name, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
