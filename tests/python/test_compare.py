"""recarena.compare: paired differences between any two arms of a recarena-ab report, from its
per-task rows, computed as recarena-ab computes its differences from the control (docs/agents.md
2.3 and 2.5)."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from recarena import compare
from test_plots import _ab_binary, _check


def _report(shift=2.0):
    """Three arms on 40 tasks: b = a + shift + noise, c = a exactly; curve K 0,1,5; windows."""
    rng = np.random.default_rng(7)
    base = rng.normal(10.0, 3.0, size=40)
    noise = rng.normal(0.0, 1.0, size=40)
    values = {"a": base, "b": base + shift + noise, "c": base.copy()}
    arms = []
    for name, v in values.items():
        rows = [{"task": 100 + t, "return": float(v[t]), "curve": [float(v[t]) - 1, float(v[t]), 0.0],
                 "windows": [float(v[t]) * 2, float(v[t]) * 3]} for t in range(40)]
        arms.append({"name": name, "per_task": rows[::-1] if name == "b" else rows})
    return {"schema": "recarena-ab/2", "curve_k": [0, 1, 5], "arms": arms,
            "windows": [{"name": "R@5w", "from": 3, "to": 7}, {"name": "auc", "from": 0, "to": 20}]}


def test_the_difference_is_the_mean_over_tasks_matched_by_id():
    report = _report()
    rows = compare.compare(report, ["b", "c"], "a", ["R@1", "R@0", "R@5w", "return"])
    by = {(r["arm"], r["measure"]): r for r in rows}
    a = np.array([r["return"] for r in report["arms"][0]["per_task"]])
    b = np.array([r["return"] for r in report["arms"][1]["per_task"]])[::-1]   # listed in reverse
    for measure, scale in (("R@1", 1), ("R@0", 1), ("return", 1), ("R@5w", 2)):
        assert by[("b", measure)]["diff"] == pytest.approx(scale * np.mean(b - a), abs=1e-12)
    r = by[("b", "R@1")]
    assert r["lo"] < r["diff"] < r["hi"] and r["lo"] > 0 and r["p"] < 0.01 and r["n"] == 40
    # paired by task the differences' sd is the noise's (1): width about 2 * 1.96 / sqrt(40) = 0.62;
    # tasks paired wrongly would leave the tasks' own spread (sd 3) in it
    assert r["hi"] - r["lo"] < 1.0
    # identical per-task values: a zero difference, a point interval at 0 and p = 1
    c = by[("c", "R@1")]
    assert (c["diff"], c["lo"], c["hi"], c["p"]) == (0.0, 0.0, 0.0, 1.0)


def test_no_difference_gives_an_interval_around_zero():
    r = compare.compare(_report(shift=0.0), ["b"], "a", ["R@1"])[0]
    assert r["lo"] < 0 < r["hi"] and r["p"] > 0.05


def test_the_interval_matches_a_normal_approximation_at_many_tasks():
    rng = np.random.default_rng(3)
    d = rng.normal(1.0, 2.0, size=400)
    r = compare.paired(d, np.zeros(400), bootstrap=4000)
    half = 1.96 * d.std() / np.sqrt(d.size)
    assert r["lo"] == pytest.approx(d.mean() - half, abs=0.1 * half)
    assert r["hi"] == pytest.approx(d.mean() + half, abs=0.1 * half)


@pytest.mark.parametrize("args, message", [
    (["x", "--against", "a"], "no arm 'x'"),
    (["b", "--against", "a", "--at", "R@7"], "K=7 is not on the report's curve"),
    (["b", "--against", "a", "--at", "curves"], "unknown measure 'curves'"),
    (["b", "--against", "a", "--bootstrap", "0"], "--bootstrap"),
    (["b"], "--against"),
    (["b", "--minus", "R@9"], "K=9 is not on the report's curve"),
])
def test_bad_arguments_get_an_error_naming_them(tmp_path, capsys, args, message):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_report()))
    assert compare.main([str(path)] + args) == 2
    assert message in capsys.readouterr().err


def test_minus_takes_each_arm_less_its_own_start_on_the_same_task():
    report = _report()
    a, b = ({r["task"]: r["curve"] for r in arm["per_task"]} for arm in report["arms"][:2])
    tasks = sorted(a)
    # the climb of one arm, against 0: the mean over tasks of its R@5 - R@0
    climb = compare.compare(report, ["b"], None, ["R@5"], minus="R@0")[0]
    assert climb["diff"] == pytest.approx(np.mean([b[t][2] - b[t][0] for t in tasks]), abs=1e-12)
    assert climb["against"] is None and climb["minus"] == "R@0" and climb["lo"] < climb["hi"]
    # against another arm: the mean of the difference of the two climbs, paired by task
    rel = compare.compare(report, ["b"], "a", ["R@5"], minus="R@0")[0]
    want = np.mean([(b[t][2] - b[t][0]) - (a[t][2] - a[t][0]) for t in tasks])
    assert rel["diff"] == pytest.approx(want, abs=1e-12)
    # R@1 is R@0 + 1 on every task of every arm: a climb of exactly 1, and none against a
    one = compare.compare(report, ["b"], None, ["R@1"], minus="R@0")[0]
    assert (one["diff"], one["lo"], one["hi"]) == (1.0, 1.0, 1.0)
    assert compare.compare(report, ["b"], "a", ["R@1"], minus="R@0")[0]["diff"] == 0.0


def test_arms_on_different_tasks_are_refused(tmp_path, capsys):
    report = _report()
    report["arms"][1]["per_task"][0]["task"] = 999
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report))
    assert compare.main([str(path), "b", "--against", "a"]) == 2
    assert "not played on the same tasks" in capsys.readouterr().err


def test_against_the_control_it_agrees_with_recarena_ab(tmp_path):
    binary = _ab_binary()
    if not binary:
        pytest.skip("recarena-ab not built")
    path = tmp_path / "ab.json"
    subprocess.run([binary, "--quiet", "--tasks", "12", "--num-envs", "4", "--episodes", "3",
                    "--curve-episodes", "0,2", "--windows", "1-2", "--arms", "random,popularity,linucb",
                    "--json", str(path)], check=True, timeout=300, stdout=subprocess.DEVNULL)
    report = json.loads(path.read_text())
    for arm in report["arms"][1:]:
        r = compare.compare(report, [arm["name"]], report["control"], ["R@2"])[0]
        vs = arm["curve"][1]["vs_control"]
        # the JSON keeps 6 significant digits of each per-task value and of the difference
        assert r["diff"] == pytest.approx(vs["diff"], rel=1e-4, abs=1e-4)
        width = vs["hi"] - vs["lo"]
        assert abs(r["lo"] - vs["lo"]) < 0.15 * width and abs(r["hi"] - vs["hi"]) < 0.15 * width


def test_pooled_reports_average_the_per_task_differences(tmp_path, capsys):
    one, two = _report(shift=2.0), _report(shift=0.0)
    # the pooled difference per task is the mean of the two reports' differences, so it equals
    # the difference in a report whose arm b holds the per-task mean of both b's
    mean = _report(shift=2.0)
    b1 = {r["task"]: r for r in one["arms"][1]["per_task"]}
    b2 = {r["task"]: r for r in two["arms"][1]["per_task"]}
    for row in mean["arms"][1]["per_task"]:
        row["curve"] = [(x + y) / 2 for x, y in zip(b1[row["task"]]["curve"], b2[row["task"]]["curve"])]
    pooled = compare.compare(one, ["b"], "a", ["R@1"], pool=[two])[0]
    direct = compare.compare(mean, ["b"], "a", ["R@1"])[0]
    assert pooled["runs"] == 2
    for key in ("diff", "lo", "hi", "p"):
        assert pooled[key] == pytest.approx(direct[key], abs=1e-12)
    # the two reports differ only in the shift (2 and 0, the same noise): the pooled mean is 1 lower
    alone = compare.compare(one, ["b"], "a", ["R@1"])[0]
    assert pooled["diff"] == pytest.approx(alone["diff"] - 1.0, abs=1e-12)
    # a pooled report on other tasks is refused, naming the arm
    two["arms"][0]["per_task"][3]["task"] = 999
    paths = []
    for i, r in enumerate((one, two)):
        paths.append(tmp_path / f"r{i}.json")
        paths[-1].write_text(json.dumps(r))
    assert compare.main([str(paths[0]), "b", "--against", "a", "--pool", str(paths[1])]) == 2
    assert "arm 'a' was not played on the same tasks in every pooled report" in capsys.readouterr().err


def _run(report, seed=7):
    return {**report, "env": "ECommerce-v1", "task_ids": list(range(100, 140)), "seed": seed,
            "num_envs": 16, "episodes": 21, "unit": "task", "config": {}}


def test_an_arm_of_another_run_pairs_on_common_random_numbers(tmp_path, capsys):
    here, there = _run(_report()), _run(_report(shift=5.0))   # "a" and "c" have the same rows in both
    (tmp_path / "here.json").write_text(json.dumps(here))
    (tmp_path / "there.json").write_text(json.dumps(there))
    merged, same = compare.add_arm(here, there, "b", "b5")
    assert same == ["a", "c"]
    direct = compare.compare(there, ["b"], "a", ["R@1"])[0]
    assert compare.compare(merged, ["b5"], "a", ["R@1"])[0]["diff"] == direct["diff"]
    assert compare.main([str(tmp_path / "here.json"), "b5", "--against", "b",
                         "--arm-from", f"{tmp_path / 'there.json'}:b=b5"]) == 0
    out = capsys.readouterr().out
    assert "the rows of a, c are the same in both runs" in out and "b5" in out


@pytest.mark.parametrize("change, message", [
    (lambda r: r.update(seed=8), "differ in seed"),
    (lambda r: [a["per_task"].reverse() or a["per_task"][0].update({"return": -1.0}) for a in r["arms"]],
     "not on common random numbers"),
])
def test_an_arm_of_a_run_on_other_numbers_is_refused(tmp_path, capsys, change, message):
    here, there = _run(_report()), _run(_report())
    change(there)
    (tmp_path / "here.json").write_text(json.dumps(here))
    (tmp_path / "there.json").write_text(json.dumps(there))
    assert compare.main([str(tmp_path / "here.json"), "b2", "--against", "a",
                         "--arm-from", f"{tmp_path / 'there.json'}:b=b2"]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("spec, message", [
    ("nocolon", "expected REPORT:ARM"),
    ("{there}:zz", "no arm 'zz'"),
    ("{there}:b", "already has an arm 'b'"),
])
def test_bad_arm_from_gets_an_error_naming_it(tmp_path, capsys, spec, message):
    (tmp_path / "here.json").write_text(json.dumps(_run(_report())))
    (tmp_path / "there.json").write_text(json.dumps(_run(_report())))
    spec = spec.format(there=tmp_path / "there.json")
    assert compare.main([str(tmp_path / "here.json"), "b", "--against", "a", "--arm-from", spec]) == 2
    assert message in capsys.readouterr().err


def test_truncated_rows_a_missing_arms_list_and_no_measure_are_exit_2_naming_them(tmp_path, capsys):
    """A per_task row without the measure was a KeyError traceback, a report without 'arms' one
    too, and --at ',' printed an empty table with exit 0."""
    report = _report()
    del report["arms"][1]["per_task"][3]["return"]
    report["arms"][1]["per_task"][4]["curve"] = []
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report))
    for args, message in ((["b", "--against", "a", "--at", "return"],
                           "arm 'b': a per_task row has no numeric return value"),
                          (["b", "--against", "a", "--at", "R@5"],
                           "arm 'b': a per_task row has no numeric R@5 value"),
                          (["b", "--against", "a", "--at", ","], "names no measure")):
        assert compare.main([str(path)] + args) == 2
        err = capsys.readouterr().err
        assert message in err, err
    path.write_text(json.dumps({"schema": "recarena-ab/2"}))
    assert compare.main([str(path), "b", "--against", "a"]) == 2
    assert "'arms'" in capsys.readouterr().err


def test_at_curve_reads_every_k_and_plot_draws_the_differences(tmp_path, capsys):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_report()))
    assert compare.main([str(path), "b", "c", "--against", "a", "--at", "R@0,R@1,R@5,R@5w"]) == 0
    each = capsys.readouterr().out
    png = tmp_path / "d.png"
    assert compare.main([str(path), "b", "c", "--against", "a", "--at", "curve,R@5w",
                         "--plot", str(png)]) == 0
    both = capsys.readouterr().out
    assert both == each + f"plot: {png}\n"   # the same rows, in the same order, then the plot
    _check([str(png)], ["d.png"])
    report = _report()
    report["curve_k"] = []
    path.write_text(json.dumps(report))
    assert compare.main([str(path), "b", "--against", "a", "--at", "curve"]) == 2
    assert "names no measure" in capsys.readouterr().err


def test_the_bootstrap_runs_in_bounded_memory_with_the_same_draws():
    """paired() drew all resamples as one (bootstrap, tasks) array: 10**7 resamples of 500 tasks
    asked for 40 GB at once. In chunks it draws the same numbers in the same order."""
    import tracemalloc
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=500), rng.normal(size=500)
    d = a - b
    r = np.random.default_rng(1)
    whole = d[r.integers(0, d.size, size=(3000, d.size))].mean(axis=1)
    want = np.quantile(whole, 0.025)
    assert compare.paired(a, b, bootstrap=3000, seed=1)["lo"] == pytest.approx(want, rel=1e-12)
    tracemalloc.start()
    compare.paired(a, b, bootstrap=200_000, seed=1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 100 * 2 ** 20, peak  # one array would be 800 MB of int64 indexes
