"""bench/asha_merit.py (docs/tune.md 8.5): the ASHA half-budget question asked of configurations.
It picks each study's incumbent at a share of random search's budget and re-validates its
checkpoint on fresh val streams. Driven against tests/python/fake_meta.py, whose val score is a
known function of the hyperparameters (plus FAKE_META_VAL_NOISE's noise when set)."""
import json
import os
import subprocess
import sys

from recarena.tune import cli

HERE = os.path.dirname(__file__)
FAKE = os.path.join(HERE, "fake_meta.py")
MERIT = os.path.join(os.path.dirname(HERE), "..", "bench", "asha_merit.py")

SPACE = ('env = "ECommerce-v1"\nseed = 5\niters = 6\nval-every = 2\nval-tasks = "val:0-3"\n'
         '[inner-lr]\ntype = "log-uniform"\nlow = 1e-4\nhigh = 1.0\n'
         '[outer-lr]\ntype = "uniform"\nlow = 0.0\nhigh = 1.0\n')


def _study(tmp_path, name, sampler, pruner, seed):
    space = tmp_path / "space.toml"
    space.write_text(SPACE)
    out = tmp_path / name
    assert cli.main(["search", "--space", str(space), "--out", str(out), "--meta-bin", FAKE,
                     "--trials", "10", "--sampler", sampler, "--pruner", pruner,
                     "--storage", "memory", "--study", str(tmp_path / name), "--seed", str(seed)]) == 0
    return out


def _merit(tmp_path, *args):
    return subprocess.run([sys.executable, MERIT, "--out", str(tmp_path / "merit"), "--meta-bin", FAKE,
                           *args], capture_output=True, text=True, env=dict(os.environ))


def _expected_incumbent(summary, budget):
    """Independently: walk the finished trials in finishing order, stop past the budget."""
    done = sorted((t for t in summary["trials"] if t["finished"]), key=lambda t: (t["finished"], t["number"]))
    spent, best = 0, None
    for t in done:
        spent += t["env_steps"]
        if spent > budget:
            return best
        if t["state"] == "COMPLETE" and (best is None or t["value"] > best["value"]):
            best = t
    return best


def test_incumbents_and_fresh_scores(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_META_VAL_NOISE", "0")
    rnd = _study(tmp_path, "random", "random", "none", 2)
    asha = _study(tmp_path, "asha", "tpe", "asha", 1002)
    p = _merit(tmp_path, f"{rnd}:{asha}")
    assert p.returncode == 0, p.stderr
    (row,) = json.loads((tmp_path / "merit" / "merit.json").read_text())
    rs = json.loads((rnd / "summary.json").read_text())
    As = json.loads((asha / "summary.json").read_text())
    budget = rs["env_steps_total"]
    assert row["budget"] == budget and row["seed"] == 5
    for name, summary, share in (("random@1", rs, 1.0), ("random@0.5", rs, 0.5),
                                 ("asha@0.5", As, 0.5), ("asha@1", As, 1.0)):
        want = _expected_incumbent(summary, share * budget)
        assert row[name]["trial"] == want["number"], name
        # without noise a fresh validation of the best-on-val checkpoint is the trial's value
        assert row[name]["fresh"] == [want["value"]] * 2
    assert row["random@1"]["value"] == max(t["value"] for t in rs["trials"] if t["state"] == "COMPLETE")
    d = row["asha@0.5"]["mean"] - row["random@1"]["mean"]
    assert f"| {d:+.4g} |" in p.stdout
    assert f"in {int(d >= 0)} of 1 seeds" in p.stdout
    # a rerun reads every score from the cache: fake_meta is not called again
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_META_LOG", str(log))
    assert _merit(tmp_path, f"{rnd}:{asha}").returncode == 0
    assert not log.exists()


def test_fresh_streams_carry_their_own_noise(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_META_VAL_NOISE", "0")
    rnd = _study(tmp_path, "random", "random", "none", 2)
    monkeypatch.setenv("FAKE_META_VAL_NOISE", "5")
    p = _merit(tmp_path, f"{rnd}:{rnd}", "--tasks", "val:16-79")
    assert p.returncode == 0, p.stderr
    (row,) = json.loads((tmp_path / "merit" / "merit.json").read_text())
    a, b = row["random@1"]["fresh"]
    assert a != b and a != row["random@1"]["value"]
    assert "noise sd" in p.stdout


def test_bad_arguments_are_named(tmp_path):
    p = _merit(tmp_path, "only_one_dir")
    assert p.returncode == 2 and "is not RANDOM_DIR:ASHA_DIR" in p.stderr
    p = _merit(tmp_path, f"{tmp_path}/x:{tmp_path}/y")
    assert p.returncode == 2 and "summary.json" in p.stderr
    p = _merit(tmp_path, "--fraction", "0", "a:b")
    assert p.returncode == 2 and "--fraction" in p.stderr


def test_the_incumbent_counts_trials_in_finishing_order_up_to_the_budget():
    sys.path.insert(0, os.path.dirname(MERIT))
    from asha_merit import incumbent
    # finishing order 3, 0, 1, 2 (by time, not number); 100 env steps each; trial 0 was pruned
    trials = [{"number": 0, "state": "PRUNED", "value": None, "finished": "t2", "env_steps": 100},
              {"number": 1, "state": "COMPLETE", "value": 0.3, "finished": "t3", "env_steps": 100},
              {"number": 2, "state": "COMPLETE", "value": 0.9, "finished": "t4", "env_steps": 100},
              {"number": 3, "state": "COMPLETE", "value": 0.1, "finished": "t1", "env_steps": 100},
              {"number": 4, "state": "RUNNING", "value": None, "finished": None, "env_steps": None}]
    summary = {"trials": trials}
    assert incumbent(summary, 99) is None
    assert [incumbent(summary, b)["number"] for b in (100, 250, 300, 399, 400, 10**9)] == [3, 3, 1, 1, 2, 2]
