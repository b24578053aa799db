"""RemoteEnv: Gymnasium's env checker, single-env types and semantics, seeding, render, close."""
from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import recarena


def _registered_and_served(served):
    return [n for n in served if f"recarena/{n}" in gym.registry]


def test_every_served_env_is_registered(address, served_envs):
    for n in recarena.KNOWN_ENVS:
        assert f"recarena/{n}" in gym.registry
    ids = recarena.register_envs(address)
    assert sorted(ids) == sorted(f"recarena/{n}" for n in served_envs)
    for n in recarena.KNOWN_ENVS:  # restore the address-free registration
        recarena.register(n)


def test_check_env_passes_for_every_registered_env(address, served_envs):
    names = _registered_and_served(served_envs)
    assert "ECommerce-v1" in names, "the server does not serve ECommerce-v1"
    for name in served_envs:  # and whatever else the server serves
        env = gym.make(f"recarena/{name}", address=address, render_mode="ansi") \
            if name in names else recarena.RemoteEnv(name, address=address, render_mode="ansi")
        try:
            check_env(env.unwrapped)
        finally:
            env.close()


@pytest.fixture
def env(address):
    e = recarena.RemoteEnv("ECommerce-v1", address=address, render_mode="ansi")
    yield e
    e.close()


def test_step_returns_python_scalars_and_valid_obs(env):
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs) and isinstance(info, dict)
    assert list(obs) == list(env.observation_space.spaces)  # Dict key order as the server sent it
    for _ in range(5):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        assert type(r) is float and type(term) is bool and type(trunc) is bool
        assert env.observation_space.contains(obs)
        assert not any(k.startswith("_") for k in info)
        if term or trunc:
            break


def test_whole_float_actions_play_as_ints_and_others_are_refused_before_sending(address):
    envs = [recarena.RemoteEnv("ECommerce-v1", address=address) for _ in range(2)]
    vec = recarena.RemoteVectorEnv("ECommerce-v1", num_envs=2, address=address)
    try:
        for e in envs:
            e.reset(seed=4)
        _, r_int, *_ = envs[0].step(np.array([2, 0, 1]))
        _, r_float, *_ = envs[1].step([2.0, 0.0, 1.0])
        assert r_int == r_float
        for bad, what in (([0.5, 1.0, 2.0], "action[0] is 0.5"),
                          ([0.0, np.nan, 2.0], "action[1] is nan"),
                          (["0", "1", "2"], "dtype <U1"),
                          ([0, 1], "2 entries")):
            with pytest.raises(recarena.BadActionError, match=re.escape(what)):
                envs[0].step(bad)
        vec.reset(seed=1)
        with pytest.raises(recarena.BadActionError, match=re.escape("action[1, 2] is 2.5")):
            vec.step(np.array([[0, 1, 2], [0, 1, 2.5]]))
        with pytest.raises(recarena.BadActionError, match="3 entries.*expected 6"):
            vec.step(np.array([0, 1, 2]))
        vec.step(np.array([[0, 1, 2], [3, 4, 5]], dtype=np.float32))  # whole floats play
    finally:
        for e in envs:
            e.close()
        vec.close()


def test_unknown_reset_options_are_refused_not_ignored(address):
    env = recarena.RemoteEnv("ECommerce-v1", address=address)
    vec = recarena.RemoteVectorEnv("ECommerce-v1", num_envs=2, address=address)
    try:
        for e in (env, vec):
            with pytest.raises(ValueError, match="unknown reset option.*'task'.*set_task"):
                e.reset(seed=1, options={"task": {"split": "test", "id": 3}})
            with pytest.raises(ValueError, match="must be a dict"):
                e.reset(seed=1, options=5)
        env.reset(seed=1, options={})
        vec.reset(seed=1, options={"reset_mask": np.array([True, False])})
    finally:
        env.close()
        vec.close()


def test_task_at_make_plays_as_set_task_then_reset(address):
    def rewards(env):
        env.reset(seed=2)
        env.action_space.seed(0)
        return [env.step(env.action_space.sample())[1] for _ in range(10)]
    task = {"split": "test", "id": 3}
    made = recarena.RemoteEnv("ECommerce-v1", address=address, seed=5, task=task)
    later = recarena.RemoteEnv("ECommerce-v1", address=address, seed=5)
    default = recarena.RemoteEnv("ECommerce-v1", address=address, seed=5)
    vec = recarena.RemoteVectorEnv("ECommerce-v1", num_envs=2, address=address, task=task)
    try:
        later.set_task(task)
        assert made.task["id"] == 3 and vec.task["id"] == 3
        assert rewards(made) == rewards(later) != rewards(default)
    finally:
        for e in (made, later, default, vec):
            e.close()
    with pytest.raises(recarena.BadConfigError, match="split 'nope'"):
        recarena.RemoteEnv("ECommerce-v1", address=address, task={"split": "nope", "id": 1})


def test_same_seed_same_trajectory(address):
    def run(seed):
        e = recarena.RemoteEnv("ECommerce-v1", address=address)
        e.action_space.seed(0)
        obs, _ = e.reset(seed=seed)
        out = [obs]
        for _ in range(20):
            obs, r, term, trunc, _ = e.step(e.action_space.sample())
            out.append((obs, r, term, trunc))
            if term or trunc:
                obs, _ = e.reset()
                out.append(obs)
        e.close()
        return out
    a, b, c = run(11), run(11), run(12)
    assert gym.utils.env_checker.data_equivalence(a, b, exact=True)
    assert not gym.utils.env_checker.data_equivalence(a, c)


def test_unseeded_envs_differ(address):
    e1 = recarena.RemoteEnv("ECommerce-v1", address=address)
    e2 = recarena.RemoteEnv("ECommerce-v1", address=address)
    try:
        o1, _ = e1.reset()
        o2, _ = e2.reset()
        assert not gym.utils.env_checker.data_equivalence(o1, o2)
    finally:
        e1.close()
        e2.close()


def test_episode_end_needs_reset_then_continues(address):
    e = recarena.RemoteEnv("ECommerce-v1", address=address, max_episode_steps=3)
    try:
        e.reset(seed=0)
        for t in range(3):
            _, _, term, trunc, _ = e.step(e.action_space.sample())
            if term:
                break
        assert term or trunc
        assert not (trunc and t < 2)
        with pytest.raises(recarena.NeedsResetError):
            e.step(e.action_space.sample())
        e.reset()
        e.step(e.action_space.sample())
    finally:
        e.close()


def test_render_ansi_returns_text(env):
    env.reset(seed=0)
    text = env.render()
    assert isinstance(text, str) and text


def test_close_is_idempotent_and_later_calls_raise(env):
    env.reset(seed=0)
    env.close()
    env.close()
    with pytest.raises(gym.error.ClosedEnvironmentError):
        env.step(env.action_space.sample())


def test_set_task_changes_the_population_from_the_next_reset(env):
    a, _ = env.reset(seed=4)
    desc = env.set_task({"split": "train", "id": 3})
    assert desc.get("split") == "train" and desc.get("id") == 3
    b, _ = env.reset(seed=4)
    assert not gym.utils.env_checker.data_equivalence(a, b)
    with pytest.raises(recarena.BadConfigError):
        env.set_task({"split": "no-such-split", "id": 1})
