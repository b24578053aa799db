"""recarena-tune's Optuna study (docs/tune.md section 4), driven against tests/python/fake_meta.py:
a test double that follows recarena-meta's command-line and metrics contract and scores a known
function of the hyperparameters (optimum: inner-lr 0.01, outer-lr 0.5, adapt-params head). The
real binary is covered by test_tune_real.py."""
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from recarena.tune import cli
from recarena.tune.runner import MetaNotFoundError, find_meta_binary
from recarena.tune.search import Budget, SearchOptions, TuneError, counted, open_study, run_search
from recarena.tune.space import parse_space

FAKE = os.path.join(os.path.dirname(__file__), "fake_meta.py")

SPACE = {"env": "ECommerce-v1", "iters": 9, "val-every": 1,
         "inner-lr": {"type": "log-uniform", "low": 1e-4, "high": 1.0},
         "outer-lr": {"type": "uniform", "low": 0.0, "high": 1.0},
         "adapt-params": {"type": "choice", "values": ["all", "head"]}}


def opts(tmp_path, **kw):
    space = parse_space(dict(SPACE, **kw.pop("fixed", {})))
    # in-memory storage (SQLite commits every report: slow on a shared disk), one per test;
    # the resume and command-line tests use the SQLite default
    base = dict(space=space, meta_bin=FAKE, out_dir=str(tmp_path / "out"), storage="memory",
                study_name=str(tmp_path),
                trials=10, parallel=1, sampler="tpe", pruner="asha", eta=3, min_resource=1,
                seed=0, startup_trials=5)
    base.update(kw)
    return SearchOptions(**base)


def q(p):
    return -(math.log10(p["inner-lr"]) + 2) ** 2 - 4 * (p["outer-lr"] - 0.5) ** 2 + \
        (0.1 if p["adapt-params"] == "head" else 0.0)


def test_finds_planted_optimum_within_budget(tmp_path):
    o = opts(tmp_path, trials=200, budget=Budget(steps=50_000), startup_trials=10)
    study = run_search(o)
    steps = sum(t.user_attrs["env_steps"] for t in study.trials)
    # the study stops on the budget (running trials are stopped at their next metrics line)
    assert 50_000 <= steps <= 50_000 + 400
    assert len(study.trials) < 200
    best = study.best_trial
    p = best.params
    assert p["adapt-params"] == "head"
    assert abs(math.log10(p["inner-lr"]) + 2) < 0.3, p
    assert abs(p["outer-lr"] - 0.5) < 0.15, p
    # its value is what the double computes at the last val point (iter 9)
    assert best.value == pytest.approx(q(p) - 1 / 10)


def test_asha_stops_a_bad_trial_early(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_META_SLEEP", "0.02")  # 27 iterations take longer than a poll
    o = opts(tmp_path, trials=4, sampler="random", fixed={"iters": 27})
    study = open_study(o)
    good = [{"inner-lr": 0.03, "outer-lr": 0.3, "adapt-params": "all"},
            {"inner-lr": 0.02, "outer-lr": 0.4, "adapt-params": "all"},
            {"inner-lr": 0.01, "outer-lr": 0.5, "adapt-params": "head"}]
    bad = {"inner-lr": 1e-4, "outer-lr": 1.0, "adapt-params": "all"}
    for p in good + [bad]:
        study.enqueue_trial(p)
    study = run_search(o)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE] * 3 + [TrialState.PRUNED]
    t = study.trials[3]
    assert max(t.intermediate_values) == 1  # pruned at the first rung
    assert "pruned at iters 1" in t.user_attrs["stopped"]
    with open(os.path.join(t.user_attrs["workdir"], "metrics.jsonl")) as f:
        vals = [json.loads(x) for x in f if '"val"' in x]
    assert len(vals) < 27  # the process was stopped, not left to finish
    for g in study.trials[:3]:
        assert max(g.intermediate_values) == 27


