"""Plots of a recarena-ab report (docs/agents.md section 2.5).

    python -m recarena.plots report.json --out DIR

writes, with matplotlib's Agg backend (no display needed):

- ``DIR/<metric>.png`` for every metric in the report: one bar per arm at the mean, with the
  95% bootstrap confidence interval as an error bar; arms whose paired test against the
  control has p < 0.05 are marked with ``*``.
- ``DIR/learning_curves.png``: R@K (return of episode K + 1 after K episodes of learning on a
  task) per arm, with the CI as a band; R@K windows (schema ``recarena-ab/2``) as horizontal
  segments over the K they average.
- ``DIR/windows.png`` (schema ``recarena-ab/2``): one group per window (``R@5w`` = mean of
  R@3..R@7, ..., ``auc`` = the area under R@K per episode), one bar per arm with its CI.

Only matplotlib and the standard library are needed; the report is recarena-ab's ``--json``
output (schema ``recarena-ab/1`` or ``/2``).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any, Dict, List


def _finite(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else float("nan")


def load_report(path: str) -> Dict[str, Any]:
    """Reads a recarena-ab JSON report; ValueError when it is not one."""
    with open(path, "r", encoding="utf-8") as f:
        try:
            report = json.load(f)
        except ValueError as e:  # JSONDecodeError, UnicodeDecodeError: say which file
            raise ValueError(f"{path}: not a JSON file: {e}") from None
    if not isinstance(report, dict) or not str(report.get("schema", "")).startswith("recarena-ab/"):
        raise ValueError(f"{path}: not a recarena-ab report (no schema 'recarena-ab/...')")
    # The lists every reader walks: a truncated or hand-made report was a KeyError / TypeError
    # traceback from deep inside the plotting or the comparison.
    arms = report.get("arms")
    if not isinstance(arms, list) or not all(isinstance(a, dict) and isinstance(a.get("name"), str)
                                             for a in arms):
        raise ValueError(f"{path}: a recarena-ab report needs 'arms', a list of maps with a 'name'")
    for key, fields in (("metrics", ("name",)), ("windows", ("name", "from", "to"))):
        items = report.get(key, [])
        if not isinstance(items, list) or not all(isinstance(x, dict) and all(f in x for f in fields)
                                                  for x in items):
            raise ValueError(f"{path}: '{key}' must be a list of maps with "
                             f"{', '.join(repr(f) for f in fields)}")
    curve_k = report.get("curve_k", [])
    if not isinstance(curve_k, list) or not all(isinstance(k, int) for k in curve_k):
        raise ValueError(f"{path}: 'curve_k' must be a list of integers")
    return report


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def plot_metric(report: Dict[str, Any], metric: Dict[str, str], out_dir: str) -> str:
    """Bar chart of one metric across arms with CIs; returns the PNG path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = report["arms"]
    key = metric["name"]
    names = [a["name"] for a in arms]
    means, err_lo, err_hi, marks = [], [], [], []
    for a in arms:
        m = (a.get("metrics") or {}).get(key) or {}  # an arm without it: no bar, not a crash
        mean, lo, hi = _finite(m.get("mean")), _finite(m.get("lo")), _finite(m.get("hi"))
        means.append(mean)
        err_lo.append(max(mean - lo, 0.0) if math.isfinite(lo) else 0.0)
        err_hi.append(max(hi - mean, 0.0) if math.isfinite(hi) else 0.0)
        vs = m.get("vs_control")
        marks.append("*" if vs and _finite(vs.get("p")) < 0.05 else "")
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(arms) + 2), 3.6))
    xs = list(range(len(arms)))
    ax.bar(xs, means, yerr=[err_lo, err_hi], capsize=4, color="#4C72B0")
    for x, mean, hi, mark in zip(xs, means, err_hi, marks):
        if mark and math.isfinite(mean):
            ax.annotate(mark, (x, mean + hi), ha="center", va="bottom")
    ax.set_xticks(xs)
    ax.set_xticklabels(names, rotation=20, ha="right")
    ax.set_ylabel(metric.get("label", key))
    ax.set_title(f"{report.get('env', '')}: {metric.get('label', key)} "
                 f"(95% CI; * p<0.05 vs {report.get('control', 'control')})", fontsize=9)
    fig.tight_layout()
    path = os.path.join(out_dir, _safe_name(key) + ".png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_curves(report: Dict[str, Any], out_dir: str) -> str:
    """R@K learning curves per arm with CI bands; returns the PNG path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    for a in report["arms"]:
        pts = [p for p in a.get("curve") or [] if isinstance(p, dict) and "k" in p]
        ks = [p["k"] for p in pts]
        mean = [_finite(p.get("mean")) for p in pts]
        lo = [_finite(p.get("lo")) for p in pts]
        hi = [_finite(p.get("hi")) for p in pts]
        if not ks:
            continue
        (line,) = ax.plot(ks, mean, marker="o", label=a["name"])
        ax.fill_between(ks, lo, hi, alpha=0.15, color=line.get_color())
        for w in a.get("windows") or []:
            if w.get("name") == "auc" or "from" not in w or "to" not in w:
                continue
            ax.hlines(_finite(w.get("mean")), w["from"], w["to"], colors=line.get_color(),
                      linestyles="dashed", linewidth=2.0, alpha=0.7)
    ax.set_xlabel("K (episodes of learning on the task)")
    ax.set_ylabel("R@K (return of episode K + 1)")
    ax.set_title(f"{report.get('env', '')}: learning curves (95% CI)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out_dir, "learning_curves.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_windows(report: Dict[str, Any], out_dir: str) -> str:
    """Grouped bars: per R@K window (and the AUC) one bar per arm with its CI; returns the path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    windows = report["windows"]
    arms = report["arms"]
    width = 0.8 / max(1, len(arms))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(windows) + 2), 3.6))
    for i, a in enumerate(arms):
        by_name = {w.get("name"): w for w in a.get("windows") or []}
        xs, means, err_lo, err_hi = [], [], [], []
        for j, win in enumerate(windows):
            w = by_name.get(win["name"], {})
            mean, lo, hi = _finite(w.get("mean")), _finite(w.get("lo")), _finite(w.get("hi"))
            xs.append(j + (i - (len(arms) - 1) / 2) * width)
            means.append(mean)
            err_lo.append(max(mean - lo, 0.0) if math.isfinite(lo) else 0.0)
            err_hi.append(max(hi - mean, 0.0) if math.isfinite(hi) else 0.0)
        ax.bar(xs, means, width=width, yerr=[err_lo, err_hi], capsize=3, label=a["name"])
    ax.set_xticks(list(range(len(windows))))
    ax.set_xticklabels([f"{w['name']} ({w['from']}-{w['to']})" for w in windows])
    ax.set_ylabel("mean return of the episodes in the window")
    ax.set_title(f"{report.get('env', '')}: R@K windows and area under R@K (95% CI)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out_dir, "windows.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_report(report: Dict[str, Any], out_dir: str) -> List[str]:
    """Draws every metric, the learning curves and the R@K windows into out_dir (created);
    returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = [plot_metric(report, m, out_dir) for m in report.get("metrics", [])]
    if report.get("curve_k"):
        paths.append(plot_curves(report, out_dir))
    if report.get("windows"):
        paths.append(plot_windows(report, out_dir))
    return paths


def main(argv: List[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m recarena.plots",
                                 description="Draw PNGs from a recarena-ab JSON report.")
    ap.add_argument("report", help="recarena-ab --json output")
    ap.add_argument("--out", default="plots", help="output directory (default: plots)")
    args = ap.parse_args(argv)
    try:
        report = load_report(args.report)
        paths = plot_report(report, args.out)  # OSError too: an --out that is a file
    except (OSError, ValueError) as e:
        print(f"recarena.plots: {e}", file=sys.stderr)
        return 2
    except (KeyError, TypeError, AttributeError) as e:  # a field deeper than load_report checks
        print(f"recarena.plots: {args.report}: malformed recarena-ab report "
              f"({type(e).__name__}: {e})", file=sys.stderr)
        return 2
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
