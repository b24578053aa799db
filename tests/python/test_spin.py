"""The shared-memory doorbell from Python (docs/local.md section 4): a server started with
--spin-us and Client(spin_us=...) give the same trajectories and errors as frames for every
simulator and autoreset mode, the vector env takes $RECARENA_SPIN_US, random pauses on the client
side lose no reply, and a server without --spin-us leaves everything as before."""
from __future__ import annotations

import time

import numpy as np
import pytest

import recarena
from recarena import shm as _shm
from recarena.client import Client
from recarena.errors import NoSuchHandleError
from recarena.server import LocalServer

from test_shm import _actions, _same_session, _vector_env_matches_frames

pytestmark = pytest.mark.skipif(_shm.spin_library() is None,
                                reason="librecarena_spin.so not built")


@pytest.fixture(scope="module")
def spin_server(server_binary):
    srv = LocalServer(server_binary, transport="tcp", extra_args=["--spin-us", "100000"])
    try:
        with Client(srv.endpoint, timeout=10) as c:
            c.ping()
        yield srv
    finally:
        srv.stop()


@pytest.mark.parametrize("mode", ["next_step", "same_step", "disabled"])
def test_doorbell_and_frames_give_identical_trajectories_and_errors(spin_server, mode):
    address = spin_server.endpoint
    with Client(address, spin_us=2000) as cs, Client(address, shm=False) as cf:
        assert cs.spin and "spin" in cs.server_info["capabilities"]
        for env_id in [e["id"] for e in cs.list()]:
            n = 4
            ms = cs.make(env_id, n, seed=7, autoreset=mode, max_episode_steps=5)
            mf = cf.make(env_id, n, seed=7, autoreset=mode, max_episode_steps=5)
            hs, hf = ms["handle"], mf["handle"]
            assert cs._segments[hs].has_doorbell, f"{env_id}: a doorbell when asked for"
            # bad actions included: the first (a valid int32 out of range) goes through the doorbell
            _same_session(cs, hs, cf, hf, ms["action_space"], n, f"{env_id} {mode}", mode)
            cs.close_handle(hs)
            cf.close_handle(hf)
            with pytest.raises(NoSuchHandleError):
                cs.call("ring", {"handle": hs, "seq": 1})


def test_random_pauses_lose_no_reply(spin_server):
    """Pauses around the server's 100 ms spin window and far shorter ones: every step is
    answered, through the doorbell or a ring, and none waits for the client's spin to run out."""
    with Client(spin_server.endpoint, spin_us=_shm.SPIN_MAX_US, timeout=5) as c:
        m = c.make("ECommerce-v1", 2, seed=1)
        h = m["handle"]
        c.reset(h)
        rng = np.random.default_rng(3)
        worst = 0.0
        for t in range(300):
            time.sleep(float(rng.choice([0.0, 1e-5, 1e-4, 0.12])) if t % 25 == 0 else 0.0)
            t0 = time.monotonic()
            c.step(h, _actions(m["action_space"], 2, rng))
            worst = max(worst, time.monotonic() - t0)
        assert worst < 0.5, f"a step took {worst:.3f} s"


def test_vector_env_takes_the_spin_from_the_environment(spin_server, monkeypatch):
    monkeypatch.setenv("RECARENA_SPIN_US", "2000")
    env = recarena.RemoteVectorEnv("ECommerce-v1", 8, address=spin_server.endpoint, seed=5)
    try:
        assert env.client.spin and env.client._segments[env._handle].has_doorbell
        _vector_env_matches_frames(env, spin_server.endpoint)
    finally:
        env.close()


def test_a_server_without_spin_us_gives_no_doorbell(address):
    with Client(address, spin_us=1000) as c:
        assert c.shm and not c.spin, "the session's server runs without --spin-us"
        h = c.make("ECommerce-v1", 2, seed=1)["handle"]
        assert c.uses_shm(h) and not c._segments[h].has_doorbell
        c.reset(h)
        c.step(h, np.array([[0, 1, 2], [3, 4, 5]]))


def test_spin_us_is_checked(monkeypatch, address):
    with pytest.raises(ValueError, match="spin_us is -1"):
        Client(address, spin_us=-1)
    monkeypatch.setenv("RECARENA_SPIN_US", "soon")
    with pytest.raises(ValueError, match="RECARENA_SPIN_US"):
        Client(address)
