"""recarena-tune's command line (docs/tune.md section 1): search | pbt | report | compare | eval.

Exit status: 0 done; 2 bad command line, search space or study settings (the message says which);
1 when no recarena-meta binary could be found or the evaluation's run failed. Failed trials never
change the exit status: they are in the table and the JSON with their reason.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import threading
from typing import List, Optional, Tuple

from .runner import MetaNotFoundError, find_meta_binary, run_meta
from .search import Budget, SearchOptions, TuneError, run_search, storage_url
from .space import SpaceError, load_space
from . import report


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--space", required=True, help="search space file (.toml or .json)")
    p.add_argument("--out", default="tune-out", help="directory for trials, plots, JSON, best.cfg "
                   "(default tune-out)")
    p.add_argument("--meta-bin", help="recarena-meta binary (else $RECARENA_META, else "
                   "build/agents/recarena-meta)")
    p.add_argument("--metric", default="score", help="val-line key to optimise (default score)")
    p.add_argument("--minimize", action="store_true", help="minimise the metric instead")
    p.add_argument("--seed", type=int, default=0, help="sampler seed; also every trial's --seed "
                   "unless the space fixes seed (default 0)")
    p.add_argument("--parallel", type=int, default=1, help="trial processes at a time (default 1)")
    p.add_argument("--budget", help="total env steps (2e6, 2e6steps) or trial time (90s, 30m, 2h); "
                   "default: none")
    p.add_argument("--address", help="a running recarena-server shared by all trials (default: "
                   "each trial its own in-process server)")


def _env_steps(text: str) -> int:
    """A positive whole number of env steps, 2e5 allowed (argparse reports the error)."""
    try:
        x = float(text)
    except ValueError:
        x = float("nan")
    if not math.isfinite(x) or x < 1 or x != int(x):
        raise argparse.ArgumentTypeError(f"expected a whole number of env steps >= 1 (200000 or "
                                         f"2e5), got {text!r}")
    return int(x)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="recarena-tune", description="Hyperparameter search for "
                                 "recarena-meta on Optuna: ASHA / Hyperband with TPE or random "
                                 "sampling, or population-based training (docs/tune.md)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("search", help="an Optuna study (resumable: run the same command again)")
    _common(s)
    s.add_argument("--study", default="recarena-tune", help="study name (default recarena-tune)")
    s.add_argument("--storage", help="Optuna storage URL (default sqlite:///OUT/study.db; "
                   "memory: keep nothing)")
    s.add_argument("--trials", type=int, default=20, help="finished trials to reach (default 20)")
    s.add_argument("--sampler", choices=("tpe", "random"), default="tpe",
                   help="Optuna sampler (default tpe)")
    s.add_argument("--startup-trials", type=int, default=10,
                   help="random trials before TPE models (default 10)")
    s.add_argument("--pruner", choices=("asha", "hyperband", "median", "none"), default="asha",
                   help="early stopping of trials (default asha)")
    s.add_argument("--eta", type=int, default=3, help="reduction factor (default 3)")
    s.add_argument("--min-resource", type=int,
                   help="first rung (default: val-every for --resource iters, else Optuna's auto; "
                   "hyperband: 1)")
    s.add_argument("--resource", choices=("iters", "steps"), default="iters",
                   help="what a rung counts: meta-iterations or env steps (default iters)")
    p = sub.add_parser("pbt", help="population-based training (resumable from OUT/pbt_state.json)")
    _common(p)
    p.add_argument("--population", type=int, default=8, help="members (default 8)")
    p.add_argument("--ready", type=int, default=10,
                   help="meta-iterations (or env steps, --ready-unit steps) between exploits (default 10)")
    p.add_argument("--ready-unit", choices=("iters", "steps"), default="iters",
                   help="what --ready counts (default iters; steps: every member trains the same "
                        "env steps per generation)")
    p.add_argument("--continue-from", choices=("last", "best"), default="last",
                   help="a member's score and next start: its run's last val point (default) or "
                        "its best one")
    p.add_argument("--generations", type=int, default=10,
                   help="generations to reach (default 10)")
    p.add_argument("--quantile", type=float, default=0.25,
                   help="fraction replaced each generation (default 0.25)")
    p.add_argument("--resample-p", type=float, default=0.25,
                   help="probability that explore redraws a key from the space (default 0.25)")
    p.add_argument("--lineage-steps", type=_env_steps, help="stop every member's lineage at this "
                   "many env steps (as one search trial's budget-steps); default: no cap")
    r = sub.add_parser("report", help="rewrite the table, JSON, plots and best.cfg of a study")
    r.add_argument("--space", required=True, help="the study's search space file")
    r.add_argument("--out", default="tune-out", help="the study's --out (default tune-out)")
    r.add_argument("--study", default="recarena-tune", help="study name (default recarena-tune)")
    r.add_argument("--storage", help="Optuna storage URL (default sqlite:///OUT/study.db)")
    r.add_argument("--metric", default="score", help="val-line key (default score)")
    c = sub.add_parser("compare", help="studies run under one budget: best val and the env "
                       "steps each needed to reach the first one's best")
    c.add_argument("outs", nargs="+", metavar="NAME=DIR",
                   help="a name and the --out of a search or pbt run (its summary.json); "
                   "NAME=DIR1,DIR2,... repeats the comparison over seeds and adds the medians")
    c.add_argument("--labels", help="names of the seeds, comma-separated (default 1,2,...)")
    c.add_argument("--rungs", help="over seeds: also how well the first study's val metric at "
                   "these steps (comma-separated, e.g. ASHA's rungs 3,9) ranks its trials' values")
    e = sub.add_parser("eval", help="train the best config once and evaluate it on test tasks")
    e.add_argument("--config", required=True, help="a best.cfg written by search or pbt")
    e.add_argument("--test-tasks", default="test:0-31", help="test task set (default test:0-31)")
    e.add_argument("--out", default="tune-eval", help="directory for the checkpoint, eval.json and "
                   "the report (default tune-eval)")
    e.add_argument("--meta-bin", help="recarena-meta binary (else $RECARENA_META, else "
                   "build/agents/recarena-meta)")
    e.add_argument("--metric", default="score", help="val-line key (default score)")
    e.add_argument("--address", help="a running recarena-server for the run (and recarena-ab)")
    e.add_argument("--ab-bin", help="recarena-ab binary (default: the recarena-ab beside the "
                   "recarena-meta binary)")
    e.add_argument("--arms", help="with this, the checkpoint trained with val-split selection is "
                   "compared on the test tasks by recarena-ab --arms ARMS, where {checkpoint} in "
                   "ARMS is replaced by its path (e.g. random,target:checkpoint={checkpoint}:"
                   "name=tuned); recarena-ab --check refuses bad arms before the training")
    e.add_argument("--ab-args", default="", help="more recarena-ab flags, one shell-quoted "
                   "string (e.g. \"--num-envs 8 --episodes 10\")")
    return ap


def _read_cfg(path: str) -> List[Tuple[str, str]]:
    """The `key = value` lines of a recarena-meta --config file, in order (sim-config repeats)."""
    out = []
    try:
        with open(path, "r", encoding="utf-8") as f:
            for line in f:
                if "=" in line:
                    k, _, v = line.partition("=")
                    out.append((k.strip(), v.strip()))
    except (OSError, UnicodeDecodeError) as e:
        raise TuneError(f"eval: --config {path}: {e.strerror if isinstance(e, OSError) else e}") \
            from None
    return out


CHECKPOINT = "{checkpoint}"
TRAINED_SETTING = "checkpoint=" + CHECKPOINT


def _scratch_arm(arm: str) -> str:
    """The arm recarena-ab --check builds, before the training, for arm of --arms.

    An arm without {checkpoint} is checked as it will run. The trained arm,
    target:checkpoint={checkpoint}[:key=value...], has no checkpoint yet, so it is checked as a
    fresh target with its other settings: every key is known and every value parses and is in
    range, and name= stays (--control may name it). What only the real checkpoint can show is
    left to the run after the training: its file, its architecture (which replaces hidden, layers
    and affinity) and the adaptation settings it carries (recarena-meta writes its lr, temp, ...),
    which the arm's own settings override. The one refusal that depends on those, greedy=true
    with a positive lr, cannot be judged before the checkpoint's lr exists: without lr= the
    scratch sets lr=0 so that the fresh network's default lr refuses nothing the real one might
    allow (the run judges it). {checkpoint} anywhere else (another class, another setting) is
    not a target checkpoint's place: TuneError."""
    if CHECKPOINT not in arm:
        return arm
    cls, *settings = [part for part in arm.split(":") if part]  # recarena-ab skips empty parts
    others = [s for s in settings if s != TRAINED_SETTING]
    if cls != "target" or len(others) != len(settings) - 1 or any(CHECKPOINT in s for s in others):
        raise TuneError(f"eval --arms: {CHECKPOINT} is the trained meta-init, a target checkpoint: "
                        f"use it as target:{TRAINED_SETTING}[:key=value...], got {arm!r}")
    keys = {s.partition("=")[0] for s in others}
    if "greedy" in keys and "lr" not in keys:
        others.append("lr=0")
    return ":".join(["target"] + others)


