#!/usr/bin/env python3
"""bench/bench_python.py - Python env-steps/s through the recarena package, next to the C client's
figure measured in the same run against the same server.

Rows: a single RemoteEnv, then RemoteVectorEnv of 64, 256 and 1024 envs (one server batch, one
message per step). Each figure is the median over --repeats timed windows of --seconds each, with
actions sampled before timing. The C reference is the same loop in C (protocol/client.h), compiled
by this script against build/protocol/libra_protocol.a and run against the same server at each
batch size, right after the Python row; the in-process reference is the simulator itself stepped in
C at the same batch size (no server, no message; autoreset as the server does it), compiled
against build/env/sims. On a loopback server both clients use the shared-memory data plane
(docs/protocol.md, "Shared memory"). Each size is measured twice: over shared memory as is, and
with the doorbell (docs/local.md section 4: server --spin-us and client $RECARENA_SPIN_US, both
--spin-us here), where both sides spin instead of sleeping; the CPU column is what a step costs
the client and server processes together (the doorbell's price: busy cores).
Budgets: Python at 256 envs reaches at least half the C client's rate at 256, and at least half
the in-process C rate at 256; both are checked on the doorbell rows, on a quiet machine (note
`uptime`: on a loaded one, spinning competes with the work it waits for).

usage: .venv/bin/python bench/bench_python.py [--build build] [--repeats 5] [--seconds 1]
                                              [--spin-us 1000]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))

import recarena  # noqa: E402
from recarena.server import LocalServer  # noqa: E402

ENV = "ECommerce-v1"

C_LOOP = r"""
/* Times make + reset + step(N) loops through the C client; prints "steps_per_s <median>". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "protocol/client.h"
static double now (void) { struct timespec t; clock_gettime (CLOCK_MONOTONIC, &t);
                           return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp (const void *a, const void *b) { double x = *(const double *) a, y = *(const double *) b;
                                                 return (x > y) - (x < y); }
int main (int argc, char **argv) {
  if (argc < 6) { fprintf (stderr, "usage: endpoint env N seconds repeats\n"); return 2; }
  int n = atoi (argv[3]), repeats = atoi (argv[5]); double secs = atof (argv[4]);
  ra_client_t *c = NULL; ra_error_t err; ra_client_env_t env;
  if (ra_client_new (argv[1], 10000, &c, &err)) { fprintf (stderr, "%s\n", err.message); return 1; }
  ra_make_opts_t o = { .has_seed = true, .seed = 1 };
  if (ra_client_make (c, argv[2], n, &o, &env, &err)) { fprintf (stderr, "%s\n", err.message); return 1; }
  const ra_space_t *a = env.action_space;
  int k = a->type == RA_SPACE_DISCRETE ? 1 : (int) ra_space_numel (a);
  int64_t K = a->type == RA_SPACE_DISCRETE ? a->n : a->nvec[0];
  int nbatches = 64;
  int32_t *acts = malloc (sizeof (int32_t) * (size_t) n * k * nbatches);
  srand (7);
  for (int b = 0; b < nbatches; b++)
    for (int i = 0; i < n; i++) { int base = rand () % (int) K;
      for (int j = 0; j < k; j++) acts[((size_t) b * n + i) * k + j] = (int32_t) ((base + j) % K); }
  ra_step_result_t r;
  if (ra_client_reset (c, &env, NULL, NULL, &r, &err)) { fprintf (stderr, "%s\n", err.message); return 1; }
  double rates[64]; if (repeats > 64) repeats = 64;
  for (int rep = 0; rep < repeats; rep++) {
    long steps = 0; double t0 = now (), t;
    do {
      int64_t shape[2] = { n, k };
      ra_tensor_t at = ra_tensor_view (RA_DTYPE_I32, k == 1 && a->type == RA_SPACE_DISCRETE ? 1 : 2,
                                       shape, acts + (size_t) (steps % nbatches) * n * k);
      if (ra_client_step (c, &env, &at, &r, &err)) { fprintf (stderr, "%s\n", err.message); return 1; }
      steps++; t = now ();
    } while (t - t0 < secs);
    rates[rep] = steps * (double) n / (t - t0);
  }
  qsort (rates, repeats, sizeof *rates, cmp);
  printf ("steps_per_s %.1f\n", rates[repeats / 2]);
  ra_client_close (c, &env, &err); ra_client_env_fini (&env); ra_client_destroy (&c); free (acts);
  return 0;
}
"""


C_INPROC = r"""
/* The simulator stepped in-process at batch N; prints "steps_per_s <median>". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "env/sims/registry.h"
static double now (void) { struct timespec t; clock_gettime (CLOCK_MONOTONIC, &t);
                           return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp (const void *a, const void *b) { double x = *(const double *) a, y = *(const double *) b;
                                                 return (x > y) - (x < y); }
int main (int argc, char **argv) {
  if (argc < 5) { fprintf (stderr, "usage: env N seconds repeats\n"); return 2; }
  int n = atoi (argv[2]), repeats = atoi (argv[4]); double secs = atof (argv[3]);
  const ra_sim_class_t *cls = ra_sims_find (argv[1], (int) strlen (argv[1]));
  ra_sim_args_t args = { .num_envs = n, .seed = 1 };
  ra_sim_t *sim; ra_error_t err;
  if (!cls || cls->create (&args, &sim, &err) != RA_OK) { fprintf (stderr, "create failed\n"); return 1; }
  const ra_sim_spec_t *sp = cls->spec (sim);
  ra_sim_buffers_t b; memset (&b, 0, sizeof b);
  for (int f = 0; f < sp->n_obs; f++) { size_t e = 1; for (int d = 0; d < sp->obs[f].ndim; d++) e *= sp->obs[f].shape[d];
    b.obs[f] = calloc ((size_t) n * e, 8); }
  for (int f = 0; f < sp->n_info; f++) { size_t e = 1; for (int d = 0; d < sp->info[f].ndim; d++) e *= sp->info[f].shape[d];
    b.info[f] = calloc ((size_t) n * e, 8); }
  b.reward = calloc ((size_t) n, sizeof (float)); b.terminated = calloc ((size_t) n, 1);
  int k = sp->slate_size, K = sp->num_candidates, nbatches = 64;
  int32_t *acts = malloc (sizeof (int32_t) * (size_t) n * k * nbatches);
  srand (7);
  for (int bi = 0; bi < nbatches; bi++)
    for (int i = 0; i < n; i++) { int base = rand () % K;
      for (int j = 0; j < k; j++) acts[((size_t) bi * n + i) * k + j] = (int32_t) ((base + j) % K); }
  cls->reset (sim, 0, n, NULL, NULL, &b);
  double rates[64]; if (repeats > 64) repeats = 64;
  for (int rep = 0; rep < repeats; rep++) {
    long steps = 0; double t0 = now (), t;
    do {
      cls->step (sim, 0, n, acts + (size_t) (steps % nbatches) * n * k, &b);
      cls->reset (sim, 0, n, NULL, b.terminated, &b);
      steps++; t = now ();
    } while (t - t0 < secs);
    rates[rep] = steps * (double) n / (t - t0);
  }
  qsort (rates, repeats, sizeof *rates, cmp);
  printf ("steps_per_s %.1f\n", rates[repeats / 2]);
  return 0;
}
"""


_SERVER_PID = None  # the server process whose CPU time counts with the client's, when known
_CPU = []           # seconds of CPU per step of each window median_rate timed
_BELL = []          # whether each env timed had a doorbell


def _server_cpu() -> float:
    """CPU seconds (user + system) the server process has used so far; 0 when unknown."""
    if _SERVER_PID is None:
        return 0.0
    try:
        with open(f"/proc/{_SERVER_PID}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def median_rate(step_fn, n_envs: int, seconds: float, repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        steps, t0, c0 = 0, time.perf_counter(), time.process_time() + _server_cpu()
        while True:
            step_fn(steps)
            steps += 1
            t = time.perf_counter()
            if t - t0 >= seconds:
                break
        _CPU.append((time.process_time() + _server_cpu() - c0) / steps)
        rates.append(steps * n_envs / (t - t0))
    return statistics.median(rates)


class _Spin:
    """Sets $RECARENA_SPIN_US while an env's client is made (0: leaves it unset)."""

    def __init__(self, spin_us: int):
        self.spin_us, self.old = spin_us, None

    def __enter__(self):
        self.old = os.environ.pop("RECARENA_SPIN_US", None)
        if self.spin_us:
            os.environ["RECARENA_SPIN_US"] = str(self.spin_us)

    def __exit__(self, *exc):
        os.environ.pop("RECARENA_SPIN_US", None)
        if self.old is not None:
            os.environ["RECARENA_SPIN_US"] = self.old


def bench_single(address: str, seconds: float, repeats: int, spin_us: int = 0) -> float:
    with _Spin(spin_us):
        env = recarena.RemoteEnv(ENV, address=address, seed=1)
    seg = getattr(env._client, "_segments", {}).get(env._handle)
    _BELL.append(bool(seg is not None and seg.has_doorbell))
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(256)]
    env.reset(seed=1)

    def step(i):
        _, _, term, trunc, _ = env.step(actions[i & 255])
        if term or trunc:
            env.reset()
    try:
        return median_rate(step, 1, seconds, repeats)
    finally:
        env.close()


def bench_vector(address: str, n: int, seconds: float, repeats: int, spin_us: int = 0) -> float:
    with _Spin(spin_us):
        env = recarena.RemoteVectorEnv(ENV, n, address=address, seed=1)
    if spin_us and not env.client.spin:
        env.close()
        raise SystemExit("bench_python: no doorbell (server without --spin-us, or "
                         "librecarena_spin.so not built)")
    seg = env.client._segments.get(env._handle)
    _BELL.append(bool(seg is not None and seg.has_doorbell))
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(16)]
    env.reset(seed=1)
    try:
        return median_rate(lambda i: env.step(actions[i & 15]), n, seconds, repeats)
    finally:
        env.close()


class CReference:
    """The C client's env-steps/s at a batch size, against the same server process: a C loop
    compiled here against build/protocol/libra_protocol.a. (bench/bench_protocol measures the C
    client against an in-process server thread, a different set-up, so it is not used here.)
    rate() returns None when the library or a compiler is missing."""

    def __init__(self, build: str, address: str, seconds: float, repeats: int):
        self.address, self.seconds, self.repeats = address, seconds, repeats
        self.tmp = tempfile.mkdtemp(prefix="recarena-bench-")
        self.exe = None
        self.what = ""
        lib = os.path.join(build, "protocol", "libra_protocol.a")
        cc = shutil.which("cc") or shutil.which("gcc")
        if os.path.exists(lib) and cc:
            src, exe = os.path.join(self.tmp, "loop.c"), os.path.join(self.tmp, "loop")
            with open(src, "w") as f:
                f.write(C_LOOP)
            flags = []
            for pkg in ("libzmq", "msgpack"):
                r = subprocess.run(["pkg-config", "--cflags", "--libs", pkg], capture_output=True,
                                   text=True)
                flags += r.stdout.split() if r.returncode == 0 else [
                    "-lzmq" if pkg == "libzmq" else "-lmsgpack-c"]
            r = subprocess.run([cc, "-O2", "-std=c11", "-D_POSIX_C_SOURCE=200809L", f"-I{ROOT}",
                                src, lib, os.path.join(build, "common", "libra_common.a"), *flags,
                                "-lpthread", "-lm", "-lrt", "-o", exe],
                               capture_output=True, text=True)
            if r.returncode == 0:
                self.exe = exe
                self.what = ("C client loop compiled from this script against "
                             f"{lib}: same env, same loop shape, i32 actions")
            else:
                self.what = f"C loop did not compile: {r.stderr.strip()[-300:]}"
        if not self.what:
            self.what = f"no C reference: {lib} or a C compiler is missing"

    def rate(self, n: int, spin_us: int = 0):
        if self.exe is None:
            return None
        env = {k: v for k, v in os.environ.items() if k != "RECARENA_SPIN_US"}
        if spin_us:
            env["RECARENA_SPIN_US"] = str(spin_us)
        r = subprocess.run([self.exe, self.address, ENV, str(n), str(self.seconds),
                            str(self.repeats)], capture_output=True, text=True, timeout=300,
                           env=env)
        return float(r.stdout.split()[-1]) if r.returncode == 0 else None

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class InProcessReference:
    """The simulator stepped in C in this machine's one process (no server): the rate every
    transport is measured against. rate() returns None when it cannot be built."""

    def __init__(self, build: str, seconds: float, repeats: int):
        self.seconds, self.repeats = seconds, repeats
        self.tmp = tempfile.mkdtemp(prefix="recarena-bench-")
        self.exe = None
        libs = [os.path.join(build, *p) for p in (("env", "sims", "libra_sims.a"),
                                                   ("env", "core", "libra_env_core.a"),
                                                   ("common", "libra_common.a"))]
        cc = shutil.which("cc") or shutil.which("gcc")
        if all(os.path.exists(p) for p in libs) and cc:
            src, exe = os.path.join(self.tmp, "inproc.c"), os.path.join(self.tmp, "inproc")
            with open(src, "w") as f:
                f.write(C_INPROC)
            r = subprocess.run([cc, "-O2", "-std=c11", "-D_POSIX_C_SOURCE=200809L", f"-I{ROOT}",
                                src, *libs, "-lpthread", "-lm", "-o", exe],
                               capture_output=True, text=True)
            self.exe = exe if r.returncode == 0 else None
            self.error = r.stderr.strip()[-300:]

    def rate(self, n: int, repeats: int = 0):
        if self.exe is None:
            return None
        r = subprocess.run([self.exe, ENV, str(n), str(self.seconds), str(repeats or self.repeats)],
                           capture_output=True, text=True, timeout=300)
        return float(r.stdout.split()[-1]) if r.returncode == 0 else None

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--server", default=None, help="recarena-server binary")
    ap.add_argument("--address", default=None, help="use a running server instead")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--sizes", default="64,256,1024")
    ap.add_argument("--spin-us", type=int, default=1000,
                    help="the doorbell rows: server --spin-us and client $RECARENA_SPIN_US")
    args = ap.parse_args()
    # The Python client's doorbell steps come from the same build as everything else here.
    os.environ.setdefault("RECARENA_SPIN_LIB", os.path.join(args.build, "protocol", "librecarena_spin.so"))
    global _SERVER_PID
    server = None
    address = args.address
    if address is None:
        path = args.server or os.environ.get("RECARENA_SERVER") or \
            os.path.join(args.build, "env", "server", "recarena-server")
        server = LocalServer(path, transport="tcp", extra_args=["--spin-us", str(args.spin_us)])
        address = server.endpoint
        _SERVER_PID = server.pid
    try:
        with recarena.Client(address) as c:
            c.ping()
        sizes = [int(s) for s in args.sizes.split(",") if s]
        cref = CReference(args.build, address, args.seconds, args.repeats)
        iref = InProcessReference(args.build, args.seconds, args.repeats)
        with recarena.Client(address) as c:
            plane = "shared memory" if c.shm else "frames"
        print(f"recarena Python client, {ENV}, server {address} ({plane}), median of "
              f"{args.repeats} x {args.seconds:g} s; doorbell rows spin {args.spin_us} us; "
              f"CPU = client + server process per step" + ("" if _SERVER_PID else " (client only)"))
        print(f"{'envs':>6} | {'path':<8} | {'python env-steps/s':>18} | {'CPU/step':>10} | "
              f"{'C env-steps/s':>14} | python/C | {'in-process C':>13} | python/in-process")
        print("-" * 120)
        ratios, iratios = {}, {}
        for n in [1] + sizes:
            for spin in (0, args.spin_us):
                # Python and the in-process reference alternate window by window, so that their
                # ratio (the median of per-window ratios) compares the same load.
                pys, ics = [], []
                del _CPU[:]
                del _BELL[:]
                for _ in range(args.repeats):
                    pys.append(bench_single(address, args.seconds, 1, spin) if n == 1 else
                               bench_vector(address, n, args.seconds, 1, spin))
                    ics.append(iref.rate(n, repeats=1))
                py = statistics.median(pys)
                cpu = statistics.median(_CPU)
                c = cref.rate(n, spin)
                ic = statistics.median(ics) if all(ics) else None
                key = (n, spin)
                if c:
                    ratios[key] = py / c
                if ic:
                    iratios[key] = statistics.median(p / i for p, i in zip(pys, ics))
                # A session stepped on the server's workers gets no doorbell (docs/local.md 4.1).
                path = ("doorbell" if all(_BELL) else "no bell*") if spin else plane.split()[0]
                print(f"{n:>6} | {path:<8} | {py:>18,.0f} | {1e6 * cpu:>7.1f} us | "
                      + (f"{c:>14,.0f} | {py / c:8.2f}" if c else f"{'-':>14} | {'-':>8}")
                      + " | " + (f"{ic:>13,.0f} | {iratios[key]:.2f}" if ic else f"{'-':>13} | -"))
        print(f"(1 = RemoteEnv, a batch of one; others RemoteVectorEnv, one message per step; "
              f"* = asked for a doorbell, got none: the batch runs on the server's workers)")
        print(f"C reference: {cref.what}")
        cref.close()
        iref.close()
        for spin in (0, args.spin_us):
            what = "doorbell" if spin else plane
            tag = "budget" if spin else "(no doorbell)"
            if (256, spin) in ratios:
                r = ratios[(256, spin)]
                verdict = "meets" if r >= 0.5 else "MISSES"
                print(f"{tag}: Python/C ({what}) at 256 envs = {r:.2f} ({verdict} the >= 0.5 budget)")
            if (256, spin) in iratios:
                r = iratios[(256, spin)]
                verdict = "meets" if r >= 0.5 else "MISSES"
                print(f"{tag}: Python ({what})/in-process C at 256 envs = {r:.2f} "
                      f"({verdict} the >= 0.5 budget)")
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
