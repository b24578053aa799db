"""Meta-training curves from recarena-meta's ``--metrics`` files (docs/meta.md section 5).

    python -m recarena.meta_plots reptile.jsonl multitask.jsonl --out meta_training.png

draws one PNG with two panels, one line per file (named by the file's name without ``.jsonl``):

- validation against env steps of meta-training: each val point's score (solid; R@5w unless the
  run chose another) and its R@0 (dashed), so the curve that picked the kept θ can be read
  beside the others';
- the meta-train return against env steps (the ``train`` lines' ``meta_return``: the mean return
  of the inner rollouts' episodes, ES's mean member fitness), faint, with its running mean over
  a twentieth of the run's iterations drawn over it (one iteration's return is noisy).

A file holding several runs (``--metrics`` is appended: a run continued with ``--checkpoint-in``)
is drawn as one line: where a run's env steps start again, its steps are counted on from the last
step of the run before it. A line that is not a JSON object, or a file with neither train nor val
lines, is exit 2 naming the file (and line).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Dict, List, Sequence, Tuple

Points = List[Tuple[float, float]]


def _number(x) -> float:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else math.nan


def read_metrics(path: str) -> Dict[str, Points]:
    """{"score", "R@0", "meta_return"}: (env steps, value) points of one metrics file, the env
    steps of each later run counted on from the run before it."""
    curves: Dict[str, Points] = {"score": [], "R@0": [], "meta_return": []}
    offset = last = 0.0
    with open(path, "r", encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise ValueError(f"{path} line {number}: not JSON (a recarena-meta --metrics "
                                 "file has one JSON object per line)") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path} line {number}: not a JSON object")
            steps = _number(row.get("env_steps"))
            if not math.isfinite(steps):
                continue
            if steps < last:  # a later run appended to the file: its steps start again
                offset += last
            last = steps
            keys = {"val": ("score", "R@0"), "train": ("meta_return",)}.get(row.get("kind"), ())
            for key in keys:
                curves[key].append((offset + steps, _number(row.get(key))))
    if not curves["score"] and not curves["meta_return"]:
        raise ValueError(f"{path}: no train or val lines (not a recarena-meta --metrics file?)")
    return curves


def running_mean(values: Sequence[float], window: int) -> List[float]:
    """The mean of each value and the window - 1 before it (fewer at the start; NaNs skipped)."""
    out = []
    for i in range(len(values)):
        seen = [v for v in values[max(0, i - window + 1):i + 1] if math.isfinite(v)]
        out.append(sum(seen) / len(seen) if seen else math.nan)
    return out


def _labels(paths: Sequence[str]) -> List[str]:
    """Each file's name without .jsonl; with its directory where two names are the same."""
    stems = [os.path.basename(p).removesuffix(".jsonl") for p in paths]
    return [os.path.join(os.path.basename(os.path.dirname(os.path.abspath(p))), s)
            if stems.count(s) > 1 else s for p, s in zip(paths, stems)]


def plot_meta_training(paths: Sequence[str], out: str, title: str = "") -> str:
    """Draws the files' validation and meta-train return curves into the PNG ``out``."""
    runs = [read_metrics(p) for p in paths]  # every file read before anything is drawn
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (val_ax, train_ax) = plt.subplots(1, 2, figsize=(11.0, 3.8))
    for label, curves in zip(_labels(paths), runs):
        color = None
        for key, ax, style in (("score", val_ax, "-o"), ("R@0", val_ax, "--")):
            pts = curves[key]
            if pts:
                (line,) = ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=color,
                                  markersize=3, linewidth=1.2,
                                  label=label if key == "score" else None)
                color = line.get_color()
        pts = curves["meta_return"]
        if pts:
            steps, values = [p[0] for p in pts], [p[1] for p in pts]
            (line,) = train_ax.plot(steps, values, "-", color=color, linewidth=0.8, alpha=0.3)
            train_ax.plot(steps, running_mean(values, max(1, len(values) // 20)), "-",
                          color=line.get_color(), linewidth=1.5, label=label)
    val_ax.set_title("validation: score (solid, R@5w by default) and R@0 (dashed)", fontsize=9)
    val_ax.set_ylabel("val return")
    train_ax.set_title("meta-train return, and its running mean (ES: mean member fitness)",
                       fontsize=9)
    train_ax.set_ylabel("return")
    for ax in (val_ax, train_ax):
        ax.set_xlabel("env steps of meta-training")
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m recarena.meta_plots",
                                 description="Draw meta-training curves from recarena-meta "
                                             "--metrics files.")
    ap.add_argument("metrics", nargs="+", help="recarena-meta --metrics files (JSONL)")
    ap.add_argument("--out", default="meta_training.png",
                    help="the PNG to write (default: meta_training.png)")
    ap.add_argument("--title", default="", help="a title above both panels")
    args = ap.parse_args(argv)
    try:
        print(plot_meta_training(args.metrics, args.out, args.title))
    except (OSError, ValueError) as e:
        print(f"recarena.meta_plots: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
