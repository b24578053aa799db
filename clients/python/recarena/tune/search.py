"""The Optuna study that drives recarena-meta trials: sampling, ASHA / Hyperband pruning, budget,
parallel trial processes, resumption (docs/tune.md section 4).

A trial is one recarena-meta process (runner.run_meta). Each val line is reported to Optuna at the
step of the chosen resource (the line's iter or env_steps); when the pruner says so, the process is
stopped and the trial recorded as pruned. A finished trial's value is the best val metric it
reported (its --checkpoint-out holds that meta-init). A crash, a non-zero exit or a NaN is a failed
trial with its reason and stderr tail in the trial's user attributes; the study goes on.

Owns the study handle and the trial threads. Threading: --parallel worker threads each run one
trial at a time; study.ask / the budget counters are serialised by one lock, so with --parallel 1
the same seed gives the same sequence of trials.
"""
from __future__ import annotations

import json
import math
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import optuna
from optuna.trial import TrialState

from .runner import run_meta, wait_threads
from .space import Space

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class TuneError(ValueError):
    """A study that cannot be run as asked (the message says why)."""


@dataclass
class Budget:
    """Either env steps (summed over the study's trials) or trial-seconds (the sum of the trials'
    wall times, so it means the same under --parallel and across a resume). None: unlimited."""

    steps: Optional[int] = None
    seconds: Optional[float] = None

    @staticmethod
    def parse(text: Optional[str]) -> "Budget":
        if not text:
            return Budget()
        m = re.fullmatch(r"\s*([0-9.eE+]+)\s*(steps|s|m|h)?\s*", text)
        try:
            x = float(m.group(1)) if m else float("nan")
        except ValueError:
            x = float("nan")
        if not m or not math.isfinite(x) or x <= 0:
            raise TuneError(f"--budget: expected env steps (2e6 or 2e6steps) or trial time "
                            f"(90s, 30m, 2h), got {text!r}")
        unit = m.group(2) or "steps"
        if unit == "steps":
            return Budget(steps=int(x))
        return Budget(seconds=x * {"s": 1, "m": 60, "h": 3600}[unit])

    def spent(self, steps: float, seconds: float) -> bool:
        return ((self.steps is not None and steps >= self.steps)
                or (self.seconds is not None and seconds >= self.seconds))


@dataclass
class SearchOptions:
    space: Space
    meta_bin: str
    out_dir: str
    study_name: str = "recarena-tune"
    storage: Optional[str] = None      # None: sqlite:///<out_dir>/study.db; "memory": not kept
    trials: int = 20
    parallel: int = 1
    sampler: str = "tpe"               # tpe | random
    pruner: str = "asha"               # asha | hyperband | median | none
    eta: int = 3
    min_resource: Optional[int] = None  # None: asha 'auto', hyperband 1
    resource: str = "iters"            # iters | steps
    metric: str = "score"
    direction: str = "maximize"
    seed: int = 0
    startup_trials: int = 10
    budget: Budget = field(default_factory=Budget)
    address: Optional[str] = None


def storage_url(opts: SearchOptions) -> Any:
    if opts.storage == "memory":
        return _memory(opts.study_name)
    if opts.storage:
        return opts.storage
    return "sqlite:///" + os.path.abspath(os.path.join(opts.out_dir, "study.db"))


_MEMORY: Dict[str, Any] = {}


def _memory(name: str) -> Any:
    """One in-memory storage per study name for the life of the process (nothing is kept after
    it: no resumption). Faster than SQLite, which commits every report."""
    if name not in _MEMORY:
        _MEMORY[name] = optuna.storages.InMemoryStorage()
    return _MEMORY[name]


def _pruner(opts: SearchOptions) -> optuna.pruners.BasePruner:
    if opts.eta < 2:
        raise TuneError(f"--eta must be at least 2, got {opts.eta}")
    if opts.pruner == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=opts.min_resource if opts.min_resource else "auto",
            reduction_factor=opts.eta)
    if opts.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=opts.min_resource or 1,
                                              reduction_factor=opts.eta)
    if opts.pruner == "median":
        return optuna.pruners.MedianPruner()
    if opts.pruner == "none":
        return optuna.pruners.NopPruner()
    raise TuneError(f"--pruner is asha, hyperband, median or none, got {opts.pruner!r}")


def _sampler(opts: SearchOptions, salt: int) -> optuna.samplers.BaseSampler:
    # A resumed study must not replay the first invocation's random draws: the seed moves with
    # the number of trials already in the study (0 for a fresh one, so a fresh run is repeatable).
    seed = (opts.seed + 1_000_003 * salt) % (2**32)
    if opts.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=opts.startup_trials)
    if opts.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise TuneError(f"--sampler is tpe or random, got {opts.sampler!r}")


