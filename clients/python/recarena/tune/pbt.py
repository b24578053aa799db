"""Population-based training over recarena-meta runs (docs/tune.md section 5).

A population of N members starts from hyperparameters drawn from the space. A generation runs
every member for --ready meta-iterations (recarena-meta --iters READY), or with --ready-unit steps
for READY env steps a generation of its lineage (--budget-steps: members whose iterations cost
different env steps, as ES populations of different sizes, then advance alike), continuing from
the member's checkpoint with --checkpoint-in. The run ends with a val point, whose metric is the
member's score; its --checkpoint-last holds that state, which the member continues from (as in
Jaderberg et al. 2017: a lineage always moves on, a generation that did not help included); with
--continue-from best the score is the run's best val point and the member continues from that
point's checkpoint (--checkpoint-out). Then the bottom quantile (default 0.25) each copy the
checkpoint and hyperparameters of a member drawn from the top quantile (exploit) and perturb every
searched key (explore): with probability 0.25 resample it from the space, otherwise multiply it by
0.8 or 1.2 (drawn evenly) and clip it into its range (ints onto their grid; choices are kept).
Every exploit is recorded in the schedule. A generation expected to cross an env-step --budget
gives each run an equal share of what is left.

With --lineage-steps N every member's lineage (the env steps of training behind its checkpoint:
its own runs, plus its donor's lineage when it copies one) stops at N env steps, so that a final
member has trained as long as one search trial of N steps (docs/tune.md section 5.1); without it a
lineage trains for every generation.

State lives in PBT_STATE (JSON, replaced atomically after each generation) so that running the
same command again continues at the next generation. Randomness: one generator per generation,
seeded from (--seed, generation), so a resumed run draws what an unbroken one would.

Owns the member threads of one generation at a time (--parallel); the state is touched only by
the calling thread between generations.
"""
from __future__ import annotations

import json
import math
import os
import random
import shutil
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from .runner import run_meta, wait_threads
from .search import Budget, TuneError
from .space import Dim, Scalar, Space

PBT_STATE = "pbt_state.json"


@dataclass
class PbtOptions:
    space: Space
    meta_bin: str
    out_dir: str
    population: int = 8
    ready: int = 10
    ready_unit: str = "iters"  # or "steps": READY env steps per generation
    continue_from: str = "last"  # or "best": the run's best val point and its checkpoint
    generations: int = 10
    quantile: float = 0.25
    resample_p: float = 0.25
    factors: Tuple[float, float] = (0.8, 1.2)
    metric: str = "score"
    direction: str = "maximize"
    seed: int = 0
    parallel: int = 1
    budget: Budget = field(default_factory=Budget)
    address: Optional[str] = None
    lineage_steps: Optional[int] = None  # None: a lineage trains for every generation


def perturb(dims: List[Dim], params: Dict[str, Scalar], rng: random.Random, resample_p: float,
            factors: Tuple[float, float]) -> Tuple[Dict[str, Scalar], Dict[str, str]]:
    """The explore step: new params and, per key, what was done ('resample', 'x0.8', 'keep')."""
    new, how = dict(params), {}
    for d in dims:
        if rng.random() < resample_p:
            new[d.name], how[d.name] = d.sample(rng), "resample"
        elif d.kind == "choice":
            how[d.name] = "keep"
        else:
            f = factors[rng.randrange(2)]
            new[d.name], how[d.name] = d.clip(float(params[d.name]) * f), f"x{f:g}"
    return new, how


