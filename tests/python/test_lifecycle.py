"""The embedded local server: found, started on demand, shared, stopped on close, and a death
noticed within the deadline."""
from __future__ import annotations

import os
import signal
import time

import gymnasium as gym
import pytest

import recarena
from recarena.server import default_server, find_server_binary


def test_missing_binary_error_lists_what_was_tried(monkeypatch, tmp_path):
    monkeypatch.delenv("RECARENA_SERVER", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("recarena.server._dev_binary", lambda: tmp_path / "build" / "srv")
    with pytest.raises(recarena.ServerNotFoundError) as ei:
        find_server_binary()
    msg = str(ei.value)
    assert "RECARENA_SERVER" in msg and "PATH" in msg
    assert str(tmp_path / "build" / "srv") in msg


def test_a_wrong_named_binary_or_library_is_an_error_not_another_build(monkeypatch, tmp_path,
                                                                         server_binary):
    """A server_path or $RECARENA_SERVER with a typo silently ran the recarena-server found on
    PATH or in the checkout (another build, maybe another version); the same for the local
    library. An explicit path that is wrong is an error, as recarena-tune's --meta-bin is."""
    with pytest.raises(recarena.ServerNotFoundError, match="also-nope"):
        find_server_binary(str(tmp_path / "also-nope"))
    with pytest.raises(recarena.ServerNotFoundError, match="also-nope"):
        recarena.RemoteEnv("ECommerce-v1", backend="server", server_path=str(tmp_path / "also-nope"))
    monkeypatch.setenv("PATH", os.path.dirname(server_binary))  # another binary is right there
    monkeypatch.setenv("RECARENA_SERVER", str(tmp_path / "nope"))
    with pytest.raises(recarena.ServerNotFoundError, match="RECARENA_SERVER="):
        find_server_binary()
    from recarena import local
    monkeypatch.setenv("RECARENA_LOCAL_LIB", str(tmp_path / "nope.so"))
    with pytest.raises(local.LocalLibraryNotFoundError, match="nope.so"):
        local.find_local_library()
    with pytest.raises(local.LocalLibraryNotFoundError, match="nope.so"):
        recarena.RemoteEnv("ECommerce-v1")  # backend="auto": not the server, silently


def test_import_starts_nothing():
    assert default_server()._server is None


def test_make_without_address_spawns_shares_and_stops(server_binary, monkeypatch):
    monkeypatch.setenv("RECARENA_SERVER", server_binary)
    e1 = gym.make("recarena/ECommerce-v1", backend="server")
    e2 = gym.make("recarena/ECommerce-v1", backend="server")
    srv = e1.unwrapped.client.local_server
    assert srv is not None and srv is e2.unwrapped.client.local_server
    e1.reset(seed=0)
    e1.step(e1.action_space.sample())
    e1.close()
    assert srv.returncode() is None  # e2 still uses it
    e2.close()
    assert srv.returncode() is not None  # stopped with its last user
    assert default_server()._server is None


def test_killed_local_server_raises_within_the_deadline(server_binary, monkeypatch):
    monkeypatch.setenv("RECARENA_SERVER", server_binary)
    env = recarena.RemoteVectorEnv("ECommerce-v1", 16, timeout=3, backend="server")
    try:
        env.reset(seed=0)
        srv = env.client.local_server
        os.kill(srv.pid, signal.SIGKILL)
        srv.proc.wait(2)
        t0 = time.monotonic()
        with pytest.raises(recarena.ServerDiedError) as ei:
            env.step(env.action_space.sample())
        assert time.monotonic() - t0 < 4  # generous: "raises, never hangs"
        assert ei.value.returncode == -signal.SIGKILL and "signal 9" in str(ei.value)
    finally:
        t0 = time.monotonic()
        env.close()
        env.close()
        assert time.monotonic() - t0 < 2.5


def test_killed_remote_server_raises_within_the_deadline(server_binary):
    srv = recarena.LocalServer(server_binary, transport="tcp")
    try:
        env = recarena.RemoteEnv("ECommerce-v1", address=srv.endpoint, timeout=1)
        env.reset(seed=0)
        os.kill(srv.pid, signal.SIGKILL)
        t0 = time.monotonic()
        with pytest.raises(recarena.DeadlineError):
            env.step(env.action_space.sample())
        assert time.monotonic() - t0 < 4  # generous: "raises, never hangs"
        env.close()
    finally:
        srv.stop()


def test_async_vector_env_of_remote_envs_works(server_binary, monkeypatch):
    """Gymnasium's AsyncVectorEnv forks workers; each starts its own server and stops it."""
    monkeypatch.setenv("RECARENA_SERVER", server_binary)
    envs = gym.make_vec("recarena/ECommerce-v1", num_envs=2, vectorization_mode="async",
                        backend="server")
    try:
        envs.reset(seed=0)
        envs.step(envs.action_space.sample())
    finally:
        envs.close()
    assert default_server()._server is None


def test_a_killed_pythons_temp_dir_is_swept_by_the_next_local_server(server_binary, tmp_path,
                                                                      monkeypatch):
    """kill -9 of the Python process skips every finaliser: PDEATHSIG stops the server, but its
    temp directory (socket, stderr.log) stayed in /tmp for good. The next LocalServer removes
    such directories, and only those: a live owner's, or one holding anything else, stays."""
    import socket
    import subprocess
    import sys
    import tempfile
    code = ("import sys, time, recarena; s = recarena.LocalServer(sys.argv[1]); "
            "print(s.pid, flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code, server_binary],
                             env=dict(os.environ, TMPDIR=str(tmp_path)), stdout=subprocess.PIPE,
                             text=True)
    server_pid = int(child.stdout.readline())
    child.kill()
    child.wait(5)
    deadline = time.monotonic() + 5  # PDEATHSIG: the server follows its parent
    while recarena.server._pid_alive(server_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    (dead,) = [p for p in tmp_path.iterdir() if p.name.startswith("recarena-")]
    assert (dead / "stderr.log").exists()
    foreign = tmp_path / "recarena-foreign"  # a dead owner, but a file no LocalServer makes
    foreign.mkdir()
    (foreign / "owner").write_text(f"{socket.gethostname()} {child.pid}\n")
    (foreign / "notes.txt").write_text("someone else's")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    live = recarena.LocalServer(server_binary)
    try:
        left = sorted(p.name for p in tmp_path.iterdir())
        assert not dead.exists() and foreign.exists() and len(left) == 2, left
        assert recarena.server.sweep_stale_dirs(str(tmp_path)) == []  # the live one stays
    finally:
        live.stop()
