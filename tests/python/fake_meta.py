#!/usr/bin/env python3
"""A TEST DOUBLE for recarena-meta, used by tests/python/test_tune*.py: it follows the command-line
and metrics contract of recarena-meta (docs/tune.md section 3) but trains nothing. Its val score
is a known function of the hyperparameters and of the iterations trained so far, so the tests can
plant an optimum and check that recarena-tune finds it, prunes bad trials, and that PBT continues
from copied checkpoints. The real binary is exercised by test_tune_real.py.

    score(iter) = q(h) - 1 / (1 + iter)
    q(h) = -(log10(inner-lr) + 2)^2 - 4 (outer-lr - 0.5)^2 + 0.1 [adapt-params == head]
    (the optimum: inner-lr 0.01, outer-lr 0.5, adapt-params head; q = 0.1)

Each iteration uses 100 * meta-batch env steps; as in recarena-meta, one starts while the steps
so far are below --budget-steps (so a run may overshoot it by part of an iteration), and the last
iteration is a val point whether or not it is a multiple of --val-every. The "checkpoint" is a small JSON file (the real
one is safetensors): the iterations trained, the hyperparameters of each segment, and a random id
so a copy can be told from a fresh file (--checkpoint-out: the best val point's; --checkpoint-last:
the latest val point's). --checkpoint-in continues the iteration count from it.

As recarena-meta, `--iters 0` validates the start point (the --checkpoint-in file's iteration)
and trains nothing: that is how bench/val_noise.py re-validates a trial's checkpoint.

Knobs for failure tests (environment): FAKE_META_CRASH_ABOVE=x exits 1 with a message when
outer-lr > x; FAKE_META_NAN_ABOVE=x writes a NaN score when outer-lr > x; FAKE_META_SLEEP=s sleeps
s seconds per iteration; FAKE_META_LOG=path appends one JSON line per invocation (its flags).
FAKE_META_VAL_NOISE=sd adds evaluation noise to every val score: sd times a standard normal drawn
from (--seed, --val-tasks, the hyperparameters, the iteration), so the same checkpoint scores the
same on the same val streams and differently on other ones, as recarena-meta's val scores do.
"""
import json
import math
import os
import random
import sys
import time
import uuid

FLAGS = {"env", "algo", "train-tasks", "val-tasks", "budget-steps", "iters", "val-every", "seed",
         "device", "workers", "inner-lr", "inner-steps", "outer-lr", "meta-batch", "population",
         "sigma", "entropy", "envs-per-task", "rollout-len", "adapt-params", "checkpoint-out",
         "checkpoint-last", "checkpoint-in", "val-at-start", "anneal-over", "metrics", "config",
         "address", "val-act", "sim-config"}


def die(msg, code):
    sys.stderr.write(f"fake-meta: {msg}\n")
    sys.exit(code)


def parse(argv):
    flags, quiet, i = {}, False, 0
    while i < len(argv):
        a = argv[i]
        if a == "--quiet":
            quiet, i = True, i + 1
            continue
        if not a.startswith("--") or a[2:] not in FLAGS:
            die(f"unknown flag '{a}'", 2)
        if i + 1 >= len(argv):
            die(f"{a} needs a value", 2)
        flags[a[2:]] = argv[i + 1]
        i += 2
    if "config" in flags:
        from_file = {}
        with open(flags.pop("config")) as f:
            for line in f:
                if line.strip():
                    k, _, v = line.partition("=")
                    k = k.strip()
                    if k not in FLAGS:
                        die(f"config: unknown key '{k}'", 2)
                    from_file[k] = v.strip()
        from_file.update(flags)  # the command line wins
        flags = from_file
    return flags, quiet


