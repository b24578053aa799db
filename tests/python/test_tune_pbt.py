"""recarena-tune PBT (docs/tune.md section 5) against tests/python/fake_meta.py, a test double
that follows recarena-meta's contract and whose "checkpoint" is a JSON file recording the
iterations trained and the hyperparameters of every segment, so copies and continuations can be
checked. The real binary is covered by test_tune_real.py."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from recarena.tune.pbt import PbtOptions, load_state, perturb, run_pbt
from recarena.tune.search import Budget, TuneError
from recarena.tune.space import parse_space
from recarena.tune import cli, report

FAKE = os.path.join(os.path.dirname(__file__), "fake_meta.py")
SPACE = {"env": "ECommerce-v1",
         "inner-lr": {"type": "log-uniform", "low": 1e-4, "high": 1.0},
         "outer-lr": {"type": "uniform", "low": 0.0, "high": 1.0},
         "meta-batch": {"type": "int", "low": 1, "high": 16},
         "adapt-params": {"type": "choice", "values": ["all", "head"]}}


def popts(tmp_path, **kw):
    base = dict(space=parse_space(SPACE), meta_bin=FAKE, out_dir=str(tmp_path / "pbt"),
                population=4, ready=3, generations=3, seed=1, parallel=2)
    base.update(kw)
    return PbtOptions(**base)


def test_perturb_factors_and_resample_rate():
    dims = parse_space(SPACE).dims
    rng = random.Random(0)
    base = {"inner-lr": 0.01, "outer-lr": 0.5, "meta-batch": 8, "adapt-params": "all"}
    how = Counter()
    for _ in range(4000):
        new, h = perturb(dims, base, rng, 0.25, (0.8, 1.2))
        for d in dims:
            how[h[d.name]] += 1
            if h[d.name] == "x0.8":
                assert new[d.name] == d.clip(base[d.name] * 0.8)
            elif h[d.name] == "x1.2":
                assert new[d.name] == d.clip(base[d.name] * 1.2)
            elif h[d.name] == "keep":
                assert d.kind == "choice" and new[d.name] == base[d.name]
            else:
                assert h[d.name] == "resample"
    n = 4000 * len(dims)
    assert abs(how["resample"] / n - 0.25) < 0.02
    assert abs(how["x0.8"] - how["x1.2"]) / (how["x0.8"] + how["x1.2"]) < 0.05
    # clipping keeps a perturbed value in range
    new, h = perturb(dims, dict(base, **{"outer-lr": 0.95}), random.Random(3), 0.0, (1.2, 1.2))
    assert new["outer-lr"] == 1.0 and h["outer-lr"] == "x1.2"


def test_exploit_copies_checkpoint_and_hyperparameters(tmp_path):
    o = popts(tmp_path)
    state = run_pbt(o)
    assert state["generation"] == 3
    sched = state["schedule"]
    assert len(sched) == 2  # one exploit (floor(4 * 0.25)) after each of the first 2 generations
    for ev in sched:
        g = ev["generation"]
        scores = {h["member"]: h["score"] for h in state["history"] if h["generation"] == g}
        # the worst member copies from the best one (quantile 1 of 4)
        assert ev["member"] == min(scores, key=scores.get)
        assert ev["donor"] == max(scores, key=scores.get)
        assert ev["donor_params"] == next(h["params"] for h in state["history"]
                                          if h["generation"] == g and h["member"] == ev["donor"])
        # the copy is byte for byte the donor's checkpoint at the end of that generation
        with open(ev["checkpoint_from"], "rb") as a, open(ev["checkpoint_to"], "rb") as b:
            assert a.read() == b.read()
        assert ev["checkpoint_from"].endswith(f"m{ev['donor']:03d}/g{g:04d}/checkpoint.safetensors")
        # perturbed as recorded
        for k, how in ev["perturbation"].items():
            d = next(d for d in o.space.dims if d.name == k)
            if how.startswith("x"):
                assert ev["new_params"][k] == d.clip(ev["donor_params"][k] * float(how[1:]))
        # the member's next segment continues from the copy with the new hyperparameters
        nxt = next(h for h in state["history"]
                   if h["generation"] == g + 1 and h["member"] == ev["member"])
        assert nxt["checkpoint_in"] == ev["checkpoint_to"]
        assert nxt["params"] == ev["new_params"]
        ck = os.path.join(o.out_dir, "pbt", f"m{ev['member']:03d}", f"g{g + 1:04d}",
                          "checkpoint.safetensors")
        with open(ck) as f:
            lineage = json.load(f)["lineage"]
        # the double's checkpoint shows the donor's history, then a segment with the new params
        assert lineage[-1]["from_iter"] == (g + 1) * o.ready
        assert float(lineage[-1]["params"]["inner-lr"]) == ev["new_params"]["inner-lr"]
    # every segment ran --iters READY and continued the iteration count
    for h in state["history"]:
        assert h["iter_end"] == (h["generation"] + 1) * o.ready
        if h["generation"] > 0:
            assert h["checkpoint_in"] is not None


def test_members_continue_from_the_end_of_their_run(tmp_path, monkeypatch):
    # with val noise an earlier val point can score higher than the run's last one: the member's
    # score and the checkpoint it continues from are still the last ones (not the best)
    monkeypatch.setenv("FAKE_META_VAL_NOISE", "1.0")
    space = parse_space(dict(SPACE, **{"val-every": 1}))
    state = run_pbt(popts(tmp_path, space=space))
    earlier_better = 0
    for h in state["history"]:
        assert h["score"] == h["vals"][-1]
        earlier_better += max(h["vals"]) > h["vals"][-1]
        ck = os.path.join(tmp_path, "pbt", "pbt", f"m{h['member']:03d}", f"g{h['generation']:04d}",
                          "checkpoint.safetensors")
        with open(ck) as f:
            assert json.load(f)["iter"] == h["iter_end"]
    assert earlier_better > 0  # the noise made the test meaningful


def test_continue_from_best_scores_and_continues_the_best_val_point(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_META_VAL_NOISE", "1.0")
    space = parse_space(dict(SPACE, **{"val-every": 1}))
    state = run_pbt(popts(tmp_path, space=space, continue_from="best"))
    earlier_better = 0
    for h in state["history"]:
        assert h["score"] == max(h["vals"])
        earlier_better += max(h["vals"]) > h["vals"][-1]
        ck = os.path.join(tmp_path, "pbt", "pbt", f"m{h['member']:03d}", f"g{h['generation']:04d}",
                          "checkpoint.safetensors")
        with open(ck) as f:  # the val point that scored best
            assert json.load(f)["iter"] == h["iter_checkpoint"]
    assert earlier_better > 0
    with pytest.raises(TuneError, match="continue-from"):
        run_pbt(popts(tmp_path / "x", continue_from="middle"))
    for p in (2.0, -0.1, float("nan")):
        with pytest.raises(TuneError, match="resample-p"):
            run_pbt(popts(tmp_path / "x", resample_p=p))


def test_pbt_resumes_and_is_deterministic(tmp_path):
    a = run_pbt(popts(tmp_path / "a", generations=3))
    o = popts(tmp_path / "b", generations=2)
    run_pbt(o)
    assert load_state(o.out_dir)["generation"] == 2
    b = run_pbt(popts(tmp_path / "b", generations=3))  # the same command with more generations
    strip = lambda s: [(e["member"], e["donor"], e["new_params"]) for e in s["schedule"]]
    assert strip(a) == strip(b)
    assert [h["params"] for h in a["history"]] == [h["params"] for h in b["history"]]
    with pytest.raises(TuneError, match="different"):
        run_pbt(popts(tmp_path / "b", generations=4, population=5))


def test_pbt_survives_a_crashing_member_and_writes_outputs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_META_CRASH_ABOVE", "0.8")
    space = tmp_path / "space.json"
    space.write_text(json.dumps(SPACE))
    out = tmp_path / "out"
    rc = cli.main(["pbt", "--space", str(space), "--out", str(out), "--meta-bin", FAKE,
                   "--population", "6", "--ready", "2", "--generations", "3", "--seed", "4"])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    failed = [h for h in s["history"] if h["status"] == "failed"]
    assert failed and all("boom" in h["stderr_tail"] for h in failed)
    assert (out / "pbt_schedule.png").stat().st_size > 1000
    cfg = dict(line.split(" = ") for line in (out / "best.cfg").read_text().splitlines())
    assert cfg["iters"] == "6" and float(cfg["inner-lr"]) == s["best"]["params"]["inner-lr"]


def _fixed_batch_space(tmp_path, batch=4):
    # meta-batch fixed: every iteration of the double costs 100 * batch env steps
    sp = {k: v for k, v in SPACE.items() if k != "meta-batch"}
    sp["meta-batch"] = batch
    return parse_space(sp)


def test_lineage_steps_stop_every_lineage_at_a_trial_budget(tmp_path, monkeypatch):
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_META_LOG", str(log))
    # 2 iterations (800 env steps) a generation; lineages stop at 2000: 800, 1600, then a run
    # given budget-steps 400 trains one iteration; the 4th generation finds every lineage done
    o = popts(tmp_path, space=_fixed_batch_space(tmp_path), ready=2, generations=50, parallel=1,
              lineage_steps=2000)
    state = run_pbt(o)
    assert state["generation"] == 3
    assert [m["lineage_steps"] for m in state["members"]] == [2000] * 4
    assert state["steps_done"] == 4 * 2000  # the same env steps as 4 search trials of 2000
    # each run was asked for what its lineage had left (a copy brings its donor's lineage along)
    calls = [json.loads(x) for x in log.read_text().splitlines()]
    assert sorted(int(c["budget-steps"]) for c in calls) == [400] * 4 + [1200] * 4 + [2000] * 4
    # exploits after generations 0 and 1, none after the generation that reached the cap (the
    # final members hold the hyperparameters they trained with)
    assert [e["generation"] for e in state["schedule"]] == [0, 1]
    for e in state["schedule"]:
        donor = next(h for h in state["history"]
                     if h["generation"] == e["generation"] and h["member"] == e["donor"])
        assert e["lineage_steps_to"] == donor["lineage_steps"]
    last = [h for h in state["history"] if h["generation"] == 2]
    assert all(h["params"] == m["params"] for h, m in zip(last, state["members"]))
    # the fake's checkpoint: 5 iterations behind every final member (2 + 2 + 1)
    for m in state["members"]:
        with open(m["checkpoint"]) as f:
            assert json.load(f)["iter"] == 5


def test_lineage_steps_with_uneven_iterations(tmp_path):
    # meta-batch searched in 1..16: iterations cost 100-1600 env steps, so lineages reach the
    # cap at different generations; a done member is not run again and keeps its score, and
    # exploits stop once the first lineage is done
    o = popts(tmp_path, ready=2, generations=50, parallel=1, lineage_steps=3000)
    state = run_pbt(o)
    assert state["generation"] < 50
    for m in state["members"]:
        # recarena-meta (and the double) start an iteration while below the budget: the lineage
        # ends at the cap or past it by less than one iteration
        assert 3000 <= m["lineage_steps"] < 3000 + 100 * m["params"]["meta-batch"]
    first_done = min(h["generation"] for h in state["history"] if h["lineage_steps"] >= 3000)
    assert all(e["generation"] < first_done for e in state["schedule"])
    done = [h for h in state["history"] if h["status"] == "lineage-done"]
    for h in done:
        prev = next(p for p in state["history"]
                    if p["member"] == h["member"] and p["generation"] == h["generation"] - 1)
        assert h["env_steps"] == 0 and h["score"] == prev["score"]


def test_ready_in_env_steps_keeps_lineages_in_step(tmp_path, monkeypatch):
    # meta-batch searched in 1..16 (iterations of 100-1600 env steps); with --ready-unit steps
    # every run is asked for READY env steps (no --iters), so every lineage advances alike and
    # reaches the cap in the same generation, with exploits after every generation before it
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_META_LOG", str(log))
    o = popts(tmp_path, ready=4000, ready_unit="steps", generations=50, parallel=1,
              lineage_steps=12000)
    state = run_pbt(o)
    calls = [json.loads(x) for x in log.read_text().splitlines()]
    assert all("iters" not in c and int(c["budget-steps"]) <= 4000 for c in calls)
    for h in state["history"]:
        if h["status"] == "ok":  # the budget or past it by less than one iteration
            assert h["env_steps"] < 4000 + 100 * h["params"]["meta-batch"]
    first_done = min(h["generation"] for h in state["history"] if h["lineage_steps"] >= 12000)
    assert first_done == 2 and state["generation"] == 3
    assert [e["generation"] for e in state["schedule"]] == [0, 1]
    # iterations number on through a lineage: a run starts where its checkpoint ended
    for h in state["history"]:
        assert h["iter_end"] >= h["iter_start"]
    # best.cfg: the lineage's env steps, no iteration count
    s = report.write_pbt_outputs(state, o.space, o.out_dir, "score", True)
    cfg = dict(line.split(" = ") for line in open(s["best_config"]).read().splitlines())
    assert cfg["budget-steps"] == "12000" and "iters" not in cfg
    with pytest.raises(TuneError, match="ready-unit"):
        run_pbt(popts(tmp_path / "x", ready_unit="episodes"))


def test_lineage_steps_command_line(tmp_path, capsys):
    space = tmp_path / "space.json"
    sp = dict(SPACE)
    sp["meta-batch"] = 4
    space.write_text(json.dumps(sp))
    out = tmp_path / "out"
    args = ["pbt", "--space", str(space), "--out", str(out), "--meta-bin", FAKE,
            "--population", "2", "--ready", "2", "--generations", "9"]
    assert cli.main(args + ["--lineage-steps", "1.2e3"]) == 0
    cfg = dict(line.split(" = ") for line in (out / "best.cfg").read_text().splitlines())
    assert cfg["budget-steps"] == "1200"
    assert load_state(str(out))["generation"] == 2
    # resuming with another cap is refused; a bad value names the flag
    assert cli.main(args + ["--lineage-steps", "1600"]) == 2
    assert "different" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli.main(args + ["--lineage-steps", "0"])
    assert e.value.code == 2
    assert "--lineage-steps" in capsys.readouterr().err


def test_reptile_runs_anneal_over_their_own_budget_without_a_lineage_cap(tmp_path, monkeypatch):
    # without --lineage-steps a run's budget-steps is per generation, not what the lineage has
    # left, so Reptile's epsilon restarts its schedule every run (--anneal-over run); with a cap
    # and generations in iterations it anneals over the lineage (recarena-meta's default), in
    # env steps (budget-steps per generation again) over the run; other algorithms do not
    # anneal, and the space's own anneal-over wins
    def anneal_flags(sub, space, **kw):
        log = tmp_path / f"{sub}.jsonl"
        monkeypatch.setenv("FAKE_META_LOG", str(log))
        run_pbt(popts(tmp_path / sub, space=parse_space(space), generations=2, parallel=1, **kw))
        return [c.get("anneal-over") for c in map(json.loads, log.read_text().splitlines())]

    assert anneal_flags("uncapped", SPACE) == ["run"] * 8
    assert anneal_flags("capped", SPACE, lineage_steps=100000) == [None] * 8
    assert anneal_flags("capped-steps", SPACE, lineage_steps=100000, ready=2000,
                        ready_unit="steps") == ["run"] * 8
    assert anneal_flags("es", dict(SPACE, algo="es")) == [None] * 8
    assert anneal_flags("own", dict(SPACE, **{"anneal-over": "lineage"})) == ["lineage"] * 8


def test_ready_in_env_steps_paces_the_lineage_not_the_run(tmp_path):
    # iterations of 1600 env steps (meta-batch 16) against READY 2000: a run starts an iteration
    # while below its budget, so asked for 2000 every time a member would train 3200 a
    # generation; each run is given what keeps its lineage at READY per generation instead
    o = popts(tmp_path, space=_fixed_batch_space(tmp_path, 16), ready=2000, ready_unit="steps",
              generations=6, parallel=1)
    state = run_pbt(o)
    for h in state["history"]:
        target = 2000 * (h["generation"] + 1)
        assert target <= h["lineage_steps"] < target + 1600, h
    assert {h["env_steps"] for h in state["history"]} == {1600, 3200}


def test_the_generation_that_crosses_the_budget_shares_what_is_left(tmp_path, monkeypatch):
    # 4 members x 2 iterations of 400 env steps: 3200 a generation. With --budget 4500 the second
    # generation would end at 6400; each of its runs is given a quarter of the 1300 left instead
    # (budget-steps 325: one iteration), so PBT ends at 4800, past the budget by less than one
    # iteration per member, as the search studies do. No exploit after it: nothing would run
    # the copies.
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_META_LOG", str(log))
    o = popts(tmp_path, space=_fixed_batch_space(tmp_path), ready=2, generations=50, parallel=1,
              budget=Budget(steps=4500))
    state = run_pbt(o)
    assert state["generation"] == 2 and state["steps_done"] == 4800
    calls = [json.loads(x) for x in log.read_text().splitlines()]
    assert [int(c["budget-steps"]) for c in calls[4:]] == [325] * 4
    assert all("budget-steps" not in c for c in calls[:4])
    assert [e["generation"] for e in state["schedule"]] == [0]
    assert state.get("exploit_pending")


def test_sigterm_takes_no_more_members(tmp_path):
    """After SIGTERM the workers went on taking members, each of which made its directory and
    a record before seeing the stop: a population of thousands took minutes to stop."""
    space = tmp_path / "space.json"
    space.write_text(json.dumps(SPACE))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "recarena.tune", "pbt", "--space", str(space), "--out", str(out),
           "--meta-bin", FAKE, "--population", "2000", "--generations", "1", "--ready", "50"]
    p = subprocess.Popen(cmd, env=dict(os.environ, FAKE_META_SLEEP="0.05"),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = out / "pbt" / "m000" / "g0000" / "metrics.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not first.exists():
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "run the same command" in err
    assert len(os.listdir(out / "pbt")) <= 2  # the member running, at most one more
