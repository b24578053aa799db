"""Sharded RemoteVectorEnv (recarena.shard): over 2 servers it answers exactly what 1 server does
with the same seeds, in every autoreset mode, with seed lists, reset masks and set_task; requests
go out to every shard before any reply is awaited; a dead shard ends a step at the deadline with an
error naming its address."""
from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence
from gymnasium.vector import AutoresetMode

import recarena
from recarena import shard
from recarena.client import Client
from recarena.server import LocalServer

N = 5  # uneven over 2 servers: shards of 3 and 2 envs
STEPS = 30
LIMIT = 4  # short episodes: every mode autoresets several times per shard


def _eq(a, b):
    return data_equivalence(a, b, exact=True)


@pytest.fixture(scope="module")
def second(server_binary):
    srv = LocalServer(server_binary, transport="tcp")
    try:
        with Client(srv.endpoint, timeout=10) as c:
            c.ping()
        yield srv.endpoint
    finally:
        srv.stop()


def _pair(address, second, mode, n=N, **kw):
    one = recarena.RemoteVectorEnv("ECommerce-v1", n, address=address, autoreset_mode=mode,
                                   max_episode_steps=LIMIT, seed=11, **kw)
    two = recarena.RemoteVectorEnv("ECommerce-v1", n, addresses=[address, second],
                                   autoreset_mode=mode, max_episode_steps=LIMIT, seed=11, **kw)
    return one, two


def test_shard_sizes():
    assert shard.shard_sizes(5, 2) == [3, 2]
    assert shard.shard_sizes(1024, 3) == [342, 341, 341]
    with pytest.raises(ValueError, match="smaller than"):
        shard.shard_sizes(1, 2)


@pytest.mark.parametrize("mode", list(AutoresetMode), ids=lambda m: m.value)
def test_sharded_equals_single_server(address, second, mode):
    one, two = _pair(address, second, mode)
    try:
        assert two.single_observation_space == one.single_observation_space
        assert two.observation_space == one.observation_space
        assert two.action_space == one.action_space
        # make-time seeds (seed + i) first: a step before any reset must already agree
        assert _eq(one.reset()[0], two.reset()[0])
        for seed in (100, [7, 3, 9, 1, 5]):
            o1, i1 = one.reset(seed=seed)
            o2, i2 = two.reset(seed=seed)
            assert _eq(o1, o2) and _eq(i1, i2)
        one.action_space.seed(3)
        ended = 0
        for t in range(STEPS):
            if t == 2:  # env 0 restarts late: from now on its episodes end when no other's do
                first = np.array([True] + [False] * (N - 1))
                assert _eq(one.reset(options={"reset_mask": first}),
                           two.reset(options={"reset_mask": first}))
            a = one.action_space.sample()
            r1, r2 = one.step(a), two.step(a)
            for name, x, y in zip(("obs", "reward", "terminated", "truncated", "info"), r1, r2):
                assert _eq(x, y), f"{name} differs at step {t} in mode {mode.value}"
            done = r1[2] | r1[3]
            ended += int(done.sum())
            if mode == AutoresetMode.SAME_STEP and done.any():
                assert "final_obs" in r2[4] and r2[4]["final_obs"].dtype == object
            if mode == AutoresetMode.DISABLED and done.any():
                o1, i1 = one.reset(options={"reset_mask": done})
                o2, i2 = two.reset(options={"reset_mask": done})
                assert _eq(o1, o2) and _eq(i1, i2)
        assert ended >= N, "the episodes should have ended several times"
    finally:
        one.close()
        two.close()


def test_partial_seeds_masks_tasks_render(address, second):
    one, two = _pair(address, second, AutoresetMode.NEXT_STEP, render_mode="ansi")
    try:
        seeds = [None, 4, None, 8, 2]
        assert _eq(one.reset(seed=seeds)[0], two.reset(seed=seeds)[0])
        mask = np.array([False, False, False, True, False])  # only the second shard resets
        r1 = one.reset(seed=[1, 2, 3, 4, 5], options={"reset_mask": mask})
        r2 = two.reset(seed=[1, 2, 3, 4, 5], options={"reset_mask": mask})
        assert _eq(r1, r2)
        tmask = np.array([True, False, False, False, True])
        assert one.set_task({"split": "train", "id": 3}, tmask) == \
            two.set_task({"split": "train", "id": 3}, tmask)
        assert _eq(one.reset(seed=9), two.reset(seed=9))
        a = one.action_space.sample()
        assert _eq(one.step(a), two.step(a))
        assert one.render() == two.render()
    finally:
        one.close()
        two.close()


