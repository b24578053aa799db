"""Fixtures for the recarena Python suite: ONE recarena-server per test session on a free
loopback port (the tests connect with address=), and the scripted fake server.

The binary comes from $RECARENA_SERVER (scripts/test.sh sets it), else PATH, else the checkout's
build dir. Without it, every test that needs a server is skipped with the reason.
"""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import recarena  # noqa: E402
from recarena.client import Client  # noqa: E402
from recarena.errors import ServerNotFoundError  # noqa: E402
from recarena.server import LocalServer, find_server_binary  # noqa: E402


def _binary():
    try:
        return find_server_binary(), None
    except ServerNotFoundError as e:
        return None, str(e)


@pytest.fixture(scope="session")
def server_binary():
    path, why = _binary()
    if path is None:
        pytest.skip(f"recarena-server not built: {why}")
    return path


@pytest.fixture(scope="session")
def server(server_binary):
    """The session's server: a LocalServer bound to tcp://127.0.0.1:<free port>."""
    srv = LocalServer(server_binary, transport="tcp")
    try:
        with Client(srv.endpoint, timeout=10) as c:  # wait until it answers
            c.ping()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def address(server):
    return server.endpoint


@pytest.fixture(scope="session")
def served_envs(address):
    """Ids of the simulators the session's server hosts (its 'list' op)."""
    with Client(address) as c:
        return [e["id"] for e in c.list()]


@pytest.fixture
def client(address):
    with Client(address, timeout=5) as c:
        yield c


@pytest.fixture
def fake():
    from fake_server import FakeServer
    fs = FakeServer()
    yield fs
    fs.close()
