"""The shared-memory data plane from Python (docs/protocol.md, "Shared memory"): identical
trajectories and errors to frames for every simulator and autoreset mode, views that survive one
step (double buffering), and segments that go when a session closes, expires or its client dies."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

import recarena
from recarena.client import Client
from recarena.errors import BadActionError
from recarena.server import LocalServer


def _segments(pid: int) -> list:
    prefix = f"recarena-shm-{pid}-"
    return [n for n in os.listdir("/dev/shm") if n.startswith(prefix)]


def _copy(tree):
    if isinstance(tree, np.ndarray):
        return np.array(tree)
    if isinstance(tree, dict):
        return {k: _copy(v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return [_copy(v) for v in tree]
    return tree


def _equal(a, b, where):
    if isinstance(a, dict):
        assert sorted(a) == sorted(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            _equal(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _equal(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        if a.dtype == object:
            for i, (x, y) in enumerate(zip(a, b)):
                _equal(x, y, f"{where}[{i}]")
        else:
            assert np.array_equal(a, b), where
    else:
        assert a == b, where


def _actions(space, n, rng):
    k = space.shape[0] if len(space.shape or ()) == 1 else 1
    K = int(space.nvec[0]) if hasattr(space, "nvec") else int(space.n)
    return np.stack([rng.permutation(K)[:k] for _ in range(n)]).reshape((n, k) if k > 1 else (n,))


def _same_bad_action_errors(cs, hs, cf, hf, space, n, rng):
    """Steps four kinds of bad actions on handle hs of cs and hf of cf (out-of-range value, int64
    beyond int32, float, one env short) and checks both refuse each with the same message."""
    bad = _actions(space, n, rng)
    bad.flat[0] = 10 ** 6  # a valid int32, out of the action space
    for b in (bad, bad.astype(np.int64) + (1 << 40), bad.astype(np.float32), bad[:-1]):
        with pytest.raises(BadActionError) as es:
            cs.step(hs, b)
        with pytest.raises(BadActionError) as ef:
            cf.step(hf, b)
        assert str(es.value) == str(ef.value)


def _same_session(cs, hs, cf, hf, space, n, where, mode):
    """Resets and steps handle hs of cs and hf of cf (n envs, autoreset mode) alike for 16 steps
    (masked resets where mode is "disabled"; int64 actions every other step) and checks equal
    outputs, that the previous step's outputs survive the next step, and equal bad-action errors."""
    _equal(_copy(cs.reset(hs, seed=3)), _copy(cf.reset(hf, seed=3)), f"{where} reset")
    rng = np.random.default_rng(0)
    prev = prev_copy = None
    for t in range(16):
        a = _actions(space, n, rng)
        if mode == "disabled" and prev_copy is not None:
            ended = prev_copy[2] | prev_copy[3]  # reset what ended, by mask (a frame, so over ZeroMQ)
            if ended.any():
                _equal(_copy(cs.reset(hs, options={"reset_mask": ended})),
                       _copy(cf.reset(hf, options={"reset_mask": ended})), f"{where} masked reset")
                prev = None
        out_s = cs.step(hs, a.astype(np.int64) if t % 2 else a)
        out_f = cf.step(hf, a)
        _equal(_copy(out_s), _copy(out_f), f"{where} step {t}")
        if prev is not None:  # the previous step's views were not overwritten
            _equal(_copy(prev), prev_copy, f"{where} step {t - 1} kept")
        prev, prev_copy = out_s, _copy(out_s)
    # Bad actions: the same error, whether they go through the segment or as a tensor.
    _same_bad_action_errors(cs, hs, cf, hf, space, n, rng)


@pytest.mark.parametrize("mode", ["next_step", "same_step", "disabled"])
def test_shm_and_frames_give_identical_trajectories(address, served_envs, mode):
    with Client(address, shm=True) as cs, Client(address, shm=False) as cf:
        assert cs.shm and not cf.shm, "a loopback server offers shared memory"
        for env_id in served_envs:
            n = 4
            ms = cs.make(env_id, n, seed=7, autoreset=mode, max_episode_steps=5)
            mf = cf.make(env_id, n, seed=7, autoreset=mode, max_episode_steps=5)
            hs, hf = ms["handle"], mf["handle"]
            assert cs.uses_shm(hs) and not cf.uses_shm(hf)
            _same_session(cs, hs, cf, hf, ms["action_space"], n, f"{env_id} {mode}", mode)
            cs.close_handle(hs)
            cf.close_handle(hf)


