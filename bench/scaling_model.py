#!/usr/bin/env python3
"""bench/scaling_model.py - the throughput model of docs/scaling.md section 4: meta-training
samples/s at 1 to 1,000 ranks for ES and for Reptile, from a per-rank rate and message costs.

One iteration on N ranks takes  t(N) = t_work + t_comm(N) + t_update(N)  and yields W(N) env steps:

  ES (weak scaling: p members per rank, P = p N, each member W_m env steps)
    t_work   = p W_m / R
    t_comm   = (N-1) a + 16 (P - p) b          rank 0 receives every other rank's pairs
             + ceil(log2 N) (a + 16 P b)       the broadcast of all P pairs (a tree)
    t_update = P D u                           every rank rebuilds sum_i F_i eps_i from the
                                               shared noise table: P axpys of D floats
  Reptile / FOMAML (one task per rank, T = N, each task W_t env steps incl. its inner loop)
    t_work   = W_t / R
    t_comm   = (N-1) (a + (4 D + 8) b)         rank 0 receives every other task's delta
             + N D c                           rank 0 sums them in index order
             + ceil(log2 N) (a + (4 D + 4) b)  the broadcast of the sum
    t_update = D u
  samples/s = W(N) / t(N), efficiency = samples/s / (N x the 1-rank samples/s).

a: seconds per message, b: seconds per byte, c and u: seconds per float added (sum, axpy),
R: env steps per second of one rank, D: parameters. Defaults: docs/scaling.md section 4 says
where each was measured. Pure arithmetic; prints Markdown tables.

usage: python3 bench/scaling_model.py [--rate 9900] [--params 12418] [--alpha 1.3e-6] ...
"""
from __future__ import annotations

import argparse
import math


def es(n: int, a: float, b: float, args) -> tuple:
    p, big_p, d = args.members_per_rank, args.members_per_rank * n, args.params
    work = p * args.member_steps / args.rate
    comm = (n - 1) * a + 16 * (big_p - p) * b + math.ceil(math.log2(n)) * (a + 16 * big_p * b)
    upd = big_p * d * args.axpy
    steps = big_p * args.member_steps
    return work, comm, upd, steps


def reptile(n: int, a: float, b: float, args) -> tuple:
    d = args.params
    work = args.task_steps / args.rate
    comm = ((n - 1) * (a + (4 * d + 8) * b) + n * d * args.add
            + math.ceil(math.log2(n)) * (a + (4 * d + 4) * b))
    upd = d * args.axpy
    return work, comm, upd, n * args.task_steps


def table(name: str, a: float, b: float, args) -> None:
    print(f"\n{name}: a = {a * 1e6:g} us/message, b = {b * 1e9:g} ns/byte "
          f"({1 / b / 1e9:.2f} GB/s)\n")
    print("| ranks | ES ms/iter | ES comm+update ms | ES samples/s | ES eff | "
          "Reptile ms/iter | Reptile comm ms | Reptile samples/s | Reptile eff |")
    print("|------:|-----------:|------------------:|-------------:|-------:|"
          "----------------:|----------------:|------------------:|------------:|")
    base = {}
    for n in args.ranks:
        row = []
        for key, model in (("es", es), ("rep", reptile)):
            work, comm, upd, steps = model(n, a, b, args)
            t = work + comm + upd
            rate = steps / t
            base.setdefault(key, rate)
            row.append((t, comm + upd if key == "es" else comm, rate, rate / (n * base[key])))
        (t1, c1, r1, e1), (t2, c2, r2, e2) = row
        print(f"| {n:5d} | {t1 * 1e3:10.1f} | {c1 * 1e3:17.2f} | {r1:12,.0f} | {e1:6.2f} | "
              f"{t2 * 1e3:15.1f} | {c2 * 1e3:15.2f} | {r2:17,.0f} | {e2:11.2f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=9900.0, help="env steps/s of one rank")
    ap.add_argument("--params", type=int, default=12418, help="D, parameters of the policy")
    ap.add_argument("--members-per-rank", type=int, default=2, help="ES p (an antithetic pair)")
    ap.add_argument("--member-steps", type=int, default=1024, help="ES env steps per member")
    ap.add_argument("--task-steps", type=int, default=4096,
                    help="Reptile env steps per task (inner loop and its rollouts)")
    ap.add_argument("--alpha", type=float, default=1.3e-6, help="s per message (measured here)")
    ap.add_argument("--beta", type=float, default=1.6e-9, help="s per byte (measured here)")
    ap.add_argument("--net-alpha", type=float, default=30e-6, help="s per message, cluster")
    ap.add_argument("--net-beta", type=float, default=0.8e-9, help="s per byte, cluster (10 GbE)")
    ap.add_argument("--add", type=float, default=1.0e-9, help="s per float summed on rank 0")
    ap.add_argument("--axpy", type=float, default=1.0e-9, help="s per float of an update axpy")
    ap.add_argument("--ranks", type=lambda s: [int(x) for x in s.split(",")],
                    default=[1, 2, 4, 8, 16, 64, 256, 1000])
    args = ap.parse_args()
    print(f"R = {args.rate:,.0f} env steps/s per rank, D = {args.params:,} parameters; ES "
          f"{args.members_per_rank} members x {args.member_steps} steps per rank; Reptile one "
          f"task of {args.task_steps} steps per rank")
    table("Shared memory, as measured on this machine", args.alpha, args.beta, args)
    table("Cluster network (assumed 10 GbE)", args.net_alpha, args.net_beta, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
