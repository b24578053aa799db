"""RemoteVectorEnv: the same observations and rewards as N single envs with matching seeds in every
autoreset mode, reset_mask, per-env seeds, info masks, make_vec."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import recarena
from recarena.env import unbatch

N = 4
STEPS = 25
LIMIT = 6  # short episodes, so every mode autoresets several times


def _eq(a, b):
    return gym.utils.env_checker.data_equivalence(a, b, exact=True)


def _row(batch, i):
    return unbatch(batch, i)


@pytest.mark.parametrize("mode", list(AutoresetMode), ids=lambda m: m.value)
def test_vector_matches_single_envs(address, mode):
    venv = recarena.RemoteVectorEnv("ECommerce-v1", N, address=address, autoreset_mode=mode,
                                    max_episode_steps=LIMIT)
    singles = [recarena.RemoteEnv("ECommerce-v1", address=address, max_episode_steps=LIMIT)
               for _ in range(N)]
    try:
        assert venv.metadata["autoreset_mode"] == mode
        assert venv.single_observation_space == singles[0].observation_space
        assert venv.single_action_space == singles[0].action_space
        vobs, _ = venv.reset(seed=100)
        sobs = [e.reset(seed=100 + i)[0] for i, e in enumerate(singles)]
        for i in range(N):
            assert _eq(_row(vobs, i), sobs[i])
        venv.action_space.seed(7)
        autoreset = np.zeros(N, bool)
        ends = 0
        for t in range(STEPS):
            actions = venv.action_space.sample()
            vobs, vrew, vterm, vtrunc, vinfo = venv.step(actions)
            assert vrew.shape == (N,) and vterm.dtype == np.bool_ and vtrunc.dtype == np.bool_
            for i, e in enumerate(singles):
                a = actions[i]
                if mode == AutoresetMode.NEXT_STEP and autoreset[i]:
                    o, r, te, tr = e.reset()[0], 0.0, False, False
                else:
                    o, r, te, tr, _ = e.step(a)
                    if mode == AutoresetMode.SAME_STEP and (te or tr):
                        assert vinfo["_final_obs"][i]
                        assert _eq(vinfo["final_obs"][i], o), f"final_obs of env {i} at {t}"
                        o = e.reset()[0]
                assert _eq(_row(vobs, i), o), f"obs of env {i} at step {t}"
                assert vrew[i] == np.float32(r), f"reward of env {i} at step {t}"
                assert (bool(vterm[i]), bool(vtrunc[i])) == (te, tr)
            done = vterm | vtrunc
            ends += int(done.sum())
            if mode == AutoresetMode.SAME_STEP:
                assert np.array_equal(vinfo.get("_final_obs", np.zeros(N, bool)), done)
            if mode == AutoresetMode.DISABLED and done.any():
                vobs, _ = venv.reset(options={"reset_mask": done})
                for i in np.flatnonzero(done):
                    assert _eq(_row(vobs, i), singles[i].reset()[0])
            autoreset = done
        assert ends > 0, "no episode ended; the test did not exercise autoreset"
    finally:
        venv.close()
        for e in singles:
            e.close()


def test_disabled_mode_needs_reset_mask(address):
    venv = recarena.RemoteVectorEnv("ECommerce-v1", 2, address=address,
                                    autoreset_mode="disabled", max_episode_steps=1)
    try:
        venv.reset(seed=0)
        _, _, term, trunc, _ = venv.step(venv.action_space.sample())
        assert (term | trunc).all()
        with pytest.raises(recarena.NeedsResetError):
            venv.step(venv.action_space.sample())
        with pytest.raises(ValueError):
            venv.reset(options={"reset_mask": np.zeros(2, bool)})
        with pytest.raises(TypeError):
            venv.reset(options={"reset_mask": [True, True]})
        venv.reset(options={"reset_mask": np.array([True, True])})
        venv.step(venv.action_space.sample())
    finally:
        venv.close()


def test_reset_mask_resets_only_masked_envs(address):
    venv = recarena.RemoteVectorEnv("ECommerce-v1", 3, address=address)
    try:
        obs0, _ = venv.reset(seed=5)
        obs0 = {k: np.array(v) for k, v in obs0.items()}
        venv.step(venv.action_space.sample())
        obs1, _ = venv.step(venv.action_space.sample())[:2]
        obs1 = {k: np.array(v) for k, v in obs1.items()}
        obs2, _ = venv.reset(seed=[5, 6, 7], options={"reset_mask": np.array([True, False, False])})
        assert _eq(_row(obs2, 0), _row(obs0, 0))  # env 0 back to its seeded start
        assert _eq(_row(obs2, 1), _row(obs1, 1))  # env 1 untouched
    finally:
        venv.close()


def test_per_env_seeds_and_none_entries(address):
    v1 = recarena.RemoteVectorEnv("ECommerce-v1", 3, address=address)
    v2 = recarena.RemoteVectorEnv("ECommerce-v1", 3, address=address)
    try:
        a, _ = v1.reset(seed=[9, 4, 2])
        b, _ = v2.reset(seed=9)
        assert _eq(_row(a, 0), _row(b, 0)) and not _eq(_row(a, 1), _row(b, 1))
        c, _ = v2.reset(seed=[None, 4, None])
        assert _eq(_row(c, 1), _row(a, 1))
        with pytest.raises(ValueError):
            v1.reset(seed=[1, 2])
    finally:
        v1.close()
        v2.close()


def test_infos_are_dicts_of_arrays_with_masks(address):
    venv = recarena.RemoteVectorEnv("ECommerce-v1", 5, address=address)
    try:
        venv.reset(seed=1)
        _, _, _, _, info = venv.step(venv.action_space.sample())
        assert isinstance(info, dict)
        keys = [k for k in info if not k.startswith("_")]
        for k in keys:
            if k in ("final_obs", "final_info"):
                continue
            assert isinstance(info[k], np.ndarray) and info[k].shape[0] == 5, k
            m = info["_" + k]
            assert m.dtype == np.bool_ and m.shape == (5,), k
    finally:
        venv.close()


def test_make_vec_uses_the_server_batch(address):
    envs = gym.make_vec("recarena/ECommerce-v1", num_envs=8, address=address,
                        autoreset_mode=AutoresetMode.SAME_STEP, render_mode="ansi")
    try:
        assert isinstance(envs.unwrapped, recarena.RemoteVectorEnv)
        assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
        obs, _ = envs.reset(seed=0)
        assert envs.observation_space.contains(obs)
        obs, *_ = envs.step(envs.action_space.sample())
        assert envs.observation_space.contains(obs)
        texts = envs.render()
        assert len(texts) == 8 and all(isinstance(t, str) for t in texts)
    finally:
        envs.close()
        envs.close()
