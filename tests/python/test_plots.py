"""recarena.plots draws one non-empty PNG per metric plus the learning curves (and, for schema
recarena-ab/2, the R@K windows), from reports made here by hand and, when the binary is built,
from a real quick recarena-ab run."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

pytest.importorskip("matplotlib")

from recarena import plots  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _report():
    def ci(mean, vs=None):
        return {"mean": mean, "lo": mean - 1, "hi": mean + 1, "n": 4, "vs_control": vs}
    metrics = [{"name": "return", "label": "return/session"}, {"name": "ctr", "label": "CTR"}]
    arms = []
    for i, name in enumerate(["random", "linucb:alpha=0.5", "oracle"]):
        vs = None if i == 0 else {"diff": i, "lo": i - 0.5, "hi": i + 0.5, "p": 0.01}
        arms.append({"name": name,
                     "metrics": {"return": ci(10.0 + i, vs), "ctr": ci(0.1 * (i + 1), vs)},
                     "curve": [dict(k=k, **ci(10.0 + i + k, vs)) for k in (0, 1, 5)]})
    arms[0]["metrics"]["ctr"]["lo"] = None   # a NaN written as null must not break the plot
    return {"schema": "recarena-ab/1", "env": "ECommerce-v1", "control": "random",
            "metrics": metrics, "curve_k": [0, 1, 5], "arms": arms}


def _check(paths, names):
    assert sorted(os.path.basename(p) for p in paths) == sorted(names)
    for p in paths:
        assert os.path.getsize(p) > 1000, p
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_plots_from_a_handmade_report(tmp_path):
    path = tmp_path / "report.json"
    path.write_text(json.dumps(_report()))
    out = tmp_path / "png"
    assert plots.main([str(path), "--out", str(out)]) == 0
    _check([str(p) for p in out.iterdir()], ["return.png", "ctr.png", "learning_curves.png"])


def test_plots_draw_windows_from_a_v2_report(tmp_path):
    report = _report()
    report["schema"] = "recarena-ab/2"
    report["windows"] = [{"name": "R@1w", "from": 0, "to": 2}, {"name": "auc", "from": 0, "to": 5}]
    for i, a in enumerate(report["arms"]):
        a["windows"] = [dict(name=w["name"], **{"from": w["from"], "to": w["to"]},
                             mean=10.0 + i, lo=9.0 + i, hi=None if i == 1 else 11.0 + i, n=4)
                        for w in report["windows"]]
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    out = tmp_path / "png"
    assert plots.main([str(path), "--out", str(out)]) == 0
    _check([str(p) for p in out.iterdir()],
           ["return.png", "ctr.png", "learning_curves.png", "windows.png"])


def test_plots_reject_a_file_that_is_not_a_report(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{}")
    assert plots.main([str(path), "--out", str(tmp_path / "o")]) == 2


def _ab_binary():
    env = os.environ.get("RECARENA_AB")
    if env:
        return env
    for d in ("build", "build-ab", "build-py"):
        p = os.path.join(ROOT, d, "agents", "recarena-ab")
        if os.access(p, os.X_OK):
            return p
    return shutil.which("recarena-ab")


def test_plots_from_a_real_recarena_ab_run(tmp_path):
    binary = _ab_binary()
    if not binary:
        pytest.skip("recarena-ab not built")
    report = tmp_path / "ab.json"
    subprocess.run([binary, "--quiet", "--tasks", "2", "--num-envs", "4", "--curve-episodes", "0,1",
                    "--episodes", "3", "--windows", "1-2", "--bootstrap", "200", "--json",
                    str(report)], check=True, timeout=120, stdout=subprocess.DEVNULL)
    out = tmp_path / "png"
    paths = plots.plot_report(plots.load_report(str(report)), str(out))
    names = [m["name"] + ".png" for m in json.loads(report.read_text())["metrics"]]
    _check(paths, names + ["learning_curves.png", "windows.png"])


@pytest.mark.parametrize("report, named", [
    ({"schema": "recarena-ab/2"}, "'arms'"),
    ({"schema": "recarena-ab/2", "arms": "random"}, "'arms'"),
    ({"schema": "recarena-ab/2", "arms": [{"name": "a"}], "windows": [{"name": "w"}]}, "'windows'"),
    ({"schema": "recarena-ab/2", "arms": [{"name": "a"}], "metrics": [{}]}, "'metrics'"),
    ({"schema": "recarena-ab/2", "arms": [{"name": "a"}], "curve_k": "0,1"}, "'curve_k'"),
])
def test_a_report_without_the_lists_plots_read_is_exit_2_naming_them(tmp_path, capsys, report,
                                                                      named):
    """These were KeyError / TypeError tracebacks from inside the plotting."""
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report))
    assert plots.main([str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert named in err and "r.json" in err


def test_an_arm_without_a_metric_gets_no_bar_and_a_bad_out_or_file_is_exit_2(tmp_path, capsys):
    report = _report()
    del report["arms"][1]["metrics"]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report))
    assert plots.main([str(path), "--out", str(tmp_path / "o")]) == 0
    (tmp_path / "afile").write_text("x")
    assert plots.main([str(path), "--out", str(tmp_path / "afile")]) == 2
    assert "afile" in capsys.readouterr().err
    path.write_bytes(b"\xff\xfe")
    assert plots.main([str(path), "--out", str(tmp_path / "o")]) == 2
    assert "r.json: not a JSON file" in capsys.readouterr().err
