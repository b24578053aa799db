"""Error replies become the exception of their code, carrying code, message and env_index; every
wait has a deadline; stale replies are dropped."""
from __future__ import annotations

import time

import numpy as np
import pytest

import recarena
from recarena import errors
from recarena.client import Client
from recarena.spaces import as_slate

CODES = {
    "BAD_REQUEST": recarena.BadRequestError, "UNKNOWN_OP": recarena.UnknownOpError,
    "VERSION": recarena.VersionError, "UNKNOWN_ENV": recarena.UnknownEnvError,
    "BAD_CONFIG": recarena.BadConfigError, "BAD_ACTION": recarena.BadActionError,
    "NO_SUCH_HANDLE": recarena.NoSuchHandleError, "NEEDS_RESET": recarena.NeedsResetError,
    "LIMIT": recarena.LimitError, "INTERNAL": recarena.InternalError,
}


@pytest.mark.parametrize("code", sorted(CODES))
def test_each_error_code_maps_to_its_exception(fake, code):
    with Client(fake.endpoint, timeout=2) as c:
        with pytest.raises(CODES[code]) as ei:
            c.make("ERR_" + code, 1)
    e = ei.value
    assert isinstance(e, recarena.ServerError) and isinstance(e, recarena.RecarenaError)
    assert e.code == code and e.message == f"staged {code}" and e.env_index == 3
    assert code in str(e) and "env 3" in str(e)


def test_unknown_code_is_a_plain_server_error(fake):
    with Client(fake.endpoint, timeout=2) as c, pytest.raises(recarena.ServerError) as ei:
        c.make("ERR_SOMETHING_NEW", 1)
    assert type(ei.value) is recarena.ServerError and ei.value.code == "SOMETHING_NEW"


def test_malformed_error_map_still_raises():
    e = errors.error_from_reply("oops")
    assert isinstance(e, recarena.InternalError)
    e = errors.error_from_reply({"code": "BAD_ACTION", "message": 5, "env_index": -1})
    assert isinstance(e, recarena.BadActionError) and e.env_index is None


def test_stale_replies_are_dropped(fake):
    fake.stale_first = True
    with Client(fake.endpoint, timeout=2) as c:
        c.ping()  # the wrong-id error reply arrives first and must be ignored


def test_silent_server_raises_within_the_deadline(fake):
    with Client(fake.endpoint, timeout=0.5) as c:
        fake.muted = True
        t0 = time.monotonic()
        with pytest.raises(recarena.DeadlineError) as ei:
            c.ping()
        assert time.monotonic() - t0 < 3  # generous: "raises, never hangs"
        assert isinstance(ei.value, TimeoutError) and ei.value.code == "TIMEOUT"


def test_absent_server_raises_within_the_deadline(server_binary):
    from recarena.server import free_tcp_endpoint
    t0 = time.monotonic()
    with pytest.raises(recarena.DeadlineError):
        Client(free_tcp_endpoint(), timeout=0.5)
    assert time.monotonic() - t0 < 3  # generous: "raises, never hangs"


# ------------------------------------------------------------------------------------------------
# The real server's error replies for the codes a client can provoke.

def test_real_server_unknown_env(client):
    with pytest.raises(recarena.UnknownEnvError) as ei:
        client.make("NoSuchSim-v9", 1)
    assert ei.value.message


def test_real_server_unknown_op(client):
    with pytest.raises(recarena.UnknownOpError):
        client.call("frobnicate")


def test_real_server_bad_config_names_the_key(client):
    with pytest.raises(recarena.BadConfigError) as ei:
        client.make("ECommerce-v1", 1, config={"no_such_key_xyz": 1})
    assert "no_such_key_xyz" in ei.value.message


def test_real_server_limit(client):
    limits = client.server_info.get("limits", {})
    with pytest.raises(recarena.LimitError):
        client.make("ECommerce-v1", int(limits.get("max_envs", 1 << 20)) + 1)


def test_real_server_bad_request(client):
    with pytest.raises(recarena.BadRequestError):
        client.call("make", {"env": 42, "num_envs": "x"})


def test_real_server_no_such_handle(client):
    with pytest.raises(recarena.NoSuchHandleError):
        client.reset(987654321)


def test_real_server_needs_reset_and_bad_action_name_the_env(client):
    made = client.make("ECommerce-v1", 3, seed=1)
    h, space = made["handle"], as_slate(made["action_space"])
    a = np.stack([space.sample() for _ in range(3)]).astype(np.int64)
    with pytest.raises(recarena.NeedsResetError):
        client.step(h, a)
    client.reset(h, seed=1)
    bad = a.copy()
    bad[2] = -1 if bad.ndim == 1 else np.full(bad.shape[1:], -1)
    with pytest.raises(recarena.BadActionError) as ei:
        client.step(h, bad)
    assert ei.value.env_index == 2
    client.close_handle(h)
    with pytest.raises(recarena.NoSuchHandleError):
        client.step(h, a)
