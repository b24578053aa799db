"""Paired comparisons between any two arms of a recarena-ab report (docs/agents.md section 2.5).

    python -m recarena.compare report.json reptile scratch --against multitask --at R@5,R@5w,auc

recarena-ab tests every arm against one control. This reads the report's per-task rows and tests
each named arm against ``--against`` the same way (docs/agents.md 2.3): per task
``d = value(arm) - value(against)``, the mean of d, its percentile bootstrap CI (``--bootstrap``
resamples of the tasks, quantiles by linear interpolation) and the two-sided
``p = (1 + #{b : |mean(d*_b) - mean(d)| >= |mean(d)|}) / (B + 1)``. A measure is ``R@K`` (a K of
the report's curve), a window (``R@5w``, ``auc``, ...) or a metric (``return``, ``ctr``, ...).
The resamples come from ``--seed``, not from recarena-ab's generator, so against the report's own
control the mean difference is the report's and the interval agrees within the bootstrap's noise.
Needs the report's ``per_task`` rows (each task's users pooled), which recarena-ab writes
whatever its ``--unit`` (schema recarena-ab/2).

``--pool R2.json --pool R3.json``: reports of the same arms on the same tasks from other runs (e.g.
other training seeds of the meta-inits); per task d is then the mean over all the reports of the
arm's difference, and the bootstrap resamples tasks with the runs held fixed, so the interval does
not include the run-to-run variance (docs/meta.md 6.14).

``--arm-from R2.json:ARM=NAME``: arm ARM of another run's report, compared here as NAME (e.g. a
meta-init trained in an earlier run). Its rows pair with this report's only on common random
numbers, so the two runs must have the same settings (env, tasks, seed, users, episodes, unit,
sim config, curve) and at least one arm of the same name with the same per-task rows (an arm both
runs played as the same spec, such as random or a scratch arm); the arms that matched are printed.

``--minus R@0``: each arm's value of every measure is taken minus its own R@0 on the same task
before pairing, so ``reptile --at R@5 --minus R@0`` tests the arm's climb from R@0 to R@5 (a dip
when negative), and ``reptile --against oracle --at R@5 --minus R@0`` its climb less the oracle's
between the same episodes. Without ``--against`` the climb is tested against 0.

``--at curve`` reads every R@K of the report's curve; ``--plot FILE.png`` also draws each arm's
differences against the measures in ``--at``'s order, with their intervals as a band: with
``--at curve``, where along the curve one arm pulls ahead of or falls behind another.
"""
from __future__ import annotations

import argparse
import math
import sys
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from recarena.plots import load_report


def _per_task(report: Dict[str, Any], arm: str, measure: str) -> Dict[int, float]:
    """{task id: the arm's value of the measure on that task}; ValueError naming what is missing."""
    arms = {a["name"]: a for a in report["arms"]}
    if arm not in arms:
        raise ValueError(f"no arm '{arm}' in the report (arms: {', '.join(arms)})")
    rows = arms[arm].get("per_task")
    if not rows:
        raise ValueError(f"arm '{arm}' has no per_task rows (a report older than "
                         "schema recarena-ab/2: run recarena-ab again)")
    windows = [w["name"] for w in report.get("windows", [])]
    if measure.startswith("R@") and measure[2:].isdigit():
        k = int(measure[2:])
        if k not in report.get("curve_k", []):
            raise ValueError(f"{measure}: K={k} is not on the report's curve ({report.get('curve_k')})")
        key, index = "curve", report["curve_k"].index(k)
    elif measure in windows:
        key, index = "windows", windows.index(measure)
    elif measure in rows[0] and measure not in ("task", "curve", "windows"):
        key, index = measure, None
    else:
        known = [f"R@{k}" for k in report.get("curve_k", [])] + windows
        raise ValueError(f"unknown measure '{measure}' (R@K of {known}, a window or a metric)")
    values = {}
    for row in rows:
        try:
            v = row[key] if index is None else row[key][index]
            values[int(row["task"])] = float("nan") if v is None else float(v)
        except (KeyError, IndexError, TypeError, ValueError):
            raise ValueError(f"arm '{arm}': a per_task row has no numeric {measure} value (task "
                             f"{row.get('task') if isinstance(row, dict) else row!r}); the "
                             "report is truncated or hand-edited") from None
    return values


