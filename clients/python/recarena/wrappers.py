"""recarena.wrappers - small Gymnasium wrappers for using recarena envs with generic RL libraries."""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from .spaces import Slate, dedupe_slates


class UniqueSlate(gym.ActionWrapper):
    """Exposes a Slate action space as a plain MultiDiscrete and repairs repeated indices before
    they reach the server (which would answer BAD_ACTION). For libraries whose MultiDiscrete
    policies sample each slot independently (Stable-Baselines3, CleanRL)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.action_space
        if not isinstance(space, Slate):
            raise TypeError(f"UniqueSlate needs a Slate action space, got {space}")
        self.action_space = gym.spaces.MultiDiscrete(space.nvec, dtype=space.dtype,
                                                     start=space.start)
        self._k = int(space.nvec.reshape(-1)[0])

    def action(self, action: Any) -> np.ndarray:
        return dedupe_slates(np.asarray(action) - self.action_space.start, self._k) \
            + self.action_space.start