def _vector_env_matches_frames(env, address):
    """env (8 ECommerce-v1 envs, seed 5) resets and steps exactly as the same batch over frames."""
    with Client(address, shm=False) as cf:
        m = cf.make("ECommerce-v1", 8, seed=5)
        _equal(_copy(env.reset(seed=1)), _copy(cf.reset(m["handle"], seed=1)), "reset")
        rng = np.random.default_rng(1)
        for t in range(10):
            a = _actions(env.single_action_space, 8, rng)
            _equal(_copy(env.step(a)), _copy(cf.step(m["handle"], a)), f"step {t}")


def test_vector_env_steps_over_shared_memory_and_matches_frames(address):
    env = recarena.RemoteVectorEnv("ECommerce-v1", 8, address=address, seed=5)
    try:
        assert env.client.uses_shm(env._handle)
        _vector_env_matches_frames(env, address)
    finally:
        env.close()


def test_segments_are_unlinked_at_first_use_and_close(server, address):
    with Client(address) as c:
        before = len(_segments(server.pid))
        h = c.make("ECommerce-v1", 2)["handle"]
        assert len(_segments(server.pid)) == before + 1
        c.reset(h)  # the first use unlinks the name: nobody else can open it now
        assert len(_segments(server.pid)) == before
        h2 = c.make("ECommerce-v1", 2)["handle"]
        assert len(_segments(server.pid)) == before + 1
        c.close_handle(h2)
        assert len(_segments(server.pid)) == before
        obs, *_ = c.step(h, np.array([[0, 1, 2], [3, 4, 5]]))
        assert not obs["user"].flags.writeable


_DYING_CLIENT = """
import os, sys
from recarena.client import Client
c = Client(sys.argv[1])
c.make("ECommerce-v1", 3)
c.make("ECommerce-v1", 3)
os._exit(0)  # dies without closing anything
"""


def test_a_dead_clients_segments_go_with_its_expired_sessions(server_binary):
    srv = LocalServer(server_binary, transport="ipc", extra_args=["--idle-timeout", "0.5"])
    try:
        with Client(srv.endpoint, timeout=10) as c:
            c.ping()
        subprocess.run([sys.executable, "-c", _DYING_CLIENT, srv.endpoint], check=True,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, timeout=60)
        assert len(_segments(srv.pid)) == 2
        deadline = time.monotonic() + 10
        while _segments(srv.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _segments(srv.pid) == [], "expired sessions leave no segment"
    finally:
        srv.stop()


_DYING_USER = """
import os, sys
from recarena.client import Client
c = Client(sys.argv[1])
for _ in range(2):
    c.reset(c.make("ECommerce-v1", 3)["handle"])  # used: mapped and locked
c.make("ECommerce-v1", 3)  # never used
os._exit(0)  # dies without closing anything
"""


def test_a_dead_clients_used_sessions_go_at_the_next_sweep(server_binary):
    """The dead client held a lock on each segment it used; with a 20 s idle timeout the server
    still closes those sessions at its next sweep (every 5 s), not at their expiry."""
    srv = LocalServer(server_binary, transport="ipc", extra_args=["--idle-timeout", "20"])
    try:
        with Client(srv.endpoint, timeout=10) as c:
            h = c.make("ECommerce-v1", 2)["handle"]
            c.reset(h)
            subprocess.run([sys.executable, "-c", _DYING_USER, srv.endpoint], check=True,
                           env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
                           timeout=60)
            assert c.stats()["sessions"] == 4
            deadline = time.monotonic() + 12
            while c.stats()["sessions"] > 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert c.stats()["sessions"] == 2, "the dead client's used sessions are closed"
            assert len(_segments(srv.pid)) == 1, "the unused one waits for its expiry"
            c.step(h, np.array([[0, 1, 2], [3, 4, 5]]))  # this live client's session stays
    finally:
        srv.stop()