def test_make_vec_addresses(address, second):
    env = gym.make_vec("recarena/ECommerce-v1", num_envs=4, addresses=[address, second], seed=5)
    ref = gym.make_vec("recarena/ECommerce-v1", num_envs=4, address=address, seed=5)
    try:
        assert _eq(env.reset(seed=1), ref.reset(seed=1))
    finally:
        env.close()
        ref.close()


def test_every_request_is_sent_before_any_wait(address, second, monkeypatch):
    env = recarena.RemoteVectorEnv("ECommerce-v1", 4, addresses=[address, second], seed=1)
    log = []
    send, receive = shard._ShardClient.send, shard._ShardClient.receive
    monkeypatch.setattr(shard._ShardClient, "send",
                        lambda self, op, *a: log.append(("send", op, self.address)) or
                        send(self, op, *a))
    monkeypatch.setattr(shard._ShardClient, "receive",
                        lambda self, rid, op, *a: log.append(("wait", op, self.address)) or
                        receive(self, rid, op, *a))
    try:
        env.reset(seed=0)
        env.step(env.action_space.sample())
        steps = [e for e in log if e[1] == "step"]
        assert steps == [("send", "step", address), ("send", "step", second),
                         ("wait", "step", address), ("wait", "step", second)]
    finally:
        monkeypatch.undo()
        env.close()


def test_dead_shard_names_its_address_within_the_deadline(address, server_binary):
    doomed = LocalServer(server_binary, transport="tcp")
    env = recarena.RemoteVectorEnv("ECommerce-v1", 6, addresses=[address, doomed.endpoint],
                                   seed=1, timeout=1.0)
    try:
        env.reset(seed=0)
        a = env.action_space.sample()
        env.step(a)
        doomed.stop()
        t0 = time.monotonic()
        with pytest.raises(recarena.DeadlineError) as ei:
            env.step(a)
        assert time.monotonic() - t0 < 3.0
        msg = str(ei.value)
        assert doomed.endpoint in msg and "shard 1 of 2" in msg and "envs 3..5" in msg
        with pytest.raises(recarena.TransportError, match="out of step"):
            env.step(a)
    finally:
        env.close()


def test_bad_arguments(address, second):
    with pytest.raises(ValueError, match="smaller than"):
        recarena.RemoteVectorEnv("ECommerce-v1", 1, addresses=[address, second])
    with pytest.raises(ValueError, match="repeat"):
        recarena.RemoteVectorEnv("ECommerce-v1", 4, addresses=[address, address])
    with pytest.raises(ValueError, match="excludes"):
        recarena.RemoteVectorEnv("ECommerce-v1", 4, address=address, addresses=[second])
    with pytest.raises(ValueError, match="at least one"):
        recarena.RemoteVectorEnv("ECommerce-v1", 4, addresses=[])


def test_server_error_keeps_class_and_global_env_index(address, second):
    env = recarena.RemoteVectorEnv("ECommerce-v1", 4, addresses=[address, second], seed=1,
                                   autoreset_mode="disabled", max_episode_steps=1)
    try:
        env.reset(seed=0)
        a = env.action_space.sample()
        env.step(a)  # every episode ends after one step
        with pytest.raises(recarena.NeedsResetError) as ei:
            env.step(a)
        assert "shard 0 of 2" in str(ei.value)
        env.reset(seed=0)  # a full reset puts the shards back in step
        env.step(a)
    finally:
        env.close()


def test_failed_make_on_one_server_frees_the_others(address, server_binary):
    small = LocalServer(server_binary, transport="tcp", extra_args=["--max-envs", "2"])
    try:
        with Client(address) as c:
            before = c.stats()["sessions"]
            with pytest.raises(recarena.LimitError) as ei:
                recarena.RemoteVectorEnv("ECommerce-v1", 6, addresses=[address, small.endpoint])
            assert small.endpoint in str(ei.value) and "shard 1 of 2" in str(ei.value)
            assert c.stats()["sessions"] == before, "shard 0's session was left open"
    finally:
        small.stop()
