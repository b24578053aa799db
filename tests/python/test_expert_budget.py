"""bench/expert_budget.py: line 1's denominator, the experts' budget where more training stops
gaining (the rule in its docstring), from synthetic recarena-ab reports; and bench/expert_fraction.py
with several experts in one report."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
BUDGET, FRACTION = REPO / "bench" / "expert_budget.py", REPO / "bench" / "expert_fraction.py"


def _report(tmp_path: Path, scale_4800: float, jitter: float = 0.0, curve_k=(0, 1, 5, 20)) -> Path:
    """16 tasks: random 10; experts at three budgets gaining g_t, 1.3 g_t and scale_4800 * 1.3 g_t
    (g_t from 2 to 32) at every K, the largest with a zero-mean jitter of that size per task."""
    gain = np.linspace(2.0, 32.0, 16)
    noise = np.random.default_rng(5).normal(0.0, jitter, 16)
    noise -= noise.mean()  # the ratio of means stays scale_4800 exactly; the interval widens
    def arm(name, per_task_gain):
        return {"name": name, "per_task": [{"task": 900 + t, "curve": [10 + per_task_gain[t]] * len(curve_k)}
                                           for t in range(16)]}
    report = {"schema": "recarena-ab/2", "curve_k": list(curve_k), "arms": [
        arm("random", 0 * gain), arm("expert300k", gain), arm("expert1200k", 1.3 * gain),
        arm("expert4800k", scale_4800 * 1.3 * gain + noise)]}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report))
    return path


def _run(tool, *args):
    return subprocess.run([sys.executable, str(tool), *map(str, args)], capture_output=True, text=True)


def test_the_denominator_is_the_first_budget_training_no_longer_raises(tmp_path):
    out = _run(BUDGET, _report(tmp_path, 1.0, jitter=6.0), "expert300k", "expert1200k", "expert4800k")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "expert1200k / expert300k: R@0 1.300 [1.300, 1.300]" in lines[1]
    # 4.8M gains as much as 1.2M on average, unevenly over tasks: an interval around 1
    r0 = lines[2].split("R@0 ")[1].split("]")[0]
    ratio, lo, hi = float(r0.split()[0]), float(r0.split("[")[1].split(",")[0]), float(r0.split(", ")[1])
    assert ratio == pytest.approx(1.0, abs=1e-3) and lo < 1.0 < hi
    assert lines[3].startswith("denominator: expert4800k (")


def test_experts_that_keep_gaining_are_named_an_upper_bound(tmp_path):
    out = _run(BUDGET, _report(tmp_path, 1.2), "expert300k", "expert1200k", "expert4800k")
    assert out.returncode == 0, out.stderr
    assert "expert4800k / expert1200k: R@0 1.200 [1.200, 1.200]" in out.stdout
    assert "denominator: expert4800k, not converged" in out.stdout


def test_a_stop_on_noise_before_a_later_gain_is_reported(tmp_path):
    # 1.2M over 300k does not gain here (read in the reverse order: 1.2M is 300k's 1/1.3)...
    out = _run(BUDGET, _report(tmp_path, 1.2), "expert1200k", "expert300k", "expert4800k")
    assert out.returncode == 0, out.stderr
    assert "denominator: expert300k (" in out.stdout
    assert "note: expert4800k still gains beyond it" in out.stdout


@pytest.mark.parametrize("args, message", [
    (["expert300k"], "at least two expert arms"),
    (["expert300k", "random"], "'random' is not an expert arm"),
    (["expert300k", "nosuch"], "'nosuch' is not an expert arm"),
])
def test_bad_arguments_exit_2_naming_them(tmp_path, args, message):
    out = _run(BUDGET, _report(tmp_path, 1.0), *args)
    assert out.returncode == 2 and message in out.stderr


def test_a_curve_without_r5_is_refused(tmp_path):
    out = _run(BUDGET, _report(tmp_path, 1.0, curve_k=(0, 1, 20)), "expert300k", "expert1200k")
    assert out.returncode == 2 and "lacks K 5" in out.stderr


def test_expert_fraction_divides_by_the_named_expert_of_several(tmp_path):
    report = _report(tmp_path, 1.2)
    out = _run(FRACTION, report, "expert1200k")
    assert out.returncode == 2 and "name the one to divide by with --expert" in out.stderr
    out = _run(FRACTION, report, "expert1200k", "--expert", "expert300k")
    assert out.returncode == 0 and "R@5 1.300 [1.30, 1.30]" in out.stdout
    out = _run(FRACTION, report, "expert1200k", "--expert", "expert300k", "--tasks-from", report)
    assert out.returncode == 2 and "--tasks-from pools runs with one each" in out.stderr