def _signature(opts: SearchOptions) -> Dict[str, Any]:
    """What a resumed study must agree on; stored in the study's user attributes."""
    return {"fixed": opts.space.fixed,
            "dims": [[d.name, d.kind, d.low, d.high, d.step, d.log, list(d.values)]
                     for d in opts.space.dims],
            "metric": opts.metric, "resource": opts.resource, "direction": opts.direction,
            "pruner": opts.pruner, "eta": opts.eta}


def open_study(opts: SearchOptions) -> optuna.Study:
    """Creates the study or loads it to continue; TuneError when the stored one differs."""
    os.makedirs(opts.out_dir, exist_ok=True)
    url = storage_url(opts)
    try:
        if isinstance(url, str) and url.startswith("sqlite:"):
            # Trial threads, a second tuner on the same file and readers share one SQLite file:
            # wait for its lock (up to 60 s) instead of failing at the default 5 s on a busy
            # machine. Two processes opening a new file at once can both try to create its
            # tables; the loser finds them made on a second try.
            for attempt in range(3):
                try:
                    url = optuna.storages.RDBStorage(
                        url, engine_kwargs={"connect_args": {"timeout": 60}})
                    break
                except Exception as e:  # sqlalchemy's OperationalError, without importing it
                    if "already exists" not in str(e) or attempt == 2:
                        raise
                    time.sleep(0.5)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        probe = optuna.create_study(storage=url, study_name=opts.study_name, load_if_exists=True,
                                    direction=opts.direction)
    except Exception as e:  # sqlalchemy and optuna raise their own kinds; all mean the same here
        raise TuneError(f"--storage {storage_url(opts)}: cannot open the study: "
                        f"{type(e).__name__}: {e}") from None
    n_existing = len(probe.get_trials(deepcopy=False))
    study = optuna.create_study(storage=url, study_name=opts.study_name, load_if_exists=True,
                                direction=opts.direction, sampler=_sampler(opts, n_existing),
                                pruner=_pruner(opts))
    sig = json.loads(json.dumps(_signature(opts)))
    old = study.user_attrs.get("signature")
    if old is None:
        study.set_user_attr("signature", sig)
        study.set_user_attr("mode", "search")
    elif old != sig:
        diff = sorted(k for k in set(old) | set(sig) if old.get(k) != sig.get(k))
        raise TuneError(f"study '{opts.study_name}' in {storage_url(opts)} was made with a "
                        f"different {', '.join(diff)}; use a new --study name or the same "
                        "settings")
    return study


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reclaim_interrupted(study: optuna.Study) -> List[int]:
    """Trials left RUNNING by a killed tuner on this host are failed (user attribute
    'interrupted') and queued again with the same hyperparameters. Trials owned by a live process
    or another host (a shared storage) are left alone."""
    host = socket.gethostname()
    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.user_attrs.get("owner", "")
        h, _, pid = owner.rpartition(":")
        if h != host or not pid.isdigit() or _pid_alive(int(pid)):
            continue
        study._storage.set_trial_user_attr(t._trial_id, "interrupted", True)
        study.tell(t.number, state=TrialState.FAIL)
        study.enqueue_trial(dict(t.params), user_attrs={"retry_of": t.number})
        out.append(t.number)
    return out


def counted(trials: List[optuna.trial.FrozenTrial]) -> List[optuna.trial.FrozenTrial]:
    """Finished trials that count towards --trials (interrupted ones are rerun, not counted)."""
    return [t for t in trials if t.state in FINISHED and not t.user_attrs.get("interrupted")]