def test_crash_and_nan_are_failed_trials_not_the_end(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_META_CRASH_ABOVE", "0.9")
    monkeypatch.setenv("FAKE_META_NAN_ABOVE", "0.85")
    o = opts(tmp_path, trials=4, pruner="none", sampler="random")
    study = open_study(o)
    for outer in (0.5, 0.95, 0.87, 0.4):
        study.enqueue_trial({"inner-lr": 0.01, "outer-lr": outer, "adapt-params": "all"})
    study = run_search(o)
    s = [t.state for t in study.trials]
    assert s == [TrialState.COMPLETE, TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE]
    crash, nan = study.trials[1], study.trials[2]
    assert "status 1" in crash.user_attrs["fail_reason"]
    assert "boom: simulated crash" in crash.user_attrs["stderr_tail"]
    assert "nan" in nan.user_attrs["fail_reason"].lower()
    assert "NaN" in nan.user_attrs["stderr_tail"] or nan.user_attrs["stderr_tail"] == ""


def test_a_metric_the_val_lines_lack_fails_each_trial_with_the_keys_it_has(tmp_path):
    study = run_search(opts(tmp_path, trials=2, pruner="none", sampler="random",
                            metric="R@7"))
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL]
    why = study.trials[0].user_attrs["fail_reason"]
    assert "has no key 'R@7'" in why and "score" in why


def test_bad_seed_min_resource_storage_and_report_exit_2_naming_them(tmp_path, capsys):
    space = tmp_path / "space.toml"
    space.write_text('iters = 2\n[inner-lr]\ntype = "log-uniform"\nlow = 1e-3\nhigh = 0.1\n')
    base = ["--space", str(space), "--out", str(tmp_path / "o")]
    for argv, named in ((["search", "--seed", "-1"], "--seed"), (["pbt", "--seed", "-1"], "--seed"),
                        (["search", "--min-resource", "0"], "--min-resource"),
                        (["search", "--storage", "nosuchdb://x"], "--storage nosuchdb://x"),
                        (["report"], "study.db"),
                        (["report", "--storage", "nosuchdb://x"], "--storage nosuchdb://x")):
        run = argv + base + (["--meta-bin", FAKE] if argv[0] != "report" else [])
        assert cli.main(run) == 2, argv
        err = capsys.readouterr().err
        assert named in err and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "o" / "study.db").exists()  # report created no empty database
    # eval: an unreadable config, or a recarena-ab it would need after training, before training
    cfg = tmp_path / "best.cfg"
    cfg.write_text("iters = 2\n")
    for argv, named in ((["--config", str(tmp_path / "none.cfg")], "none.cfg"),
                        (["--config", str(tmp_path)], "Is a directory"),
                        (["--config", str(cfg), "--arms", "random", "--ab-bin",
                          str(tmp_path / "no-ab")], "no recarena-ab")):
        assert cli.main(["eval", "--meta-bin", FAKE, "--out", str(tmp_path / "ev")] + argv) == 2
        err = capsys.readouterr().err
        assert named in err and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "ev" / "metrics.jsonl").exists()  # nothing trained


def test_an_out_that_cannot_be_a_directory_and_bad_summaries_exit_2_naming_them(tmp_path, capsys):
    """--out naming a file was a FileExistsError traceback (search, pbt, eval); a summary.json
    that is not a map, or lacks the fields compare reads, was an AttributeError or KeyError;
    --startup-trials -1 was taken."""
    space = tmp_path / "space.toml"
    space.write_text('iters = 2\n[inner-lr]\ntype = "log-uniform"\nlow = 1e-3\nhigh = 0.1\n')
    afile = tmp_path / "afile"
    afile.write_text("x")
    for argv, named in ((["search", "--space", str(space), "--storage", "memory"], "--out"),
                        (["pbt", "--space", str(space)], "--out"),
                        (["eval", "--config", str(space)], "--out")):
        assert cli.main(argv + ["--meta-bin", FAKE, "--out", str(afile)]) == 2, argv
        err = capsys.readouterr().err
        assert named in err and "afile" in err and "Traceback" not in err, (argv, err)
    assert cli.main(["search", "--space", str(space), "--storage", "memory", "--meta-bin", FAKE,
                     "--out", str(tmp_path / "o"), "--startup-trials", "-1"]) == 2
    assert "--startup-trials" in capsys.readouterr().err
    d = tmp_path / "study"
    d.mkdir()
    good = {"schema": "recarena-tune/1", "metric": "score", "mode": "search",
            "env_steps_total": 10, "best_so_far": [[5, 1.0]], "trials": [{"x": 1}]}
    for summary, named in (([1], "not a recarena-tune summary"),
                           ({"schema": "recarena-tune/1"}, "lacks a field"),
                           (dict(good, best_so_far=[[5]]), "lacks a field")):
        (d / "summary.json").write_text(json.dumps(summary))
        assert cli.main(["compare", f"a={d}", f"b={d}"]) == 2
        assert named in capsys.readouterr().err
    (d / "summary.json").write_text(json.dumps(good))
    assert cli.main(["compare", f"a={d}", f"b={d}"]) == 0
    capsys.readouterr()
    assert cli.main(["compare", f"a={d},{d}", f"b={d},{d}", "--rungs", "3"]) == 2
    assert "trials lack a field" in capsys.readouterr().err