def exploit_explore(opts: PbtOptions, members: List[Dict[str, Any]], generation: int,
                    rng: random.Random) -> List[Dict[str, Any]]:
    """Bottom quantile copies a top member's checkpoint and params, then perturbs; returns the
    schedule events. Members are dicts with 'id', 'params', 'checkpoint', 'score'."""
    n = len(members)
    q = max(1, int(math.floor(n * opts.quantile))) if n >= 2 else 0
    sign = 1.0 if opts.direction == "maximize" else -1.0
    # Ties and failures: a failed member scores -inf (worst); ids break ties so order is fixed.
    order = sorted(members, key=lambda m: (sign * m["score"] if m["score"] is not None
                                           else -math.inf, -m["id"]))
    bottom, top = order[:q], order[n - q:]
    events = []
    for m in bottom:
        donor = top[rng.randrange(len(top))]
        new, how = perturb(opts.space.dims, donor["params"], rng, opts.resample_p, opts.factors)
        ev = {"generation": generation, "member": m["id"], "donor": donor["id"],
              "member_score": m["score"], "donor_score": donor["score"],
              "old_params": dict(m["params"]), "donor_params": dict(donor["params"]),
              "new_params": new, "perturbation": how, "checkpoint_from": donor["checkpoint"]}
        if donor["checkpoint"] and os.path.exists(donor["checkpoint"]):
            dst = os.path.join(opts.out_dir, "pbt", f"m{m['id']:03d}",
                               f"g{generation:04d}-from-m{donor['id']:03d}.safetensors")
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(donor["checkpoint"], dst)
            m["checkpoint"] = dst
            m["lineage_steps"] = donor.get("lineage_steps", 0)  # the copy's training comes along
            m["iter"] = donor.get("iter", 0)
        else:
            m["checkpoint"] = None  # the donor has none yet: start from scratch with its params
            m["lineage_steps"] = 0
            m["iter"] = 0
        ev["checkpoint_to"] = m["checkpoint"]
        ev["lineage_steps_to"] = m["lineage_steps"]
        m["params"] = new
        events.append(ev)
    return events


def _signature(opts: PbtOptions) -> Dict[str, Any]:
    sig = {
        "fixed": opts.space.fixed,
        "dims": [[d.name, d.kind, d.low, d.high, d.step, d.log, list(d.values)]
                 for d in opts.space.dims],
        "population": opts.population, "ready": opts.ready, "quantile": opts.quantile,
        "resample_p": opts.resample_p, "factors": list(opts.factors), "metric": opts.metric,
        "direction": opts.direction, "seed": opts.seed}
    # absent when unset: older state files stay resumable
    if opts.lineage_steps is not None:
        sig["lineage_steps"] = opts.lineage_steps
    if opts.ready_unit != "iters":
        sig["ready_unit"] = opts.ready_unit
    if opts.continue_from != "last":
        sig["continue_from"] = opts.continue_from
    return json.loads(json.dumps(sig))


def _save(path: str, state: Dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=1)
    os.replace(tmp, path)


def load_state(out_dir: str) -> Optional[Dict[str, Any]]:
    path = os.path.join(out_dir, PBT_STATE)
    if not os.path.exists(path):
        return None
    with open(path, "r", encoding="utf-8") as f:
        return json.load(f)


def _lineage_left(opts: PbtOptions, m: Dict[str, Any]) -> Optional[int]:
    """Env steps the member's lineage may still train (None: no cap)."""
    if opts.lineage_steps is None:
        return None
    return max(0, opts.lineage_steps - int(m.get("lineage_steps", 0)))


