"""bench/expert_fraction.py: line 1's fraction of the expert's gain over random, a ratio of means
over the tasks with a bootstrap interval, from a synthetic recarena-ab report."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "bench" / "expert_fraction.py"


def _report(tmp_path: Path) -> Path:
    """16 tasks, curve K 0,1,5,20: random 10, the expert 10 + g_t (g_t from 2 to 32), the arm
    10 + 0.5 g_t at K 0 and 10 + g_t from K 1 on, a second arm at random's level."""
    gain = np.linspace(2.0, 32.0, 16)
    def arm(name, level):
        return {"name": name, "per_task": [{"task": 700 + t, "curve": [10 + f * gain[t] for f in level]}
                                           for t in range(16)]}
    report = {"schema": "recarena-ab/2", "curve_k": [0, 1, 5, 20], "arms": [
        arm("reptile", (0.5, 1, 1, 1)), arm("flat", (0, 0, 0, 0)), arm("random", (0, 0, 0, 0)),
        arm("expert:dir=/x", (1, 1, 1, 1))]}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report))
    return path


def _run(*args):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True)


def test_the_fraction_is_the_ratio_of_mean_gains(tmp_path):
    out = _run(_report(tmp_path), "reptile", "flat")
    assert out.returncode == 0, out.stderr
    lines = {l.split()[0]: l for l in out.stdout.splitlines()[1:]}
    # every task gains half the expert's at K 0: the ratio is 0.5 and so is every resample's
    assert "R@0 0.500 [0.50, 0.50]" in lines["reptile"] and "R@5 1.000 [1.00, 1.00]" in lines["reptile"]
    assert "R@20 0.000 [0.00, 0.00]" in lines["flat"]


def test_uneven_tasks_give_an_interval_around_the_ratio(tmp_path):
    sys.path.insert(0, str(REPO / "bench"))
    import expert_fraction
    report = json.loads(_report(tmp_path).read_text())
    rng = np.random.default_rng(3)
    for row in report["arms"][0]["per_task"]:
        row["curve"][2] += rng.normal(0, 4)
    (k, f, lo, hi), = [r for r in expert_fraction.fractions(report, "reptile") if r[0] == 5]
    assert lo < f < hi and hi - lo > 0.05


@pytest.mark.parametrize("args, message", [
    (["{r}", "nosuch"], "no arm 'nosuch'"),
    (["{dir}/missing.json", "reptile"], "missing.json"),
    (["{r}"], "usage"),
    (["{r}", "reptile", "--across-seeds"], "--across-seeds pools runs"),
])
def test_bad_arguments_exit_2_naming_them(tmp_path, args, message):
    r = _report(tmp_path)
    out = _run(*[a.format(r=r, dir=tmp_path) for a in args])
    assert out.returncode == 2 and message in out.stderr


def _split(tmp_path: Path, seed_b: int = 9, overlap: bool = False):
    """_report's 16 tasks as two runs of 8 (the second's expert from another directory)."""
    report = json.loads(_report(tmp_path).read_text())
    def part(tasks, expert_dir, seed):
        arms = [{**a, "name": a["name"].replace("/x", expert_dir),
                 "per_task": [r for r in a["per_task"] if r["task"] in tasks]} for a in report["arms"]]
        return {**report, "seed": seed, "arms": arms}
    second = range(707 if overlap else 708, 716)
    paths = []
    for name, r in (("a.json", part(range(700, 708), "/x", 9)), ("b.json", part(second, "/y", seed_b))):
        (tmp_path / name).write_text(json.dumps(r))
        paths.append(tmp_path / name)
    return paths


def test_tasks_from_pools_the_runs_tasks(tmp_path):
    whole = _run(_report(tmp_path), "reptile")
    a, b = _split(tmp_path)
    pooled = _run(a, "reptile", "--tasks-from", b)
    assert pooled.returncode == 0, pooled.stderr
    # the same 16 tasks, the same bootstrap resamples: the same figures to the last digit
    assert pooled.stdout == whole.stdout and "16 tasks" in pooled.stdout
    assert _run(a, "reptile").stdout != whole.stdout


@pytest.mark.parametrize("seed_b, overlap, message", [
    (10, False, "differ in seed"),
    (9, True, "task 707 is in more than one run"),
])
def test_tasks_from_refuses_runs_that_do_not_pool(tmp_path, seed_b, overlap, message):
    a, b = _split(tmp_path, seed_b, overlap)
    out = _run(a, "reptile", "--tasks-from", b)
    assert out.returncode == 2 and message in out.stderr


def test_across_seeds_pools_replications_from_other_seeds(tmp_path):
    whole = _run(_report(tmp_path), "reptile")
    a, b = _split(tmp_path, seed_b=10)
    pooled = _run(a, "reptile", "--tasks-from", b, "--across-seeds")
    assert pooled.returncode == 0, pooled.stderr
    assert pooled.stdout == whole.stdout
    # it lifts the seed check only: overlapping tasks are still refused
    a, b = _split(tmp_path, seed_b=10, overlap=True)
    out = _run(a, "reptile", "--tasks-from", b, "--across-seeds")
    assert out.returncode == 2 and "task 707 is in more than one run" in out.stderr
