"""recarena-tune against the real recarena-meta: a tiny study (2 trials of 2 meta-iterations), a
tiny PBT run (2 members, 2 generations of 1 iteration: exercises --checkpoint-in) and the test
evaluation of the best config. Skipped, with the reason, when the binary is not built."""
import json
import math
import os

import pytest

from recarena.tune import cli
from recarena.tune.runner import MetaNotFoundError, find_meta_binary

try:
    META = find_meta_binary()
    WHY = ""
except MetaNotFoundError as e:
    META, WHY = None, str(e)

pytestmark = pytest.mark.skipif(META is None, reason=f"recarena-meta is not built: {WHY}")

TINY = {"env": "ECommerce-v1", "algo": "reptile", "train-tasks": "train:0-3",
        "val-tasks": "val:0-1", "meta-batch": 2, "iters": 2, "val-every": 1, "workers": 1,
        "envs-per-task": 4, "inner-steps": 2, "rollout-len": 8,
        "inner-lr": {"type": "log-uniform", "low": 1e-3, "high": 1e-1},
        "outer-lr": {"type": "uniform", "low": 0.1, "high": 1.0}}


def test_tiny_real_study_and_eval(tmp_path, capsys):
    space = tmp_path / "space.json"
    space.write_text(json.dumps(TINY))
    out = tmp_path / "out"
    rc = cli.main(["search", "--space", str(space), "--out", str(out), "--meta-bin", META,
                   "--trials", "2", "--sampler", "random", "--pruner", "none"])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    for t in s["trials"]:
        assert t["state"] == "COMPLETE", (t["fail_reason"], t["stderr_tail"])
        assert math.isfinite(t["value"]) and t["env_steps"] > 0
        assert os.path.exists(t["checkpoint"])
    assert (out / "best.cfg").exists()
    rc = cli.main(["eval", "--config", str(out / "best.cfg"), "--meta-bin", META,
                   "--test-tasks", "test:0-1", "--out", str(tmp_path / "ev")])
    assert rc == 0
    ev = json.loads((tmp_path / "ev" / "eval.json").read_text())
    assert math.isfinite(ev["last_val"]["score"])
    ab = os.path.join(os.path.dirname(META), "recarena-ab")
    if not os.path.exists(ab):
        return
    # the A/B form: the tuned checkpoint as a target arm against random on two test tasks
    rc = cli.main(["eval", "--config", str(out / "best.cfg"), "--meta-bin", META,
                   "--test-tasks", "test:0-1", "--out", str(tmp_path / "ab"),
                   "--arms", "random,target:checkpoint={checkpoint}:name=tuned",
                   "--ab-args", "--num-envs 4 --episodes 8 --bootstrap 200"])
    assert rc == 0
    rep = json.loads((tmp_path / "ab" / "test_report.json").read_text())
    assert rep["schema"].startswith("recarena-ab/")
    assert "tuned" in json.dumps(rep)


def test_tiny_real_pbt(tmp_path):
    space = tmp_path / "space.json"
    space.write_text(json.dumps(TINY))
    out = tmp_path / "pbt"
    rc = cli.main(["pbt", "--space", str(space), "--out", str(out), "--meta-bin", META,
                   "--population", "2", "--ready", "1", "--generations", "2"])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert all(h["status"] == "ok" for h in s["history"]), s["history"]
    assert len(s["schedule"]) == 1 and os.path.exists(s["schedule"][0]["checkpoint_to"])


def test_tiny_real_pbt_lineage_steps(tmp_path):
    # an iteration of TINY is 2 tasks x 4 envs x 8 steps x 2 inner steps = 128 env steps, one a
    # generation: lineages of 300 take 3 generations (128, 256, then a run given budget-steps 44
    # that recarena-meta still starts one iteration of), ending at 384
    space = tmp_path / "space.json"
    space.write_text(json.dumps(TINY))
    out = tmp_path / "pbt"
    rc = cli.main(["pbt", "--space", str(space), "--out", str(out), "--meta-bin", META,
                   "--population", "2", "--ready", "1", "--generations", "10",
                   "--lineage-steps", "300"])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert all(h["status"] == "ok" for h in s["history"]), s["history"]
    assert s["generations"] == 3 and s["env_steps_total"] == 2 * 384
    assert [h["env_steps"] for h in s["history"]] == [128] * 6
    assert [e["generation"] for e in s["schedule"]] == [0, 1]
