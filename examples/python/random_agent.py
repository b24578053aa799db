#!/usr/bin/env python3
"""The smallest use of recarena from Python: a random recommender on ECommerce-v1.

gymnasium.make starts a local recarena-server (found via $RECARENA_SERVER, PATH or the checkout's
build/) and stops it on close. Pass an address to use a running server instead:
    python examples/python/random_agent.py [tcp://127.0.0.1:5555]
"""
import sys

import gymnasium as gym

import recarena  # noqa: F401  (registers recarena/ECommerce-v1)

kwargs = {"address": sys.argv[1]} if len(sys.argv) > 1 else {}
env = gym.make("recarena/ECommerce-v1", render_mode="ansi", **kwargs)
obs, info = env.reset(seed=0)
print(env.render())
total, steps, episodes = 0.0, 0, 0
while episodes < 5:
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    total += reward
    steps += 1
    if terminated or truncated:
        episodes += 1
        obs, info = env.reset()
print(env.render())
print(f"random policy: {episodes} episodes, {steps} steps, mean return {total / episodes:.2f}")
env.close()
