"""Slate: the slate action space samples distinct candidates; dedupe_slates and UniqueSlate repair
repeats for libraries with independent per-slot heads."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import batch_space

import recarena
from recarena.spaces import Slate, as_slate, dedupe_slates
from recarena.wrappers import UniqueSlate


def test_slate_samples_never_repeat_and_batch_stays_a_slate():
    s = as_slate(gym.spaces.MultiDiscrete([5, 5, 5]))
    assert isinstance(s, Slate) and s == gym.spaces.MultiDiscrete([5, 5, 5])
    b = batch_space(s, 200)
    b.seed(0)
    x = b.sample()
    assert isinstance(b, Slate) and x.shape == (200, 3) and b.contains(x)
    assert all(len(set(row)) == 3 for row in x.tolist())
    assert not s.contains(np.array([1, 1, 2]))


def test_non_slate_spaces_are_left_alone():
    for sp in (gym.spaces.Discrete(4), gym.spaces.MultiDiscrete([3, 4]),
               gym.spaces.MultiDiscrete([[3, 3], [3, 3]])):
        assert type(as_slate(sp)) is type(sp)


def test_dedupe_keeps_first_occurrences():
    a = np.array([[1, 1, 1], [0, 2, 0], [3, 4, 5]])
    out = dedupe_slates(a, 20)
    assert out.tolist() == [[1, 0, 2], [0, 2, 1], [3, 4, 5]]


def test_unique_slate_wrapper_makes_any_multidiscrete_action_valid(address):
    env = UniqueSlate(recarena.RemoteEnv("ECommerce-v1", address=address))
    try:
        assert type(env.action_space) is gym.spaces.MultiDiscrete
        env.reset(seed=0)
        env.step(np.zeros(env.action_space.shape, dtype=np.int64))  # all-same slate is repaired
    finally:
        env.close()
