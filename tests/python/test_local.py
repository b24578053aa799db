"""The in-process backend (recarena.local): the same spaces, tasks, trajectories, infos and renders
as the server path for every simulator and autoreset mode, check_env, vector equals singles, the
same exception classes for the same bad input, and the backend choice."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env, data_equivalence
from gymnasium.vector import AutoresetMode

import recarena
from recarena import local
from recarena.client import Client
from recarena.env import unbatch

if not local.available():
    pytest.skip("librecarena_local.so is not built", allow_module_level=True)

STEPS = 120


def _eq(a, b):
    return data_equivalence(a, b, exact=True)


@pytest.mark.parametrize("name", recarena.KNOWN_ENVS)
def test_single_env_equals_the_server_path(address, name):
    cfg = {"task": {"split": "train", "id": 2}}
    a = recarena.RemoteEnv(name, address=address, seed=3, render_mode="ansi", config=cfg)
    b = recarena.RemoteEnv(name, backend="local", seed=3, render_mode="ansi", config=cfg)
    try:
        assert isinstance(b.client, local.LocalClient) and isinstance(a.client, Client)
        assert a.observation_space == b.observation_space
        assert a.action_space == b.action_space and type(a.action_space) is type(b.action_space)
        assert (a.task, a.reward_range, a.max_episode_steps, a.metadata) == \
            (b.task, b.reward_range, b.max_episode_steps, b.metadata)
        assert _eq(a.reset(seed=5), b.reset(seed=5))
        a.action_space.seed(1)
        ends = 0
        for t in range(STEPS):
            act = a.action_space.sample()
            ra, rb = a.step(act), b.step(act)
            assert _eq(ra, rb), f"{name} step {t}"
            assert type(rb[1]) is float and type(rb[2]) is bool
            if t == 3:
                assert a.render() == b.render()
            if ra[2] or ra[3]:
                ends += 1
                assert _eq(a.reset(), b.reset())
        assert ends > 0
        # set_task: same description, same next episode
        task = {"params": {"world_seed": 9}}
        assert a.set_task(task) == b.set_task(task)
        assert _eq(a.reset(seed=1), b.reset(seed=1))
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("mode", list(AutoresetMode), ids=lambda m: m.value)
@pytest.mark.parametrize("name", recarena.KNOWN_ENVS)
def test_vector_env_equals_the_server_path(address, name, mode):
    n = 5
    kw = dict(autoreset_mode=mode, max_episode_steps=7, seed=11)
    a = recarena.RemoteVectorEnv(name, n, address=address, **kw)
    b = recarena.RemoteVectorEnv(name, n, backend="local", **kw)
    try:
        assert a.single_observation_space == b.single_observation_space
        assert a.metadata == b.metadata
        assert _eq(a.reset(seed=[4, 5, 6, 7, 8]), b.reset(seed=[4, 5, 6, 7, 8]))
        a.action_space.seed(2)
        saw_end = False
        for t in range(40):
            act = a.action_space.sample()
            ra, rb = a.step(act), b.step(act)
            assert _eq(ra[:4], rb[:4]), f"{name} {mode} step {t}"
            assert ra[4].keys() == rb[4].keys()
            for k in ra[4]:
                if k == "final_obs":
                    for i in range(n):
                        assert _eq(ra[4][k][i], rb[4][k][i])
                else:
                    assert _eq(ra[4][k], rb[4][k]), f"info {k} at step {t}"
            done = ra[2] | ra[3]
            saw_end |= bool(done.any())
            if mode == AutoresetMode.DISABLED and done.any():
                opts = {"reset_mask": done}
                assert _eq(a.reset(options=opts), b.reset(options=opts))
        assert saw_end
    finally:
        a.close()
        b.close()


def test_local_vector_equals_local_singles():
    n = 4
    venv = recarena.RemoteVectorEnv("News-v1", n, backend="local",
                                    autoreset_mode=AutoresetMode.SAME_STEP, max_episode_steps=6)
    singles = [recarena.RemoteEnv("News-v1", backend="local", max_episode_steps=6)
               for _ in range(n)]
    try:
        vobs, _ = venv.reset(seed=100)
        for i, e in enumerate(singles):
            assert _eq(unbatch(vobs, i), e.reset(seed=100 + i)[0])
        venv.action_space.seed(3)
        for t in range(30):
            actions = venv.action_space.sample()
            vobs, vrew, vterm, vtrunc, vinfo = venv.step(actions)
            for i, e in enumerate(singles):
                o, r, te, tr, _ = e.step(actions[i])
                if te or tr:
                    assert _eq(vinfo["final_obs"][i], o)
                    o = e.reset()[0]
                assert _eq(unbatch(vobs, i), o) and vrew[i] == np.float32(r)
                assert (bool(vterm[i]), bool(vtrunc[i])) == (te, tr)
    finally:
        venv.close()
        for e in singles:
            e.close()


def test_local_batch_of_many_envs_uses_threads_and_matches_one_thread():
    """Batches of 64+ fan out over worker threads; the results must not depend on it."""
    outs = []
    for threads in (0, 3):
        c = local.LocalClient(threads=threads)
        made = c.make("ECommerce-v1", 130, seed=5)
        h, nvec = made["handle"], made["action_space"].nvec
        c.reset(h)
        rng = np.random.default_rng(0)
        for _ in range(20):
            act = np.argsort(rng.random((130, int(nvec[0]))), axis=1)[:, :len(nvec)]
            r = c.step(h, act)
        outs.append(r)
        c.close()
    assert _eq(outs[0], outs[1])


@pytest.mark.parametrize("name", recarena.KNOWN_ENVS)
def test_check_env_passes_and_gym_make_selects_local(name):
    env = gym.make(f"recarena/{name}", backend="local", render_mode="ansi")
    try:
        assert isinstance(env.unwrapped.client, local.LocalClient)
        check_env(env.unwrapped)
    finally:
        env.close()
    envs = gym.make_vec(f"recarena/{name}", num_envs=3, backend="local")
    try:
        assert isinstance(envs.unwrapped.client, local.LocalClient)
        obs, _ = envs.reset(seed=0)
        assert envs.observation_space.contains(obs)
        obs, *_ = envs.step(envs.action_space.sample())
        assert envs.observation_space.contains(obs)
    finally:
        envs.close()


def test_returned_arrays_survive_the_next_step():
    env = recarena.RemoteEnv("ECommerce-v1", backend="local")
    try:
        obs, _ = env.reset(seed=0)
        keep = {k: v.copy() for k, v in obs.items()}
        env.step(env.action_space.sample())
        assert _eq(obs, keep)
    finally:
        env.close()


def test_default_backend_is_local_without_an_address_and_the_server_with_one(address):
    e = recarena.RemoteEnv("ECommerce-v1")
    f = recarena.RemoteEnv("ECommerce-v1", address=address)
    try:
        assert isinstance(e.client, local.LocalClient)
        assert isinstance(f.client, Client)
    finally:
        e.close()
        f.close()
    with pytest.raises(ValueError):
        recarena.RemoteEnv("ECommerce-v1", backend="local", address=address)
    with pytest.raises(ValueError):
        recarena.RemoteEnv("ECommerce-v1", backend="gpu")


# ------------------------------------------------------------------------------------------------
# The same exception class (and env index) for the same bad input on both backends

_MAKE_CASES = [
    dict(env="Nope-v1", num_envs=1),
    dict(env="ECommerce-v1", num_envs=0),
    dict(env="ECommerce-v1", num_envs=10 ** 6),
    dict(env="ECommerce-v1", num_envs=1, config={"no_such_key": 1}),
    dict(env="ECommerce-v1", num_envs=1, config={"num_candidates": "many"}),
    dict(env="ECommerce-v1", num_envs=1, config={"num_candidates": [1, 2]}),
    dict(env="ECommerce-v1", num_envs=1, config={"num_candidates": float("nan")}),
    dict(env="ECommerce-v1", num_envs=1, config={"": 1}),
    dict(env="ECommerce-v1", num_envs=1, config={"task": {"split": "train"}}),
    dict(env="ECommerce-v1", num_envs=1, config={"task": {"split": "nope", "id": 1}}),
    dict(env="ECommerce-v1", num_envs=1, config={"task": {"params": {"nope": 1}}}),
    dict(env="ECommerce-v1", num_envs=1, config={"task": 3}),
    dict(env="ECommerce-v1", num_envs=1, config={"task": {"split": "train", "id": 1,
                                                         "params": {}}}),
    dict(env="ECommerce-v1", num_envs=1, autoreset="sometimes"),
    dict(env="ECommerce-v1", num_envs=1, max_episode_steps=0),
    dict(env="ECommerce-v1", num_envs=1, seed=-1),
    dict(env="ECommerce-v1", num_envs="x"),
    dict(env="ECommerce-v1", num_envs=1, config={"dynamics": {"drift": "yes"}}),
    dict(env="ECommerce-v1", num_envs=1, config={"reward_weights": {"a" * 300: 1}}),
    # beyond 64 bits (msgpack's OverflowError over the wire), not whole, not a string
    dict(env="ECommerce-v1", num_envs=1, seed=2 ** 64),
    dict(env="ECommerce-v1", num_envs=1, seed=1.5),
    dict(env="ECommerce-v1", num_envs=2.5),
    dict(env="ECommerce-v1", num_envs=1, max_episode_steps=2.5),
    dict(env="ECommerce-v1", num_envs=1, config={"num_candidates": 10 ** 400}),
    # out of range and so big that its byte estimate is over every budget: BAD_CONFIG, not LIMIT
    dict(env="ECommerce-v1", num_envs=1, config={"num_candidates": 10 ** 12}),
    dict(env="News-v1", num_envs=64, config={"publish_rate": 10 ** 9, "max_age": 10 ** 9}),
    dict(env="ECommerce-v1", num_envs=1, config={"task": {"split": "test", "id": 2 ** 64}}),
    dict(env=None, num_envs=1),
    dict(env=123, num_envs=1),
]


def _outcome(fn):
    try:
        fn()
    except recarena.RecarenaError as e:
        return type(e), e.code, e.env_index
    except (ValueError, TypeError) as e:  # raised by the client before anything is sent
        return type(e), None, None
    return None


@pytest.mark.parametrize("case", _MAKE_CASES, ids=lambda c: str(c)[:60])
def test_bad_make_gets_the_same_error(client, case):
    lc = local.LocalClient()
    try:
        want = _outcome(lambda: client.make(**case))
        got = _outcome(lambda: lc.make(**case))
        assert want is not None and got == want, f"server {want}, local {got}"
    finally:
        lc.close()


def test_a_scalar_mask_or_action_for_one_env_gets_the_same_error(client):
    # A 0-d reset_mask (or set_task mask, or action) is no array of one per env: in-process it was
    # BAD_REQUEST (BAD_ACTION) while the server accepted it, as the client sent it with shape [1].
    lc = local.LocalClient()
    try:
        cfg = {"slate_size": 1}
        ha = client.make("ECommerce-v1", 1, seed=1, config=cfg)
        hb = lc.make("ECommerce-v1", 1, seed=1, config=cfg)
        client.reset(ha["handle"], seed=0)
        lc.reset(hb["handle"], seed=0)
        cases = [
            lambda c, h: c.reset(h, options={"reset_mask": np.array(True)}),
            lambda c, h: c.set_task(h, {"split": "train", "id": 1}, mask=np.array(True)),
            lambda c, h: c.step(h, np.array(0, dtype=np.int64)),
        ]
        for i, fn in enumerate(cases):
            want = _outcome(lambda: fn(client, ha["handle"]))
            got = _outcome(lambda: fn(lc, hb["handle"]))
            assert want is not None and got == want, f"case {i}: server {want}, local {got}"
    finally:
        lc.close()


def _step_cases(n, K, k):
    ok = np.tile(np.arange(k), (n, 1))
    rep = ok.copy()
    rep[1, 2] = rep[1, 0]
    big = ok.copy()
    big[2, 0] = K
    neg = ok.copy()
    neg[0, k - 1] = -1
    return [ok[:, :3], ok.reshape(-1), ok[:2], rep, big, neg, ok.astype(np.float32),
            ok.astype(np.uint8), ok.astype(np.int32)]


def test_bad_step_reset_set_task_render_get_the_same_errors(client):
    lc = local.LocalClient()
    try:
        ha = client.make("ECommerce-v1", 3, seed=1, autoreset="disabled", max_episode_steps=2)
        hb = lc.make("ECommerce-v1", 3, seed=1, autoreset="disabled", max_episode_steps=2)
        K, k = int(ha["action_space"].nvec[0]), len(ha["action_space"].nvec)
        pairs = [(lambda c, h: c.step(h, np.tile(np.arange(k), (3, 1))))]  # never reset
        pairs += [(lambda c, h, a=a: c.step(h, a)) for a in _step_cases(3, K, k)]
        pairs += [
            lambda c, h: c.reset(h, seed=[1, 2]),
            lambda c, h: c.reset(h, options={"reset_mask": np.ones(2, bool)}),
            lambda c, h: c.set_task(h, {"split": "train"}),
            lambda c, h: c.set_task(h, 7),
            lambda c, h: c.set_task(h, {"params": 3}),
            lambda c, h: c.set_task(h, {"split": "train", "id": -1}),
            lambda c, h: c.reset(h, seed=-3),
            lambda c, h: c.reset(h, seed=[0, 1, "x"]),
            lambda c, h: c.reset(h, seed=2 ** 64),
            lambda c, h: c.reset(h, seed=[0, 2 ** 70, 1]),
            lambda c, h: c.reset(h, seed=1.5),
            lambda c, h: c.set_task(h, {"params": {"nope": 1}}),
            lambda c, h: c.set_task(h, {"split": "test", "id": 4}, mask=np.ones(5, bool)),
            lambda c, h: c.render(h, 3),
            lambda c, h: c.render(h, -1),
        ]
        # after a reset: the shape and value checks, then NEEDS_RESET past the time limit
        for i, fn in enumerate(pairs):
            if i == 1:
                client.reset(ha["handle"], seed=0)
                lc.reset(hb["handle"], seed=0)
            want = _outcome(lambda: fn(client, ha["handle"]))
            got = _outcome(lambda: fn(lc, hb["handle"]))
            assert got == want, f"case {i}: server {want}, local {got}"
        good = np.tile(np.arange(k), (3, 1))
        client.reset(ha["handle"], seed=0)
        lc.reset(hb["handle"], seed=0)
        for _ in range(2):
            client.step(ha["handle"], good)
            lc.step(hb["handle"], good)
        want = _outcome(lambda: client.step(ha["handle"], good))
        got = _outcome(lambda: lc.step(hb["handle"], good))
        assert want is not None and want[0] is recarena.NeedsResetError and got == want
        lc.close_handle(hb["handle"])
        with pytest.raises(recarena.NoSuchHandleError):
            lc.step(hb["handle"], good)
    finally:
        lc.close()