def _final_share(opts: PbtOptions, state: Dict[str, Any]) -> Optional[int]:
    """Env steps each member's run may use in a generation expected to cross --budget (the
    previous generation's cost is the estimate): an equal share of what is left, so PBT spends
    its budget as a search does instead of running a whole generation past it. None: no cap."""
    g = state["generation"]
    if opts.budget.steps is None or g == 0:
        return None
    left = opts.budget.steps - state["steps_done"]
    if sum(h["env_steps"] for h in state["history"] if h["generation"] == g - 1) <= left:
        return None
    running = sum(1 for m in state["members"] if _lineage_left(opts, m) != 0)
    return max(1, -(-left // max(1, running)))


def _run_member(opts: PbtOptions, m: Dict[str, Any], g: int, stop: threading.Event,
                share: Optional[int] = None) -> Dict[str, Any]:
    left = _lineage_left(opts, m)
    if left == 0:
        # The lineage has its env steps: the member is not run again and keeps its checkpoint
        # and score (it still ranks in the exploit step and may be a donor).
        return {"generation": g, "member": m["id"], "params": dict(m["params"]),
                "checkpoint_in": m["checkpoint"], "status": "lineage-done", "env_steps": 0,
                "wall_s": 0.0, "iter_start": m.get("iter", 0), "iter_end": m.get("iter", 0),
                "iter_checkpoint": m.get("iter", 0),
                "vals": [],
                "score": m["score"], "lineage_steps": int(m.get("lineage_steps", 0))}
    flags: Dict[str, Any] = dict(opts.space.fixed)
    flags.setdefault("seed", opts.seed)
    steps = opts.ready_unit == "steps"
    # the run validates where it starts and where it stops; in between every READY iterations
    flags.setdefault("val-every", 1_000_000_000 if steps else opts.ready)
    flags.update(m["params"])
    # env-step limits of this run; recarena-meta stops at the first it reaches (or at --iters),
    # past it by part of one iteration, as a search trial's --budget-steps does
    caps = [] if left is None else [left]
    if steps:
        # READY env steps a generation for the lineage, not for each run: a run that overshot
        # leaves the next one less, so a member whose iterations are large for READY keeps pace
        # instead of training two every time
        caps.append(min(opts.ready, max(1, opts.ready * (g + 1) - int(m.get("lineage_steps", 0)))))
    else:
        flags["iters"] = opts.ready
    if caps:
        flags["budget-steps"] = min(caps)
    if share is not None:  # below the space's budget-steps too
        flags["budget-steps"] = min(int(flags.get("budget-steps", share)), share)
    lineage_horizon = left is not None and flags.get("budget-steps") == left
    if str(flags.get("algo", "reptile")) == "reptile" and not lineage_horizon:
        # Reptile's epsilon anneals over the env steps a run is told are left, plus those behind
        # its checkpoint: the lineage's horizon only when budget-steps is what the lineage has
        # left (--lineage-steps, generations in iterations). Otherwise each run anneals over its
        # own budget, as a fresh trial does, unless the space says so (docs/tune.md 5, 8.9).
        flags.setdefault("anneal-over", "run")
    if opts.address:
        flags["address"] = opts.address
    wd = os.path.join(opts.out_dir, "pbt", f"m{m['id']:03d}", f"g{g:04d}")
    out_ckpt = os.path.join(wd, "checkpoint.safetensors")
    best = opts.continue_from == "best"
    # the state the member continues from: its run's end, or its best val point
    flags["checkpoint-out" if best else "checkpoint-last"] = out_ckpt
    if m["checkpoint"]:
        flags["checkpoint-in"] = m["checkpoint"]
        if not best:
            # its start was scored where the checkpoint was written (and a score is a run's last
            # val point): a val point saved per member and generation, unless the space says so
            flags.setdefault("val-at-start", "false")
    res = run_meta(opts.meta_bin, flags, wd, opts.metric, stop_event=stop)
    vals = [float(v[opts.metric]) for v in res.vals()]
    # meta-iterations number on across a lineage (docs/meta.md 5)
    its = [m.get("iter", 0)] + [int(v.get("iter", 0)) for v in res.vals()]
    k = _scored(opts, vals) if vals and res.status == "ok" else None
    rec = {"generation": g, "member": m["id"], "params": dict(m["params"]),
           "checkpoint_in": m["checkpoint"], "status": res.status, "env_steps": res.env_steps,
           "wall_s": round(res.wall_s, 3), "iter_start": its[0], "iter_end": its[-1],
           # the iteration of the state the member continues from
           "iter_checkpoint": its[0] if k is None else its[1 + k],
           "vals": vals, "score": None if k is None else vals[k],
           "lineage_steps": int(m.get("lineage_steps", 0)) + res.env_steps}
    if res.status != "ok":
        rec["reason"], rec["stderr_tail"] = res.reason, res.stderr_tail
    return rec


def _scored(opts: PbtOptions, vals: List[float]) -> int:
    """The val point that scores a run: its last, or with --continue-from best its first best
    (recarena-meta writes --checkpoint-out only on a strict improvement)."""
    if opts.continue_from == "best":
        return vals.index(max(vals) if opts.direction == "maximize" else min(vals))
    return len(vals) - 1


def run_pbt(opts: PbtOptions, log: Optional[Callable[[str], None]] = None) -> Dict[str, Any]:
    """Runs (or continues) PBT; returns the state (members, history, schedule)."""
    if opts.population < 2:
        raise TuneError(f"--population must be at least 2 for PBT, got {opts.population}")
    if opts.ready < 1 or opts.generations < 1 or opts.parallel < 1:
        raise TuneError("--ready, --generations and --parallel must be at least 1")
    if opts.ready_unit not in ("iters", "steps"):
        raise TuneError(f"--ready-unit must be iters or steps, got {opts.ready_unit!r}")
    if opts.continue_from not in ("last", "best"):
        raise TuneError(f"--continue-from must be last or best, got {opts.continue_from!r}")
    if not 0 < opts.quantile <= 0.5:
        raise TuneError(f"--quantile must be in (0, 0.5], got {opts.quantile}")
    if not 0 <= opts.resample_p <= 1:  # also refuses NaN
        raise TuneError(f"--resample-p must be a probability in [0, 1], got {opts.resample_p}")
    if opts.lineage_steps is not None and opts.lineage_steps < 1:
        raise TuneError(f"--lineage-steps must be at least 1, got {opts.lineage_steps}")
    opts.out_dir = os.path.abspath(opts.out_dir)  # members run with their own directory as cwd
    os.makedirs(opts.out_dir, exist_ok=True)
    path = os.path.join(opts.out_dir, PBT_STATE)
    state = load_state(opts.out_dir)
    sig = _signature(opts)
    if state is None:
        rng = random.Random(f"{opts.seed}:init")
        state = {"mode": "pbt", "signature": sig, "generation": 0, "steps_done": 0,
                 "secs_done": 0.0, "history": [], "schedule": [],
                 "members": [{"id": i, "params": opts.space.sample(rng), "checkpoint": None,
                              "score": None, "lineage_steps": 0}
                             for i in range(opts.population)]}
        _save(path, state)
    elif state.get("signature") != sig:
        raise TuneError(f"{path} was made with different PBT settings or space; use another --out")
    stop = threading.Event()
    while state["generation"] < opts.generations:
        if opts.budget.spent(state["steps_done"], state["secs_done"]):
            if log:
                log("[tune] PBT budget spent")
            break
        g = state["generation"]
        members = state["members"]
        if all(_lineage_left(opts, m) == 0 for m in members):
            if log:
                log(f"[tune] PBT: every lineage has its {opts.lineage_steps} env steps")
            break
        if state.get("exploit_pending"):
            # the run that finished generation g - 1 was asked for no more; it is now, so the
            # exploit it skipped comes first (with the generator an unbroken run would have used)
            state["schedule"] += exploit_explore(opts, members, g - 1,
                                                 random.Random(f"{opts.seed}:{g - 1}"))
            state["exploit_pending"] = False
        share = _final_share(opts, state)
        if share is not None and log:
            log(f"[tune] PBT generation {g + 1}: the last within --budget; each run may use "
                f"{share} of the {opts.budget.steps - state['steps_done']} env steps left")
        recs: List[Optional[Dict[str, Any]]] = [None] * len(members)
        nxt = iter(range(len(members)))
        lock = threading.Lock()

        def work() -> None:
            # after Ctrl-C / SIGTERM no more members: each would still make its directory and
            # a record, so a big population took minutes to stop
            while not stop.is_set():
                with lock:
                    i = next(nxt, None)
                if i is None:
                    return
                recs[i] = _run_member(opts, members[i], g, stop, share)

        t0 = time.monotonic()
        threads = [threading.Thread(target=work) for _ in range(min(opts.parallel, len(members)))]
        for t in threads:
            t.start()
        try:
            wait_threads(threads)
        except KeyboardInterrupt:
            # The generation is not saved: running the same command reruns it from the
            # checkpoints the state names.
            stop.set()
            wait_threads(threads)
            raise
        for m, r in zip(members, recs):
            assert r is not None
            state["history"].append(r)
            state["steps_done"] += r["env_steps"]
            state["secs_done"] += r["wall_s"]
            m["score"] = r["score"]
            m["lineage_steps"] = r["lineage_steps"]
            m["iter"] = r["iter_checkpoint"]
            if r["status"] == "lineage-done":
                continue
            ck = os.path.join(opts.out_dir, "pbt", f"m{m['id']:03d}", f"g{g:04d}",
                              "checkpoint.safetensors")
            if r["status"] == "ok" and os.path.exists(ck):
                m["checkpoint"] = ck
        # No exploit after the last generation (the last of --generations, or the one that
        # spent --budget): the members then hold what they ran with. Nor once a lineage has its
        # --lineage-steps: a member that copied it could not train with the hyperparameters it
        # would be given; the others train on to the cap as they are.
        capped = any(_lineage_left(opts, m) == 0 for m in members)
        last = (g + 1 >= opts.generations
                or opts.budget.spent(state["steps_done"], state["secs_done"]))
        if not last and not capped:
            state["schedule"] += exploit_explore(opts, members, g,
                                                 random.Random(f"{opts.seed}:{g}"))
        elif not capped:
            state["exploit_pending"] = True
        state["generation"] = g + 1
        _save(path, state)
        if log:
            scores = [m["score"] for m in members]
            best = max((s for s in scores if s is not None), default=float("nan"))
            log(f"[tune] PBT generation {g + 1}/{opts.generations}: best {opts.metric} {best:.4g}, "
                f"{sum(s is None for s in scores)} failed, {time.monotonic() - t0:.1f}s")
    return state