def main():
    flags, quiet = parse(sys.argv[1:])
    if os.environ.get("FAKE_META_LOG"):
        with open(os.environ["FAKE_META_LOG"], "a") as f:
            f.write(json.dumps(flags) + "\n")
    try:
        inner = float(flags.get("inner-lr", 0.1))
        outer = float(flags.get("outer-lr", 0.1))
        batch = int(float(flags.get("meta-batch", 4)))
        iters = int(float(flags.get("iters", 1000)))
        every = int(float(flags.get("val-every", 5)))
        budget = int(float(flags.get("budget-steps", 10**12)))
    except ValueError as e:
        die(f"bad number: {e}", 2)
    if inner <= 0 or every < 1 or batch < 1:
        die("--inner-lr must be > 0, --val-every and --meta-batch >= 1", 2)
    head = flags.get("adapt-params", "all") == "head"
    q = -(math.log10(inner) + 2) ** 2 - 4 * (outer - 0.5) ** 2 + (0.1 if head else 0.0)
    crash = os.environ.get("FAKE_META_CRASH_ABOVE")
    nan = os.environ.get("FAKE_META_NAN_ABOVE")
    sleep = float(os.environ.get("FAKE_META_SLEEP", "0"))
    start, lineage = 0, []
    if "checkpoint-in" in flags:
        with open(flags["checkpoint-in"]) as f:
            ck = json.load(f)
        start, lineage = ck["iter"], ck["lineage"]
    lineage = lineage + [{"from_iter": start, "params": {k: flags[k] for k in sorted(flags)
                          if k in ("inner-lr", "outer-lr", "adapt-params", "meta-batch")}}]
    out = open(flags["metrics"], "a") if "metrics" in flags else None
    best, best_iter, steps, it = None, None, 0, start

    def emit(obj):
        if out:
            out.write(json.dumps(obj) + "\n")
            out.flush()

    noise_sd = float(os.environ.get("FAKE_META_VAL_NOISE", "0"))

    def noise(at):
        if not noise_sd:
            return 0.0
        key = "|".join([flags.get("seed", "1"), flags.get("val-tasks", "val:0-15"), repr(inner),
                        repr(outer), str(head), str(at)])
        return noise_sd * random.Random(key).gauss(0.0, 1.0)

    if iters == 0:  # as recarena-meta: validate the start point, train nothing
        s = q - 1.0 / (1 + start) + noise(start)
        best, best_iter = s, start
        emit({"kind": "val", "iter": start, "env_steps": 0, "R@0": s - 1, "R@1": s - 0.5,
              "R@5w": s, "score": s})
    for n in range(1, iters + 1):
        if steps >= budget:  # as recarena-meta: an iteration starts while steps < budget
            break
        it, steps = start + n, steps + 100 * batch
        if sleep:
            time.sleep(sleep)
        emit({"kind": "train", "iter": it, "env_steps": steps, "meta_return": q, "samples_per_s": 1e6,
              "wall_s": 0.0})
        if crash is not None and outer > float(crash):
            die(f"boom: simulated crash at iter {it}", 1)
        last = n == iters or steps >= budget
        if n % every == 0 or last:  # as recarena-meta, the end is a val point too
            s = q - 1.0 / (1 + it) + noise(it)
            if nan is not None and outer > float(nan):
                s = float("nan")
            emit({"kind": "val", "iter": it, "env_steps": steps, "R@0": s - 1, "R@1": s - 0.5,
                  "R@5w": s, "score": s})
            if not math.isfinite(s):
                die(f"NaN in returns at iter {it}", 1)
            better = best is None or s > best
            if better:
                best, best_iter = s, it
            for key, write in (("checkpoint-out", better), ("checkpoint-last", True)):
                if write and key in flags:
                    tmp = flags[key] + ".tmp"
                    with open(tmp, "w") as f:
                        json.dump({"iter": it, "lineage": lineage, "id": uuid.uuid4().hex}, f)
                    os.replace(tmp, flags[key])
        if not quiet:
            sys.stderr.write(f"iter {it}\n")
    emit({"kind": "done", "iter": it, "env_steps": steps, "best_score": best, "best_iter": best_iter,
          "checkpoint": flags.get("checkpoint-out", "")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
