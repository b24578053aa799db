"""bench/val_noise.py (docs/tune.md 8.4): it re-validates a finished search study's checkpoints on
fresh val streams and splits the spread of the trials' val scores into their merit and evaluation
noise. Driven against tests/python/fake_meta.py, whose FAKE_META_VAL_NOISE adds a known noise sd
to every val score (a function of --seed, --val-tasks, the hyperparameters and the iteration)."""
import json
import os
import subprocess
import sys

import pytest

from recarena.tune import cli

HERE = os.path.dirname(__file__)
FAKE = os.path.join(HERE, "fake_meta.py")
ROOT = os.path.dirname(os.path.dirname(HERE))
VAL_NOISE = os.path.join(ROOT, "bench", "val_noise.py")

SPACE = ('env = "ECommerce-v1"\nseed = 5\niters = 4\nval-every = 2\nval-tasks = "val:0-3"\n'
         '[inner-lr]\ntype = "log-uniform"\nlow = 1e-4\nhigh = 1.0\n'
         '[outer-lr]\ntype = "uniform"\nlow = 0.0\nhigh = 1.0\n')


def study_and_stats(tmp_path, monkeypatch, noise_sd):
    """A random-search study of 12 fake trials, then val_noise.py's stats of it."""
    monkeypatch.setenv("FAKE_META_VAL_NOISE", str(noise_sd))
    space = tmp_path / "space.toml"
    space.write_text(SPACE)
    out = tmp_path / "study"
    assert cli.main(["search", "--space", str(space), "--out", str(out), "--meta-bin", FAKE,
                     "--trials", "12", "--sampler", "random", "--pruner", "none",
                     "--storage", "memory", "--study", str(tmp_path), "--seed", "2"]) == 0
    p = subprocess.run([sys.executable, VAL_NOISE, "--out", str(tmp_path / "vn"),
                        "--meta-bin", FAKE, str(out)], capture_output=True, text=True,
                       env=dict(os.environ))
    assert p.returncode == 0, p.stderr
    assert "| ECommerce-v1 | 5 | 12 |" in p.stdout
    (st,) = json.loads((tmp_path / "vn" / "stats.json").read_text())
    cache = json.loads((tmp_path / "vn" / "reeval.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    return st, cache, summary


def test_no_noise_means_perfect_reliability(tmp_path, monkeypatch):
    st, cache, _ = study_and_stats(tmp_path, monkeypatch, 0)
    assert st["trials"] == 12
    assert st["rel_small"] == pytest.approx(1.0) and st["rel_large"] == pytest.approx(1.0)
    assert st["noise_small"] == 0 and st["noise_large"] == 0
    assert st["between_small"] > 0.5  # the trials' q differs by decades of inner-lr
    assert st["best_curse"] == pytest.approx(0.0, abs=1e-9)
    assert st["best_rank_large"] == 1 and st["rho_value_large"] == pytest.approx(1.0)
    # every re-evaluation is the trial's own value: two streams of each task set, and no noise
    assert len(cache) == 12 and all(len(r["small"]) == 2 and len(r["large"]) == 2
                                    for r in cache.values())
    # a second run reads the cache: no re-evaluation runs again
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_META_LOG", str(log))
    p = subprocess.run([sys.executable, VAL_NOISE, "--out", str(tmp_path / "vn"),
                        "--meta-bin", FAKE, str(tmp_path / "study")], capture_output=True,
                       text=True, env=dict(os.environ))
    assert p.returncode == 0, p.stderr
    assert not log.exists()


def test_noise_is_measured_and_the_best_is_cursed(tmp_path, monkeypatch):
    sd = 50.0  # far above the trials' spread of merit (a few units)
    st, _, summary = study_and_stats(tmp_path, monkeypatch, sd)
    # the sd estimated from 12 pairs of independent evaluations is near the planted one (its
    # sampling error alone puts it within 0.45..1.7 times the planted sd 999 times in 1000)
    assert 0.4 * sd < st["noise_small"] < 1.8 * sd
    assert 0.4 * sd < st["noise_large"] < 1.8 * sd
    # most of the spread is noise: two evaluations of the same checkpoints hardly agree
    assert st["rel_small"] < 0.8
    # the study's best is the maximum of 12 noisy scores: its own value exceeds a fresh one
    assert st["best_curse"] > 0.5 * sd
    vals = [t["value"] for t in summary["trials"]]
    assert max(vals) - min(vals) > sd  # the study's own values spread by the noise
