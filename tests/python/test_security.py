"""A server strangers can share, from Python: CURVE keys written by recarena-server --gen-keys,
the handshake accepted for an allowed key and refused for another, sessions that belong to the key
that made them (another key gets NoSuchHandleError, the same key on a new connection resumes),
and error messages that stay valid UTF-8 for non-ASCII client input.
"""
from __future__ import annotations

import os
import socket
import subprocess
import time

import numpy as np
import pytest

from recarena.client import Client, curve_keys
from recarena.errors import DeadlineError, NoSuchHandleError, UnknownEnvError
from recarena.vector import RemoteVectorEnv


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gen(binary: str, prefix: str) -> None:
    subprocess.run([binary, "--gen-keys", prefix], check=True, capture_output=True)


@pytest.fixture
def curve_server(server_binary, tmp_path):
    """A CURVE server that allows keys a and b (not x). Yields (endpoint, key prefixes)."""
    keys = {name: str(tmp_path / name) for name in ("server", "a", "b", "x")}
    for prefix in keys.values():
        _gen(server_binary, prefix)
    allow = tmp_path / "allow"
    allow.mkdir()
    for name in ("a", "b"):
        os.link(keys[name] + ".pub", allow / f"{name}.pub")
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    proc = subprocess.Popen([server_binary, "--bind", endpoint, "--workers", "1",
                             "--curve-secret", keys["server"] + ".key", "--allow-keys", str(allow)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield endpoint, keys
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _client(endpoint, keys, who, timeout=5.0):
    return Client(endpoint, timeout=timeout, server_key=keys["server"] + ".pub",
                  client_key=keys[who] + ".key")


def _connect(endpoint, keys, who):
    deadline = time.monotonic() + 10
    while True:  # the server may still be starting
        try:
            return _client(endpoint, keys, who, timeout=1.0)
        except DeadlineError:
            if time.monotonic() > deadline:
                raise


def test_curve_handshake_and_session_ownership(curve_server):
    endpoint, keys = curve_server
    a = _connect(endpoint, keys, "a")
    b = _client(endpoint, keys, "b")
    made = a.make("ECommerce-v1", 2, seed=1)
    handle = made["handle"]
    with pytest.raises(NoSuchHandleError):
        b.reset(handle, seed=1)
    assert b.stats()["sessions"] == 0
    assert a.stats()["sessions"] == 1
    a.close()
    a2 = _client(endpoint, keys, "a")  # the same key on a new connection carries on
    obs, _ = a2.reset(handle, seed=1)
    assert obs
    a2.close_handle(handle)
    a2.close()
    b.close()
    with pytest.raises(DeadlineError):
        _client(endpoint, keys, "x", timeout=0.5)
    with pytest.raises(DeadlineError):
        Client(endpoint, timeout=0.5)  # plaintext


def test_vector_env_over_curve(curve_server):
    endpoint, keys = curve_server
    _connect(endpoint, keys, "a").close()
    env = RemoteVectorEnv("ECommerce-v1", 3, address=endpoint, seed=1,
                          server_key=keys["server"] + ".pub", client_key=keys["a"] + ".key")
    try:
        env.reset(seed=1)
        _, reward, _, _, _ = env.step(env.action_space.sample())
        assert np.asarray(reward).shape == (3,)
    finally:
        env.close()


def test_curve_keys_accept_z85_strings_and_reject_garbage(tmp_path, server_binary):
    _gen(server_binary, str(tmp_path / "k"))
    s, pub, sec = curve_keys(str(tmp_path / "k.pub"), str(tmp_path / "k.key"))
    assert len(s) == len(pub) == len(sec) == 40 and s == pub
    assert curve_keys(s, (pub, sec)) == (s, pub, sec)
    with pytest.raises(ValueError):
        curve_keys("short", (pub, sec))
    with pytest.raises(ValueError):
        Client("tcp://127.0.0.1:1", server_key=s)


def test_a_non_ascii_env_name_is_unknown_env_not_a_transport_error(client):
    name = "a" * 63 + "\u00e9-\u732b-env"
    with pytest.raises(UnknownEnvError) as e:
        client.make(name, 1)
    str(e.value).encode("utf-8")


def test_an_env_from_before_a_restart_never_drives_a_new_users_session(server_binary):
    endpoint = f"tcp://127.0.0.1:{_free_port()}"

    def start():
        p = subprocess.Popen([server_binary, "--bind", endpoint, "--workers", "1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with Client(endpoint, timeout=0.5) as c:
                    c.ping()
                return p
            except DeadlineError:
                if time.monotonic() > deadline:
                    p.kill()
                    raise

    first = start()
    old = Client(endpoint, timeout=5)
    old_handle = old.make("ECommerce-v1", 1, seed=1)["handle"]
    old.reset(old_handle, seed=1)
    first.terminate()
    first.wait(timeout=10)
    second = start()
    try:
        with Client(endpoint, timeout=5) as stranger:
            new_handle = stranger.make("ECommerce-v1", 1, seed=2)["handle"]
            assert new_handle != old_handle
            # the old client reconnects on its own; its handle means nothing to the new run
            with pytest.raises(NoSuchHandleError):
                old.reset(old_handle, seed=1)
            stranger.reset(new_handle, seed=2)
    finally:
        old.close()
        second.terminate()
        second.wait(timeout=10)