def test_same_seed_same_trials(tmp_path):
    def seq(d, seed):
        o = opts(d, trials=8, seed=seed, startup_trials=3)
        st = run_search(o)
        return [(t.state.name, t.params) for t in st.trials]
    a = seq(tmp_path / "a", 7)
    b = seq(tmp_path / "b", 7)
    c = seq(tmp_path / "c", 8)
    assert a == b
    assert [x[1] for x in a] != [x[1] for x in c]


def test_parallel_trials_each_run_once(tmp_path):
    o = opts(tmp_path, trials=6, parallel=3, pruner="none")
    st = run_search(o)
    assert len(st.trials) == 6 and all(t.state == TrialState.COMPLETE for t in st.trials)
    dirs = {t.user_attrs["workdir"] for t in st.trials}
    assert len(dirs) == 6


def test_resumed_study_keeps_finished_trials(tmp_path):
    space = tmp_path / "space.json"
    space.write_text(json.dumps(dict(SPACE, iters=10)))
    log = tmp_path / "invocations.jsonl"
    out = tmp_path / "out"
    # 1 s per trial: slow enough that the kill lands while trials remain
    env = dict(os.environ, FAKE_META_SLEEP="0.1", FAKE_META_LOG=str(log))
    cmd = [sys.executable, "-m", "recarena.tune", "search", "--space", str(space), "--out",
           str(out), "--meta-bin", FAKE, "--trials", "8", "--pruner", "none", "--seed", "3"]
    err = open(tmp_path / "first.err", "w")
    p = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                         stderr=err)
    url = "sqlite:///" + str(out / "study.db")
    deadline = time.monotonic() + 180  # generous: the test machines are shared
    first = 0
    while time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.3)
        try:  # read-only, so the poll never races the tuner creating the file's tables
            with sqlite3.connect(f"file:{out / 'study.db'}?mode=ro", uri=True) as db:
                first = db.execute("SELECT count(*) FROM trials WHERE state = 'COMPLETE'"
                                   ).fetchone()[0]
        except sqlite3.Error:  # not made yet
            continue
        if first >= 3:
            break
    assert p.poll() is None, "the tuner ended before it could be killed: " + \
        (tmp_path / "first.err").read_text()
    os.killpg(p.pid, signal.SIGKILL)  # the tuner and its trial: a killed study
    p.wait()
    err.close()
    assert 3 <= first < 8, (tmp_path / "first.err").read_text()
    done_before = {t.number: t.params for t in optuna.load_study(
        study_name="recarena-tune", storage=url).get_trials() if t.state == TrialState.COMPLETE}
    env.pop("FAKE_META_SLEEP")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    st = optuna.load_study(study_name="recarena-tune", storage=url)
    assert len(counted(st.get_trials())) == 8
    for n, params in done_before.items():  # finished trials are kept as they were ...
        assert st.trials[n].state == TrialState.COMPLETE and st.trials[n].params == params
    runs = [json.loads(x) for x in log.read_text().splitlines()]
    for params in done_before.values():  # ... and never run again
        hits = [r for r in runs if float(r["inner-lr"]) == params["inner-lr"]]
        assert len(hits) == 1
    # the trial the kill interrupted is failed as 'interrupted' and rerun with the params it had
    # drawn (a kill between two suggestions leaves the rest to be drawn again)
    for t in st.trials:
        if t.user_attrs.get("interrupted"):
            again = [u for u in st.trials if u.user_attrs.get("retry_of") == t.number]
            assert len(again) == 1
            assert all(again[0].params[k] == v for k, v in t.params.items())
    assert "best config" in r.stdout