class _Driver:
    def __init__(self, opts: SearchOptions, study: optuna.Study):
        self.opts, self.study = opts, study
        self.lock = threading.Lock()
        self.stop = threading.Event()
        done = counted(study.get_trials(deepcopy=False))
        self.to_start = max(0, opts.trials - len(done))
        self.steps_done = sum(int(t.user_attrs.get("env_steps", 0)) for t in done)
        self.secs_done = sum(float(t.user_attrs.get("wall_s", 0.0)) for t in done)
        self.done_before = len(done)
        self.interrupted = False  # set on Ctrl-C / SIGTERM: stopped trials are rerun later
        self.live_steps: Dict[int, int] = {}
        self.live_t0: Dict[int, float] = {}

    def _spent(self) -> bool:
        now = time.monotonic()
        steps = self.steps_done + sum(self.live_steps.values())
        secs = self.secs_done + sum(now - t0 for t0 in self.live_t0.values())
        return self.opts.budget.spent(steps, secs)

    def worker(self) -> None:
        while True:
            with self.lock:
                if self._spent():
                    self.stop.set()
                if self.stop.is_set() or self.to_start <= 0:
                    return
                self.to_start -= 1
                trial = self.study.ask()
                trial.set_user_attr("owner", _owner())
                params = self.opts.space.suggest(trial)
                self.live_steps[trial.number] = 0
                self.live_t0[trial.number] = time.monotonic()
            self.run_trial(trial, params)

    def run_trial(self, trial: optuna.Trial, params: Dict[str, Any]) -> None:
        o = self.opts
        flags: Dict[str, Any] = dict(o.space.fixed)
        flags.setdefault("seed", o.seed)
        flags.update(params)
        if o.address:
            flags["address"] = o.address
        wd = os.path.join(o.out_dir, "trials", f"{trial.number:05d}")
        flags["checkpoint-out"] = os.path.join(wd, "checkpoint.safetensors")
        key = "iter" if o.resource == "iters" else "env_steps"
        reported = set()

        def on_line(line: Dict[str, Any]) -> Optional[str]:
            with self.lock:
                self.live_steps[trial.number] = int(line.get("env_steps", 0) or 0)
                spent = self._spent()
            if line.get("kind") == "val":
                step = int(line.get(key, 0) or 0)
                if step not in reported:  # Optuna keeps the first value reported at a step
                    reported.add(step)
                    trial.report(float(line[o.metric]), step)
                    if trial.should_prune():
                        return f"pruned at {o.resource} {step}"
            if spent:
                self.stop.set()
                return "budget spent"
            return None

        res = run_meta(o.meta_bin, flags, wd, o.metric, on_line=on_line, stop_event=self.stop)
        trial.set_user_attr("env_steps", res.env_steps)
        trial.set_user_attr("wall_s", round(res.wall_s, 3))
        trial.set_user_attr("workdir", wd)
        trial.set_user_attr("command", res.argv)
        vals = [float(v[o.metric]) for v in res.vals()]
        best = (max if o.direction == "maximize" else min)(vals) if vals else None
        if res.status == "failed":
            trial.set_user_attr("fail_reason", res.reason)
            trial.set_user_attr("stderr_tail", res.stderr_tail)
            state, value = TrialState.FAIL, None
        elif res.status == "stopped" and self.interrupted:
            # not the trial's fault: fail it as interrupted and queue its params again, as
            # reclaim_interrupted does for a tuner that was killed outright
            trial.set_user_attr("interrupted", True)
            state, value = TrialState.FAIL, None
        elif res.status == "stopped":
            trial.set_user_attr("stopped", res.reason)
            state, value = TrialState.PRUNED, None
        else:
            state, value = TrialState.COMPLETE, best
        if best is not None:
            trial.set_user_attr("best_val", best)
        with self.lock:
            self.study.tell(trial, value, state=state)
            if trial.user_attrs.get("interrupted"):
                self.study.enqueue_trial(params, user_attrs={"retry_of": trial.number})
            self.steps_done += res.env_steps
            self.secs_done += res.wall_s
            self.live_steps.pop(trial.number, None)
            self.live_t0.pop(trial.number, None)


def run_search(opts: SearchOptions, log=None) -> optuna.Study:
    """Runs (or continues) the study until --trials have finished or the budget is spent."""
    if opts.parallel < 1:
        raise TuneError(f"--parallel must be at least 1, got {opts.parallel}")
    if opts.trials < 1:
        raise TuneError(f"--trials must be at least 1, got {opts.trials}")
    if opts.startup_trials < 0:
        raise TuneError(f"--startup-trials must be at least 0, got {opts.startup_trials}")
    if opts.resource not in ("iters", "steps"):
        raise TuneError(f"--resource is iters or steps, got {opts.resource!r}")
    if opts.min_resource is not None and opts.min_resource < 1:
        raise TuneError(f"--min-resource must be at least 1, got {opts.min_resource}")
    opts.out_dir = os.path.abspath(opts.out_dir)  # trials run with their own directory as cwd
    study = open_study(opts)
    again = reclaim_interrupted(study)
    if log and again:
        log(f"[tune] trials {', '.join(map(str, again))} were interrupted; queued again")
    drv = _Driver(opts, study)
    if log:
        log(f"[tune] study '{opts.study_name}': {drv.done_before} trials done, "
            f"{drv.to_start} to run, {opts.parallel} at a time")
    threads = [threading.Thread(target=drv.worker, name=f"tune-{i}") for i in range(opts.parallel)]
    for t in threads:
        t.start()
    try:
        wait_threads(threads)
    except KeyboardInterrupt:
        # Stop the running trials (each worker records its own and queues it again), then let
        # the caller see the interrupt; running the same command continues the study.
        drv.interrupted = True
        drv.stop.set()
        wait_threads(threads)
        raise
    return study