def paired(a: Sequence[float], b: Sequence[float], bootstrap: int = 2000, level: float = 0.95,
           seed: int = 1) -> Dict[str, float]:
    """Mean of a - b with its percentile bootstrap CI and two-sided p (docs/agents.md 2.3)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.size < 2 or not np.all(np.isfinite(d)):
        return {"diff": float(np.mean(d)) if d.size else math.nan, "lo": math.nan, "hi": math.nan,
                "p": math.nan, "n": int(d.size)}
    rng = np.random.default_rng(seed)
    # In chunks of resamples: the same draws in the same order as one (bootstrap, n) array, but
    # memory stays ~8 MB whatever --bootstrap is (10**7 over 500 tasks asked for 40 GB at once)
    chunk = max(1, (1 << 20) // d.size)
    means = np.concatenate([d[rng.integers(0, d.size, size=(min(chunk, bootstrap - i), d.size))]
                            .mean(axis=1) for i in range(0, bootstrap, chunk)])
    dbar = float(d.mean())
    p = (1.0 + np.sum(np.abs(means - dbar) >= abs(dbar))) / (bootstrap + 1.0)
    return {"diff": dbar, "lo": float(np.quantile(means, (1 - level) / 2)),
            "hi": float(np.quantile(means, (1 + level) / 2)), "p": float(p), "n": int(d.size)}


def _pooled(reports: Sequence[Dict[str, Any]], arm: str, measure: str) -> Dict[int, float]:
    """{task id: the arm's value of the measure, the mean over the reports}; they must share tasks."""
    per = [_per_task(r, arm, measure) for r in reports]
    if any(set(p) != set(per[0]) for p in per):
        raise ValueError(f"arm '{arm}' was not played on the same tasks in every pooled report")
    return {t: float(np.mean([p[t] for p in per])) for t in per[0]}


# what makes two recarena-ab runs play the same users on the same tasks
_RUN_KEYS = ("env", "task_ids", "seed", "num_envs", "episodes", "unit", "config", "curve_k")


def add_arm(report: Dict[str, Any], other: Dict[str, Any], arm: str, name: str):
    """``report`` with arm ``arm`` of ``other`` added as ``name``, and the names of the arms whose
    per-task rows are the same in both (at least one, or the runs are not on common random numbers:
    ValueError)."""
    differ = [k for k in _RUN_KEYS if report.get(k) != other.get(k)]
    if differ:
        raise ValueError(f"--arm-from: the two runs differ in {', '.join(differ)}")
    mine = {a["name"]: a for a in report["arms"]}
    theirs = {a["name"]: a for a in other["arms"]}
    if arm not in theirs:
        raise ValueError(f"--arm-from: no arm '{arm}' in that report (it has {', '.join(theirs)})")
    if name in mine:
        raise ValueError(f"--arm-from: this report already has an arm '{name}'; name it ARM=NAME")
    same = [n for n in mine if n in theirs and mine[n].get("per_task") == theirs[n].get("per_task")]
    if not same:
        raise ValueError("--arm-from: no arm has the same per-task rows in both reports, so the "
                         "two runs are not on common random numbers")
    return {**report, "arms": [*report["arms"], {**theirs[arm], "name": name}]}, same


def _climb(reports: Sequence[Dict[str, Any]], arm: str, measure: str,
           minus: Optional[str]) -> Dict[int, float]:
    """The arm's pooled measure per task, less its own ``minus`` measure on that task if given."""
    values = _pooled(reports, arm, measure)
    if minus is None:
        return values
    start = _pooled(reports, arm, minus)
    return {t: v - start[t] for t, v in values.items()}


def compare(report: Dict[str, Any], arms: List[str], against: Optional[str], measures: List[str],
            bootstrap: int = 2000, seed: int = 1,
            pool: Sequence[Dict[str, Any]] = (), minus: Optional[str] = None) -> List[Dict[str, Any]]:
    """One row per (arm, measure): the paired difference from ``against`` over the common tasks;
    with ``pool``, per task the mean of the difference over ``report`` and the pooled reports;
    with ``minus``, each arm's measure less its own ``minus`` measure per task (``against`` None:
    that climb against 0)."""
    if against is None and minus is None:
        raise ValueError("name an arm to compare against (--against), or a measure to subtract (--minus)")
    reports = [report, *pool]
    out = []
    for measure in measures:
        against_values = None if against is None else _climb(reports, against, measure, minus)
        for arm in arms:
            values = _climb(reports, arm, measure, minus)
            base = dict.fromkeys(values, 0.0) if against_values is None else against_values
            if set(values) != set(base):
                raise ValueError(f"arms '{arm}' and '{against}' were not played on the same tasks")
            tasks = sorted(base)
            res = paired([values[t] for t in tasks], [base[t] for t in tasks], bootstrap, 0.95, seed)
            out.append({"arm": arm, "against": against, "measure": measure, "minus": minus,
                        "runs": len(reports), **res})
    return out


def measures_of(at: str, report: Dict[str, Any]) -> List[str]:
    """``--at``'s comma-separated measures, ``curve`` standing for every R@K of the report's curve."""
    out = []
    for m in (m for m in at.split(",") if m):
        out += [f"R@{k}" for k in report.get("curve_k", [])] if m == "curve" else [m]
    if not out:  # else: an empty table, exit 0
        raise ValueError(f"--at {at!r} names no measure (R@K, curve, a window or a metric)")
    return out


def plot_differences(rows: List[Dict[str, Any]], title: str, path: str) -> str:
    """Each arm's differences (``compare``'s rows) against the measures in their order, with the
    95% CIs as a band and the zero line; writes the PNG at ``path`` and returns it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measures = list(dict.fromkeys(r["measure"] for r in rows))
    # R@K alone: at K on the axis, so that the episodes between the points keep their spacing
    on_k = all(m.startswith("R@") and m[2:].isdigit() for m in measures)
    xs = [int(m[2:]) for m in measures] if on_k else list(range(len(measures)))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.35 * len(measures) + 3), 3.6))
    for arm in dict.fromkeys(r["arm"] for r in rows):
        by = {r["measure"]: r for r in rows if r["arm"] == arm}
        (line,) = ax.plot(xs, [by[m]["diff"] for m in measures], marker="o", label=arm)
        ax.fill_between(xs, [by[m]["lo"] for m in measures], [by[m]["hi"] for m in measures],
                        alpha=0.2, color=line.get_color())
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(xs)
    if on_k:
        ax.set_xticklabels([str(x) for x in xs], fontsize=8)
        ax.set_xlabel("K (R@K: return of episode K + 1 after K episodes on the task)")
    else:
        ax.set_xticklabels(measures, rotation=45 if len(measures) > 8 else 0, fontsize=8)
    ax.set_ylabel("paired difference (95% CI)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m recarena.compare",
                                 description="Paired differences between arms of a recarena-ab report.")
    ap.add_argument("report", help="recarena-ab --json output (its per_task rows)")
    ap.add_argument("arms", nargs="+", help="arms to compare with --against")
    ap.add_argument("--against", help="the arm every difference is taken from (optional with --minus)")
    ap.add_argument("--at", default="R@5",
                    help="comma-separated measures: R@K, curve (every R@K), windows, metrics (default R@5)")
    ap.add_argument("--bootstrap", type=int, default=2000, help="resamples (2000)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the resamples (1)")
    ap.add_argument("--pool", action="append", default=[], metavar="REPORT",
                    help="another run's report on the same tasks (repeatable): per task the mean "
                         "difference over all the reports")
    ap.add_argument("--arm-from", action="append", default=[], metavar="REPORT:ARM[=NAME]",
                    help="an arm of another run on common random numbers, named NAME here "
                         "(repeatable)")
    ap.add_argument("--minus", metavar="MEASURE",
                    help="take each arm's value less its own MEASURE on the same task (e.g. R@0: "
                         "the climb from the first episode)")
    ap.add_argument("--plot", metavar="FILE.png",
                    help="also draw each arm's differences against the measures, with their CIs")
    args = ap.parse_args(argv)
    try:
        if args.bootstrap < 1:
            raise ValueError("--bootstrap must be at least 1")
        report = load_report(args.report)
        for spec in args.arm_from:
            path, sep, arm = spec.rpartition(":")
            arm, _, name = arm.partition("=")
            if not sep or not path or not arm:
                raise ValueError(f"--arm-from '{spec}': expected REPORT:ARM or REPORT:ARM=NAME")
            report, same = add_arm(report, load_report(path), arm, name or arm)
            print(f"{name or arm}: arm '{arm}' of {path} (common random numbers: the rows of "
                  f"{', '.join(same)} are the same in both runs)")
        rows = compare(report, args.arms, args.against, measures_of(args.at, report),
                       args.bootstrap, args.seed, [load_report(p) for p in args.pool], args.minus)
        if args.plot:
            what = f"less {args.minus}, " if args.minus else ""
            plot_differences(rows, f"{report.get('env', '')}: {what}"
                             f"against {args.against or '0'}", args.plot)
    except (OSError, ValueError) as e:
        print(f"recarena.compare: {e}", file=sys.stderr)
        return 2
    except (KeyError, TypeError, AttributeError) as e:  # a field deeper than load_report checks
        print(f"recarena.compare: malformed recarena-ab report ({type(e).__name__}: {e})",
              file=sys.stderr)
        return 2
    if args.pool:
        print(f"per task the mean over {1 + len(args.pool)} reports (runs held fixed)")
    if args.minus:
        print(f"each measure less the same arm's {args.minus} on the same task")
    label = f"diff vs {args.against}" if args.against else "diff vs 0"
    print(f"{'arm':<16} {'measure':<8} {label:>24} {'95% CI':>22} {'p':>7} {'tasks':>6}")
    for r in rows:
        measure = f"{r['measure']}-{r['minus']}" if r["minus"] else r["measure"]
        print(f"{r['arm']:<16} {measure:<8} {r['diff']:>+24.4g} "
              f"{'[%+.4g, %+.4g]' % (r['lo'], r['hi']):>22} {r['p']:>7.4f} {r['n']:>6}")
    if args.plot:
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
