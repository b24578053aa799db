#!/usr/bin/env python3
"""Stable-Baselines3 PPO on recarena/ECommerce-v1 through the Python client, against random.

Needs torch and stable-baselines3 (not in scripts/requirements.txt; large):
    .venv/bin/pip install stable-baselines3
    .venv/bin/python examples/python/sb3_ppo.py [--steps 100000] [--envs 16] [--address ADDR]

The whole batch of training envs is ONE RemoteVectorEnv (one server message per step), adapted to
SB3's VecEnv interface below: observations flattened (the Dict of user, candidates, response),
same_step autoreset so that SB3 gets its terminal_observation, and slates with repeated candidates
repaired (SB3's MultiDiscrete head samples each slot independently; the server refuses repeats).
Evaluation: mean episode return (revenue) of the trained policy and of a uniformly random one on
the same seeds.
"""
import argparse
import time

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecEnv, VecMonitor, VecNormalize

import recarena
from recarena.spaces import dedupe_slates


def flatten(obs, keys):
    """Batched Dict obs -> (N, D) float32, keys in the space's order (as gymnasium's flatten)."""
    n = obs[keys[0]].shape[0]
    return np.concatenate([obs[k].reshape(n, -1) for k in keys], axis=1).astype(np.float32)


class RecarenaVecEnv(VecEnv):
    """SB3 VecEnv over one RemoteVectorEnv (same_step autoreset)."""

    def __init__(self, num_envs, seed, **kwargs):
        self.render_mode = None
        self.venv = recarena.RemoteVectorEnv("ECommerce-v1", num_envs, seed=seed,
                                             autoreset_mode=AutoresetMode.SAME_STEP, **kwargs)
        single = self.venv.single_observation_space
        self.keys = list(single.spaces)
        flat = spaces.flatten_space(single)
        act = self.venv.single_action_space
        self.num_candidates = int(act.nvec[0])
        super().__init__(num_envs, spaces.Box(flat.low.astype(np.float32),
                                              flat.high.astype(np.float32), dtype=np.float32),
                         spaces.MultiDiscrete(act.nvec))
        self._seed = seed
        self._actions = None

    def reset(self):
        obs, _ = self.venv.reset(seed=self._seed)
        self._seed = None  # later resets continue each env's stream
        return flatten(obs, self.keys)

    def step_async(self, actions):
        self._actions = dedupe_slates(actions, self.num_candidates)

    def step_wait(self):
        obs, rew, term, trunc, info = self.venv.step(self._actions)
        done = term | trunc
        infos = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(done):
            final = info["final_obs"][i]
            infos[i]["terminal_observation"] = flatten(
                {k: final[k][None] for k in self.keys}, self.keys)[0]
            infos[i]["TimeLimit.truncated"] = bool(trunc[i] and not term[i])
        return flatten(obs, self.keys), rew.astype(np.float32), done, infos

    def close(self):
        self.venv.close()

    def get_attr(self, name, indices=None):
        return [getattr(self, name)] * len(self._idx(indices))

    def set_attr(self, name, value, indices=None):
        setattr(self, name, value)

    def env_method(self, name, *args, indices=None, **kwargs):
        raise NotImplementedError(name)

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False] * len(self._idx(indices))

    def seed(self, seed=None):
        self._seed = seed
        return [seed] * self.num_envs

    def _idx(self, indices):
        return range(self.num_envs) if indices is None else \
            ([indices] if isinstance(indices, int) else list(indices))


def evaluate(policy, episodes, seed, **kwargs):
    """Mean return over the first `episodes` episodes of a vector env seeded with `seed`.
    policy(flat_obs) -> actions (N, k)."""
    n = min(episodes, 64)
    venv = recarena.RemoteVectorEnv("ECommerce-v1", n, seed=seed, **kwargs)
    keys = list(venv.single_observation_space.spaces)
    obs, _ = venv.reset(seed=seed)
    ret = np.zeros(n)
    done_returns = []
    ended = np.zeros(n, bool)
    while len(done_returns) < episodes:
        actions = dedupe_slates(policy(flatten(obs, keys)), int(venv.single_action_space.nvec[0]))
        obs, rew, term, trunc, _ = venv.step(actions)
        active = ~ended  # next_step autoreset: a step after an end is the reset step
        ret += np.where(active, rew, 0.0)
        finished = (term | trunc) & active
        done_returns += ret[finished].tolist()
        ret[finished] = 0.0
        ended = term | trunc
    venv.close()
    return float(np.mean(done_returns[:episodes])), float(np.std(done_returns[:episodes]) /
                                                           np.sqrt(episodes))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--envs", type=int, default=16)
    ap.add_argument("--episodes", type=int, default=500)
    ap.add_argument("--address", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reward", default=None,
                    help="the sim's reward config (revenue by default; clicks, purchases, margin)")
    args = ap.parse_args()
    kw = {"address": args.address} if args.address else {}
    if args.reward:
        kw["config"] = {"reward": args.reward}

    # Revenue per step ranges over hundreds: normalise observations and rewards for PPO.
    env = VecNormalize(VecMonitor(RecarenaVecEnv(args.envs, args.seed, **kw)), gamma=0.9)
    model = PPO("MlpPolicy", env, n_steps=128, batch_size=512, learning_rate=3e-4, gamma=0.9,
                ent_coef=0.005, seed=args.seed, verbose=0, device="cpu",
                policy_kwargs={"net_arch": [128, 128]})
    t0 = time.time()
    model.learn(total_timesteps=args.steps)
    train_s = time.time() - t0
    env.close()

    rng = np.random.default_rng(args.seed)
    k, K = 3, 20
    random_policy = lambda o: np.argsort(rng.random((o.shape[0], K)), axis=1)[:, :k]  # noqa: E731
    env.training = False
    ppo_policy = lambda o: model.predict(env.normalize_obs(o), deterministic=True)[0]  # noqa: E731
    eval_seed = 10_000 + args.seed
    r_mean, r_se = evaluate(random_policy, args.episodes, eval_seed, **kw)
    p_mean, p_se = evaluate(ppo_policy, args.episodes, eval_seed, **kw)
    print(f"PPO trained {args.steps} steps on {args.envs} envs in {train_s:.0f} s "
          f"({args.steps / train_s:,.0f} env-steps/s incl. learning)")
    print(f"mean episode return ({args.reward or 'default reward'}) over {args.episodes} "
          "episodes (same seeds), +- standard error:")
    print(f"  random {r_mean:8.2f} +- {r_se:.2f}")
    print(f"  PPO    {p_mean:8.2f} +- {p_se:.2f}   ({p_mean / max(r_mean, 1e-9):.2f}x random)")


if __name__ == "__main__":
    main()
