"""recarena-tune search spaces: parsing, errors that name the key, sampling inside the ranges,
and the best-config file (docs/tune.md section 2)."""
import json
import math
import random

import pytest

from recarena.tune.space import SpaceError, load_space, parse_space, write_config

GOOD = """
env = "ECommerce-v1"
iters = 30
[inner-lr]
type = "log-uniform"
low = 1e-4
high = 1e-1
[outer-lr]
type = "uniform"
low = 0.0
high = 1.0
[population]
type = "int"
low = 8
high = 64
step = 8
[adapt-params]
type = "choice"
values = ["all", "head"]
"""


def test_toml_and_json_parse_the_same(tmp_path):
    t = tmp_path / "s.toml"
    t.write_text(GOOD)
    s = load_space(str(t))
    assert s.fixed == {"env": "ECommerce-v1", "iters": 30}
    assert s.names() == ["inner-lr", "outer-lr", "population", "adapt-params"]
    pop = s.dims[2]
    assert (pop.kind, pop.low, pop.high, pop.step) == ("int", 8, 64, 8)
    j = tmp_path / "s.json"
    import tomllib
    j.write_text(json.dumps(tomllib.loads(GOOD)))
    assert load_space(str(j)) == parse_space(tomllib.loads(GOOD), str(j))
    assert load_space(str(j)).dims == s.dims


@pytest.mark.parametrize("spec, words", [
    ({"inner-lr": {"type": "loguniform", "low": 1, "high": 2}}, ["inner-lr", "type"]),
    ({"inner-lr": {"type": "log-uniform", "low": 0, "high": 1}}, ["inner-lr", "low > 0"]),
    ({"sigma": {"type": "uniform", "low": 1, "high": 1}}, ["sigma", "low < high"]),
    ({"sigma": {"type": "uniform", "low": 0}}, ["sigma", "'high'"]),
    ({"sigma": {"type": "uniform", "low": 0, "high": "1"}}, ["sigma", "finite number"]),
    ({"sigma": {"type": "uniform", "low": 0, "high": 1, "step": 2}}, ["sigma", "step"]),
    ({"population": {"type": "int", "low": 8, "high": 60, "step": 8}}, ["population", "multiple"]),
    ({"population": {"type": "int", "low": 1.5, "high": 6}}, ["population", "integer"]),
    ({"population": {"type": "int", "low": 0, "high": 6, "log": True}}, ["population", "log"]),
    ({"adapt-params": {"type": "choice", "values": []}}, ["adapt-params", "non-empty"]),
    ({"adapt-params": {"type": "choice", "values": ["a", "a"]}}, ["adapt-params", "repeat"]),
    ({"meta-batch": {"type": "choice", "values": [1, 1.0]}}, ["meta-batch", "repeat"]),
    ({"outer-lr": {"type": "choice", "values": [0.1, float("nan")]}}, ["outer-lr", "finite"]),
    ({"metrics": "x.jsonl", "k": {"type": "uniform", "low": 0, "high": 1}},
     ["metrics", "reserved"]),
    ({"--inner-lr": {"type": "uniform", "low": 0, "high": 1}}, ["--inner-lr", "without dashes"]),
    ({"device": True, "k": {"type": "uniform", "low": 0, "high": 1}}, ["device", "fixed key"]),
    ({"env": "ECommerce-v1"}, ["no searched key"]),
])
def test_errors_name_the_key(spec, words):
    with pytest.raises(SpaceError) as e:
        parse_space(spec, "space.toml")
    for w in words:
        assert w in str(e.value), str(e.value)
    assert "space.toml" in str(e.value)


def test_file_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[inner-lr\n")
    with pytest.raises(SpaceError, match="bad.toml: not valid TOML"):
        load_space(str(bad))
    with pytest.raises(SpaceError, match="ends in .toml or .json"):
        load_space(str(tmp_path / "x.yaml"))
    with pytest.raises(SpaceError, match="cannot read"):
        load_space(str(tmp_path / "missing.toml"))


def test_samples_stay_in_range_and_on_grid():
    s = parse_space({"a": {"type": "log-uniform", "low": 1e-4, "high": 1e-1},
                     "b": {"type": "int", "low": 8, "high": 64, "step": 8},
                     "c": {"type": "choice", "values": ["x", "y", 3]},
                     "d": {"type": "int", "low": 1, "high": 1000, "log": True}})
    rng = random.Random(1)
    logs = []
    for _ in range(2000):
        p = s.sample(rng)
        assert 1e-4 <= p["a"] <= 1e-1
        assert p["b"] in range(8, 65, 8)
        assert p["c"] in ("x", "y", 3)
        assert 1 <= p["d"] <= 1000 and isinstance(p["d"], int)
        logs.append(math.log10(p["a"]))
    # log-uniform: about a third of the draws in each decade
    assert abs(sum(x < -3 for x in logs) / len(logs) - 1 / 3) < 0.05


def test_clip_keeps_ints_on_grid():
    d = parse_space({"b": {"type": "int", "low": 8, "high": 64, "step": 8}}).dims[0]
    assert d.clip(100.0) == 64 and d.clip(-3.0) == 8 and d.clip(30.0) == 32 and d.clip(12.1) == 16


def test_best_config_is_key_value_lines(tmp_path):
    p = tmp_path / "best.cfg"
    write_config(str(p), {"env": "Ads-v1", "inner-lr": 0.1 + 0.2, "population": 16})
    lines = p.read_text().splitlines()
    assert lines == ["env = Ads-v1", "inner-lr = 0.30000000000000004", "population = 16"]
    assert float(lines[1].split("=")[1]) == 0.1 + 0.2  # repr round-trips exactly


def test_a_repeated_json_key_and_an_int_past_any_double_are_space_errors(tmp_path):
    """json kept the last of two equal keys silently (TOML refuses them), and a 400-digit int
    made math.isfinite raise OverflowError out of the tuner."""
    dup = tmp_path / "dup.json"
    dup.write_text('{"k": {"type": "uniform", "low": 0, "high": 1}, '
                   '"k": {"type": "uniform", "low": 0, "high": 2}}')
    with pytest.raises(SpaceError, match="dup.json: key 'k' appears twice"):
        load_space(str(dup))
    nested = tmp_path / "nested.json"
    nested.write_text('{"k": {"type": "uniform", "low": 0, "low": 1, "high": 2}}')
    with pytest.raises(SpaceError, match="key 'low' appears twice"):
        load_space(str(nested))
    big = tmp_path / "big.json"
    big.write_text('{"k": {"type": "uniform", "low": 0, "high": 1' + "0" * 400 + "}}")
    with pytest.raises(SpaceError, match="'high' must be a finite number, got an integer of 401"):
        load_space(str(big))