def _ab_argv(ab: str, a: argparse.Namespace, arms: str, env: str, sim_config: List[str]) -> List[str]:
    """recarena-ab's command line for the test run (--check adds one flag to the same line)."""
    argv = [ab, "--env", env, *sim_config, "--task-ids", a.test_tasks, "--arms", arms,
            "--json", os.path.abspath(os.path.join(a.out, "test_report.json"))]
    if a.address:
        argv += ["--address", a.address]
    try:
        return argv + shlex.split(a.ab_args)
    except ValueError as e:  # an unclosed quote: said now, not after the training
        raise TuneError(f"eval --ab-args {a.ab_args!r}: {e}") from None


def _check_arms(ab: str, a: argparse.Namespace, env: str, sim_config: List[str]) -> None:
    """Runs recarena-ab --check on the test run's own command line, the trained arm as its scratch
    (_scratch_arm): every arm is built for every test task, nothing is played. TuneError with
    recarena-ab's message when it refuses, so a bad arm setting (linucb:alpha=abc) or flag of
    --ab-args fails in seconds instead of after the training."""
    scratch = ",".join(_scratch_arm(arm) for arm in a.arms.split(","))
    cmd = _ab_argv(ab, a, scratch, env, sim_config) + ["--check"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise TuneError(f"eval --arms: cannot run {ab} --check: {e}") from None
    if done.returncode != 0:
        why = done.stderr.strip()[-2000:] or f"exit {done.returncode}, no message"
        note = (f" (checked as --arms {scratch!r}: the trained arm's checkpoint is made by the "
                f"training)" if CHECKPOINT in a.arms else "")
        raise TuneError(f"eval --arms: recarena-ab refused the test run before any training"
                        f"{note}:\n{why}")
    _log("[tune] " + (done.stdout.strip() or "recarena-ab --check passed"))


def _out_dir(path: str) -> None:
    """Creates --out (and its parents), or TuneError naming it: a file of that name or a place
    that cannot be written was a FileExistsError / PermissionError traceback."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise TuneError(f"--out {path}: cannot make the output directory: "
                        f"{e.strerror or e}") from None


def _eval(a: argparse.Namespace) -> int:
    meta = find_meta_binary(a.meta_bin)
    cfg = _read_cfg(a.config)
    ab = a.ab_bin or os.path.join(os.path.dirname(meta), "recarena-ab")
    if a.arms and not os.access(ab, os.X_OK):  # found now, not after the training
        raise TuneError(f"eval --arms: no recarena-ab at {ab} (give --ab-bin)")
    _out_dir(a.out)
    env = next((v for k, v in reversed(cfg) if k == "env"), "ECommerce-v1")
    # the sims the checkpoint trained on are the ones it is tested on (e.g. hidden_tastes=1)
    sim_config = [arg for k, v in cfg if k == "sim-config" for arg in ("--config", v)]
    if a.arms:  # the test run's own command line, checked before the training it waits for
        _check_arms(ab, a, env, sim_config)
    flags = {"config": os.path.abspath(a.config),
             "checkpoint-out": os.path.abspath(os.path.join(a.out, "checkpoint.safetensors"))}
    if a.address:
        flags["address"] = a.address
    if not a.arms:
        # Observe the test tasks at every val point but select nothing on them: the figure is
        # the last val line, the meta-init the whole budget produced.
        flags["val-tasks"] = a.test_tasks
    res = run_meta(meta, flags, os.path.abspath(a.out), a.metric)
    if res.status != "ok":
        _log(f"[tune] evaluation run failed: {res.reason}\n{res.stderr_tail}")
        return 1
    result = {"config": a.config, "command": res.argv, "env_steps": res.env_steps}
    if not a.arms:
        last = res.vals()[-1]
        result.update({"mode": "meta-val-on-test", "test_tasks": a.test_tasks, "last_val": last})
        print(f"test {a.test_tasks} at iter {last.get('iter')}: "
              + ", ".join(f"{k} {v:.4g}" for k, v in last.items()
                          if isinstance(v, (int, float)) and k not in ("iter", "env_steps")))
    else:
        ck = flags["checkpoint-out"]
        argv = _ab_argv(ab, a, a.arms.replace(CHECKPOINT, ck), env, sim_config)
        _log("[tune] " + " ".join(shlex.quote(x) for x in argv))
        rc = subprocess.call(argv)
        if rc != 0:
            _log(f"[tune] recarena-ab exited with status {rc}")
            return 1
        result.update({"mode": "recarena-ab", "ab_command": argv,
                       "report": os.path.join(a.out, "test_report.json")})
    with open(os.path.join(a.out, "eval.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    return 0


def _load_summary(path: str) -> dict:
    path = os.path.join(path, "summary.json")
    try:
        with open(path, "r", encoding="utf-8") as f:
            s = json.load(f)
    except (OSError, ValueError) as e:
        raise TuneError(f"compare: cannot read {path}: {e}") from None
    if not isinstance(s, dict) or s.get("schema") != "recarena-tune/1":
        raise TuneError(f"compare: {path} is not a recarena-tune summary")
    # what report.compare reads; a hand-edited or truncated summary was a KeyError traceback
    curve = s.get("best_so_far")
    if (not isinstance(s.get("metric"), str) or not isinstance(s.get("mode"), str)
            or not isinstance(s.get("env_steps_total"), (int, float))
            or not isinstance(curve, list)
            or not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], (int, float))
                       and (p[1] is None or isinstance(p[1], (int, float))) for p in curve)):
        raise TuneError(f"compare: {path} lacks a field of a recarena-tune summary (metric, mode, "
                        "env_steps_total, best_so_far as [steps, value] pairs); rewrite it with "
                        "recarena-tune report")
    return s


def _compare(a: argparse.Namespace) -> int:
    # NAME=DIR compares single studies; NAME=DIR1,DIR2,... repeats the comparison over seeds
    # (the i-th directory of every name is one seed) and adds the medians (docs/tune.md 8.2).
    groups = []
    for item in a.outs:
        name, eq, dirs = item.partition("=")
        paths = dirs.split(",")
        if not eq or not name or not all(paths):
            raise TuneError(f"compare: expected NAME=DIR or NAME=DIR1,DIR2,..., got {item!r}")
        groups.append((name, [_load_summary(d) for d in paths]))
    try:
        rungs = [int(x) for x in a.rungs.split(",")] if a.rungs else None
    except ValueError:
        raise TuneError(f"compare: --rungs expects steps like 3,9, got {a.rungs!r}") from None
    counts = {len(sums) for _, sums in groups}
    if len(counts) != 1:
        raise TuneError("compare: every NAME needs the same number of directories (one per "
                        f"seed), got {', '.join(f'{n}: {len(s)}' for n, s in groups)}")
    if counts == {1}:
        print(report.compare([(name, sums[0]) for name, sums in groups]))
    else:
        labels = a.labels.split(",") if a.labels else [str(i + 1) for i in range(counts.pop())]
        if len(labels) != len(groups[0][1]):
            raise TuneError(f"compare: --labels has {len(labels)} names for "
                            f"{len(groups[0][1])} seeds")
        try:
            text = report.compare_seeds(groups, labels, rungs)
        except (KeyError, TypeError, ValueError) as e:  # --rungs reads each trial's fields too
            raise TuneError(f"compare --rungs: a summary's trials lack a field "
                            f"({type(e).__name__}: {e}); rewrite them with recarena-tune "
                            "report") from None
        print(text)
    return 0


def _sigterm(signum, frame):  # a polite kill stops trials cleanly, as Ctrl-C does
    raise KeyboardInterrupt


def main(argv: Optional[List[str]] = None) -> int:
    a = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _sigterm)
    try:
        if a.cmd == "eval":
            return _eval(a)
        if a.cmd == "compare":
            return _compare(a)
        space = load_space(a.space)
        if a.cmd in ("search", "pbt") and a.seed < 0:
            raise TuneError(f"--seed must be a non-negative integer, got {a.seed}")
        if a.cmd == "report":
            import optuna
            opts = SearchOptions(space=space, meta_bin="", out_dir=a.out, study_name=a.study,
                                 storage=a.storage, metric=a.metric)
            url = storage_url(opts)
            db = os.path.join(a.out, "study.db")
            if not a.storage and not os.path.isfile(db):  # opening would create an empty one
                raise TuneError(f"report: no {db} (run search with this --out, or give --storage)")
            try:
                study = optuna.load_study(study_name=a.study, storage=url)
            except KeyError:  # optuna's "Record does not exist."
                raise TuneError(f"report: no study '{a.study}' in {url} (--study, --out, "
                                "--storage name it)") from None
            except Exception as e:  # sqlalchemy's errors: a bad URL, an unreadable file
                raise TuneError(f"report: --storage {url}: cannot open the study: "
                                f"{type(e).__name__}: {e}") from None
            sig = study.user_attrs.get("signature", {})
            s = report.write_search_outputs(study, space, a.out, a.metric,
                                            sig.get("resource", "iters"), sig.get("eta", 3), None)
            print(report.format_table(s["trials"], space.names(), a.metric,
                                      s["direction"] == "maximize"))
            return 0
        meta = find_meta_binary(a.meta_bin)
        _out_dir(a.out)
        direction = "minimize" if a.minimize else "maximize"
        if a.cmd == "search":
            min_res = a.min_resource
            every = space.fixed.get("val-every")
            if min_res is None and a.resource == "iters" and isinstance(every, int):
                min_res = every
            opts = SearchOptions(space=space, meta_bin=meta, out_dir=a.out, study_name=a.study,
                                 storage=a.storage, trials=a.trials, parallel=a.parallel,
                                 sampler=a.sampler, pruner=a.pruner, eta=a.eta,
                                 min_resource=min_res, resource=a.resource, metric=a.metric,
                                 direction=direction, seed=a.seed,
                                 startup_trials=a.startup_trials, budget=Budget.parse(a.budget),
                                 address=a.address)
            study = run_search(opts, log=_log)
            s = report.write_search_outputs(study, space, a.out, a.metric, a.resource, a.eta,
                                            min_res)
            print(report.format_table(s["trials"], space.names(), a.metric,
                                      direction == "maximize"))
        else:
            from .pbt import PbtOptions, run_pbt
            opts_p = PbtOptions(space=space, meta_bin=meta, out_dir=a.out,
                                population=a.population, ready=a.ready, ready_unit=a.ready_unit,
                                continue_from=a.continue_from,
                                generations=a.generations, quantile=a.quantile,
                                resample_p=a.resample_p, metric=a.metric, direction=direction,
                                seed=a.seed, parallel=a.parallel, budget=Budget.parse(a.budget),
                                address=a.address, lineage_steps=a.lineage_steps)
            state = run_pbt(opts_p, log=_log)
            s = report.write_pbt_outputs(state, space, a.out, a.metric, direction == "maximize")
            if s["best"]:
                print(f"best member {s['best']['id']}: {a.metric} {s['best']['score']:.4g} "
                      f"{s['best']['params']}; {len(s['schedule'])} exploits recorded")
        if s.get("best_config"):
            print(f"best config: {s['best_config']}  (evaluate on test: recarena-tune eval "
                  f"--config {s['best_config']})")
        else:
            print("no trial completed: see the failures in " + os.path.join(a.out, "summary.json"))
        return 0
    except (SpaceError, TuneError) as e:
        _log(f"recarena-tune: {e}")
        return 2
    except MetaNotFoundError as e:
        _log(f"recarena-tune: {e}")
        return 1
    except KeyboardInterrupt:
        _log("recarena-tune: interrupted; running trials were stopped and will be rerun: run the "
             "same command to continue")
        return 130