def test_resume_with_other_settings_is_refused(tmp_path):
    run_search(opts(tmp_path, trials=1, pruner="none"))
    with pytest.raises(TuneError, match="different"):
        run_search(opts(tmp_path, trials=2, pruner="none", metric="R@0"))


def test_budget_parse():
    assert Budget.parse("2e6") == Budget(steps=2_000_000)
    assert Budget.parse("5000steps") == Budget(steps=5000)
    assert Budget.parse("30m") == Budget(seconds=1800)
    assert Budget.parse("90s") == Budget(seconds=90)
    for bad in ("fast", "-5", "0", "3d"):
        with pytest.raises(TuneError, match="--budget"):
            Budget.parse(bad)


def test_cli_outputs_and_eval(tmp_path, capsys):
    space = tmp_path / "space.toml"
    space.write_text('env = "Ads-v1"\niters = 6\nval-every = 2\n'
                     '[inner-lr]\ntype = "log-uniform"\nlow = 1e-3\nhigh = 0.1\n'
                     '[meta-batch]\ntype = "int"\nlow = 1\nhigh = 8\n')
    out = tmp_path / "out"
    rc = cli.main(["search", "--space", str(space), "--out", str(out), "--meta-bin", FAKE,
                   "--trials", "4", "--sampler", "random"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "| trial | score" in text and "best config" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["schema"] == "recarena-tune/1" and len(summary["trials"]) == 4
    for png in ("best_so_far.png", "rungs.png"):
        assert (out / png).stat().st_size > 1000
    cfg = (out / "best.cfg").read_text().splitlines()
    assert cfg[:3] == ["env = Ads-v1", "iters = 6", "val-every = 2"]
    assert float(cfg[3].split(" = ")[1]) == summary["best"]["params"]["inner-lr"]
    # the best config is accepted by the (fake) meta binary and evaluated on test tasks
    rc = cli.main(["eval", "--config", str(out / "best.cfg"), "--meta-bin", FAKE,
                   "--test-tasks", "test:0-7", "--out", str(tmp_path / "ev")])
    assert rc == 0
    ev = json.loads((tmp_path / "ev" / "eval.json").read_text())
    assert ev["mode"] == "meta-val-on-test" and ev["last_val"]["iter"] == 6
    assert "--val-tasks" in ev["command"] and "test:0-7" in ev["command"]
    assert ev["last_val"]["score"] == pytest.approx(summary["best"]["value"])
    # bad space: exit 2 with the key named
    space.write_text('[inner-lr]\ntype = "log-uniform"\nlow = 0\nhigh = 1\n')
    assert cli.main(["search", "--space", str(space), "--meta-bin", FAKE]) == 2
    assert "inner-lr" in capsys.readouterr().err


def test_eval_gives_recarena_ab_the_configs_sim_config(tmp_path):
    # a study on hidden tastes is tested on hidden tastes: every sim-config line of the config
    # reaches recarena-ab as --config, before --ab-args
    cfg = tmp_path / "best.cfg"
    cfg.write_text("env = News-v1\nsim-config = hidden_tastes=1\niters = 4\nval-every = 2\n"
                   "sim-config = num_items=500\n")
    argv_log = tmp_path / "ab_argv.json"
    fake_ab = tmp_path / "fake_ab.py"
    check_log = tmp_path / "ab_check_argv.json"
    fake_ab.write_text(f"#!{sys.executable}\nimport json, sys\n"
                       "if '--check' in sys.argv:\n"
                       f"    json.dump(sys.argv[1:], open({str(check_log)!r}, 'w'))\n"
                       "    print('check: OK'); sys.exit()\n"
                       f"json.dump(sys.argv[1:], open({str(argv_log)!r}, 'w'))\n")
    fake_ab.chmod(0o755)
    # {checkpoint} outside target's checkpoint= (here a misspelt class) is refused before training
    assert cli.main(["eval", "--config", str(cfg), "--meta-bin", FAKE, "--ab-bin", str(fake_ab),
                     "--arms", "random,tagret:checkpoint={checkpoint}", "--out",
                     str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad" / "metrics.jsonl").exists()
    rc = cli.main(["eval", "--config", str(cfg), "--meta-bin", FAKE, "--ab-bin", str(fake_ab),
                   "--arms", "random,target:checkpoint={checkpoint}", "--test-tasks", "test:0-3",
                   "--ab-args", "--episodes 3", "--out", str(tmp_path / "ev")])
    assert rc == 0
    argv = json.loads(argv_log.read_text())
    assert argv[:2] == ["--env", "News-v1"]
    assert argv[2:6] == ["--config", "hidden_tastes=1", "--config", "num_items=500"]
    assert argv[-2:] == ["--episodes", "3"]
    # the check before the training ran the same command line, the trained arm as a fresh target
    checked = json.loads(check_log.read_text())
    arms = argv.index("--arms") + 1
    assert checked[arms] == "random,target" and argv[arms].startswith("random,target:checkpoint=")
    assert checked[:arms] + checked[arms + 1:] == argv[:arms] + argv[arms + 1:] + ["--check"]


def _recarena_ab():
    """The real recarena-ab: $RECARENA_AB, else the one beside recarena-meta (where eval looks)."""
    if os.environ.get("RECARENA_AB"):
        return os.environ["RECARENA_AB"]
    try:
        ab = os.path.join(os.path.dirname(find_meta_binary()), "recarena-ab")
    except MetaNotFoundError:
        return None
    return ab if os.access(ab, os.X_OK) else None


@pytest.mark.parametrize("arms, named", [
    ("random,linucb:alpha=abc,target:checkpoint={checkpoint}:name=tuned",
     "arm 'linucb:alpha=abc' on task test:0: arm setting 'alpha'"),
    # the trained arm's own settings, checked on a fresh target before its checkpoint exists
    ("random,target:checkpoint={checkpoint}:lr=-1:name=tuned",
     "arm 'tuned' on task test:0: target: 'lr' is -1"),
    ("random,target:checkpoint={checkpoint}:nosuch=1", "unknown config key 'nosuch'"),
])
def test_eval_refuses_a_bad_arm_setting_before_any_training(tmp_path, capsys, monkeypatch, arms,
                                                            named):
    ab = _recarena_ab()
    if ab is None:
        pytest.skip("recarena-ab not built ($RECARENA_AB, or beside $RECARENA_META)")
    cfg = tmp_path / "best.cfg"
    cfg.write_text("env = ECommerce-v1\niters = 4\nval-every = 2\n")
    log = tmp_path / "meta_calls.jsonl"
    monkeypatch.setenv("FAKE_META_LOG", str(log))
    rc = cli.main(["eval", "--config", str(cfg), "--meta-bin", FAKE, "--ab-bin", ab, "--arms", arms,
                   "--test-tasks", "test:0-3", "--out", str(tmp_path / "ev")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "before any training" in err and named in err and "Traceback" not in err, err
    assert not log.exists(), "recarena-meta was started"
    assert not (tmp_path / "ev" / "test_report.json").exists()


def test_sigterm_stops_trials_and_requeues_them(tmp_path):
    space = tmp_path / "space.json"
    space.write_text(json.dumps(dict(SPACE, iters=40)))
    out = tmp_path / "out"
    env = dict(os.environ, FAKE_META_SLEEP="0.03")
    cmd = [sys.executable, "-m", "recarena.tune", "search", "--space", str(space), "--out",
           str(out), "--meta-bin", FAKE, "--trials", "3", "--pruner", "none"]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    metrics = out / "trials" / "00000" / "metrics.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (metrics.exists() and metrics.stat().st_size > 300):
        time.sleep(0.05)
    p.terminate()  # SIGTERM to the tuner alone
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130 and "run the same command" in err
    size = metrics.stat().st_size
    time.sleep(0.3)
    assert metrics.stat().st_size == size  # the trial's process was stopped with the tuner
    st = optuna.load_study(study_name="recarena-tune", storage="sqlite:///" + str(out / "study.db"))
    t0 = st.trials[0]
    assert t0.state == TrialState.FAIL and t0.user_attrs["interrupted"]
    waiting = [t for t in st.trials if t.state == TrialState.WAITING]
    assert len(waiting) == 1 and waiting[0].user_attrs["retry_of"] == 0
    r = subprocess.run(cmd, env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    st = optuna.load_study(study_name="recarena-tune", storage="sqlite:///" + str(out / "study.db"))
    assert len(counted(st.trials)) == 3
    assert st.trials[1].params == t0.params and st.trials[1].state == TrialState.COMPLETE


def test_compare_steps_to_reach_the_reference_best(tmp_path, capsys):
    def summ(d, mode, curve):
        d.mkdir()
        (d / "summary.json").write_text(json.dumps({
            "schema": "recarena-tune/1", "mode": mode, "metric": "score", "direction": "maximize",
            "env_steps_total": curve[-1][0], "best_so_far": curve}))
        return f"{d.name}={d}"
    rnd = summ(tmp_path / "random", "search", [[100, None], [200, 0.5], [400, 0.7], [800, 0.7]])
    asha = summ(tmp_path / "asha", "search", [[50, 0.2], [150, 0.75], [800, 0.9]])
    pbt = summ(tmp_path / "pbt", "pbt", [[400, 0.1], [800, 0.6]])
    assert cli.main(["compare", rnd, asha, pbt]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert rows[2] == ["random", "search", "800", "0.7", "400", "1.00", "0.50"]
    assert rows[3] == ["asha", "search", "800", "0.9", "150", "0.38", "0.19"]
    assert rows[4] == ["pbt", "pbt", "800", "0.6", "not reached", "-", "-"]
    assert cli.main(["compare", "nodir"]) == 2


def _summary(d, curve, total=None):
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps({
        "schema": "recarena-tune/1", "mode": "search", "metric": "score", "direction": "maximize",
        "env_steps_total": total or curve[-1][0], "best_so_far": curve}))
    return str(d)


def test_compare_over_seeds_prints_each_seed_and_the_median(tmp_path, capsys):
    # seed a: random reaches its best 0.7 at 400 of 1000; asha at 200 (0.50 of random's steps
    # to it, 0.20 of its budget). seed b: random's best 0.5 at 900 of 1000, asha at 600 (0.67,
    # 0.60). seed c: asha never reaches random's best 0.9 (an infinite fraction).
    rnd = [_summary(tmp_path / "a/random", [[400, 0.7], [1000, 0.7]]),
           _summary(tmp_path / "b/random", [[300, 0.1], [900, 0.5], [1000, 0.5]]),
           _summary(tmp_path / "c/random", [[500, 0.9], [1000, 0.9]])]
    asha = [_summary(tmp_path / "a/asha", [[100, 0.2], [200, 0.8], [1000, 0.8]]),
            _summary(tmp_path / "b/asha", [[600, 0.5], [1000, 0.6]]),
            _summary(tmp_path / "c/asha", [[500, 0.3], [1000, 0.8]])]
    assert cli.main(["compare", "random=" + ",".join(rnd), "asha=" + ",".join(asha),
                     "--labels", "a,b,c"]) == 0
    out = capsys.readouterr().out
    blocks = out.strip().split("\n\n")
    assert len(blocks) == 4
    assert blocks[0].startswith("seed a: random's best val 0.7")
    assert blocks[2].startswith("seed c: random's best val 0.9")

    def cells(block):
        return [[c.strip() for c in line.strip("|").split("|")]
                for line in block.splitlines()[1:] if line.startswith("| ")]
    assert cells(blocks[0])[2] == ["asha", "search", "1000", "0.8", "200", "0.50", "0.20"]
    assert cells(blocks[1])[2] == ["asha", "search", "1000", "0.6", "600", "0.67", "0.60"]
    assert cells(blocks[2])[2] == ["asha", "search", "1000", "0.8", "not reached", "-", "-"]
    med = cells(blocks[3])
    assert med[0][0] == "study"
    # random against itself: steps 400/900/500 of 1000, each 1.00 of its own steps to its best
    assert med[1] == ["random", "3", "1.00", "0.50", "2 of 3"]
    # asha: to_ref_best 0.50, 0.67, inf -> 0.67; of budget 0.20, 0.60, inf -> 0.60
    assert med[2] == ["asha", "3", "0.67", "0.60", "1 of 3"]


def test_compare_over_seeds_median_not_reached_and_bad_input(tmp_path, capsys):
    rnd = [_summary(tmp_path / f"{i}/random", [[500, 0.9], [1000, 0.9]]) for i in range(2)]
    asha = [_summary(tmp_path / "0/asha", [[400, 0.95]]), _summary(tmp_path / "1/asha",
                                                                   [[400, 0.1]])]
    assert cli.main(["compare", "random=" + ",".join(rnd), "asha=" + ",".join(asha)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("seed 1: ")
    last = out.strip().splitlines()[-1]
    # an even count: the median of 0.40 and never is never
    assert [c.strip() for c in last.strip("|").split("|")] == [
        "asha", "2", "not reached", "not reached", "1 of 2"]
    assert cli.main(["compare", "random=" + ",".join(rnd), "asha=" + asha[0]]) == 2
    assert "same number of directories" in capsys.readouterr().err
    # a reference seed with no completed trial: nothing to reach, said so
    empty = _summary(tmp_path / "2/random", [[500, None], [1000, None]])
    assert cli.main(["compare", f"random={rnd[0]},{empty}", "asha=" + ",".join(asha)]) == 0
    out = capsys.readouterr().out
    assert "seed 2: random's best val none (no completed trial)" in out
    assert out.strip().splitlines()[-1].replace(" ", "") == "|asha|2|notreached|notreached|1of2|"
    assert cli.main(["compare", "random=" + ",".join(rnd), "asha=" + ",".join(asha),
                     "--labels", "x"]) == 2
    assert cli.main(["compare", "random=" + rnd[0] + ",", "asha=" + asha[0]]) == 2


def test_spearman_and_rung_correlation():
    from recarena.tune.report import rung_correlation, spearman
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ties take their mean rank: ranks (1.5, 1.5, 3) against (1, 2, 3)
    assert spearman([5, 5, 7], [1, 2, 3]) == pytest.approx(0.8660254)
    assert spearman([1, 2], [1, 2]) is None and spearman([1, 1, 1], [1, 2, 3]) is None

    def t(state, value, iv):
        return {"state": state, "value": value, "intermediate": iv}
    summ = {"trials": [
        t("COMPLETE", 3.0, [[0, 0.1], [3, 1.0], [6, 3.0]]),
        t("COMPLETE", 2.0, [[0, 0.1], [4, 2.0], [6, 2.0]]),   # no point at 3: the next one, 4
        t("COMPLETE", 1.0, [[0, 0.1], [3, 3.0], [6, 1.0]]),
        t("PRUNED", None, [[0, 0.1], [3, 9.0]]),              # only completed trials count
        t("COMPLETE", 5.0, [[0, 0.1]])]}                      # never reached step 3
    rho, n = rung_correlation(summ, 3)
    assert n == 3 and rho == pytest.approx(-1.0)   # step-3 values 1, 2, 3 against 3, 2, 1
    rho, n = rung_correlation(summ, 6)
    assert n == 3 and rho == pytest.approx(1.0)


def test_compare_over_seeds_with_rungs(tmp_path, capsys):
    def summ(d, trials):
        d.mkdir(parents=True)
        (d / "summary.json").write_text(json.dumps({
            "schema": "recarena-tune/1", "mode": "search", "metric": "score",
            "direction": "maximize", "env_steps_total": 300,
            "best_so_far": [[100, 1.0], [200, 2.0], [300, 3.0]],
            "trials": [{"state": "COMPLETE", "value": v, "intermediate": [[3, e]]}
                       for v, e in trials]}))
        return str(d)
    a = summ(tmp_path / "a", [(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)])
    b = summ(tmp_path / "b", [(1.0, 3.0), (2.0, 1.0), (3.0, 2.0)])
    assert cli.main(["compare", f"random={a},{b}", f"asha={b},{a}", "--rungs", "3"]) == 0
    last = capsys.readouterr().out.strip().split("\n\n")[-1].splitlines()
    assert "Spearman" in last[0]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in last[3:]]
    assert cells == [["1", "3", "1.00"], ["2", "3", "-0.50"], ["median", "-", "0.25"]]
    # a rung past every val point: no correlation there, and the trials column still counts them
    assert cli.main(["compare", f"random={a},{b}", f"asha={b},{a}", "--rungs", "3,9"]) == 0
    last = capsys.readouterr().out.strip().split("\n\n")[-1].splitlines()
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in last[3:]]
    assert cells == [["1", "3", "1.00", "-"], ["2", "3", "-0.50", "-"], ["median", "-", "0.25", "-"]]
    assert cli.main(["compare", f"random={a},{b}", f"asha={b},{a}", "--rungs", "x"]) == 2
