"""A careless user of the Gymnasium envs, on both backends: copies and pickles of an env, a
client closed under its env, two threads on one env, numpy scalars and out-of-range numbers in
make and reset arguments, action dtypes the wire lacks, and endpoints that are not endpoints.
Each gets a clear exception (and the env keeps working where it can), never a crash, a hang or a
silent truncation."""
from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
import threading

import numpy as np
import pytest

import recarena
from recarena import local

BACKENDS = ["local", "server"]


def _needs(backend):
    if backend == "local" and not local.available():
        pytest.skip("librecarena_local.so is not built")


def _env(backend, address, **kw):
    _needs(backend)
    if backend == "local":
        return recarena.RemoteEnv("ECommerce-v1", backend="local", **kw)
    return recarena.RemoteEnv("ECommerce-v1", address=address, **kw)


def _venv(backend, address, n=3, **kw):
    _needs(backend)
    if backend == "local":
        return recarena.RemoteVectorEnv("ECommerce-v1", n, backend="local", **kw)
    return recarena.RemoteVectorEnv("ECommerce-v1", n, address=address, **kw)


def _run(code):
    """code in a fresh interpreter (what used to segfault must not take pytest down with it)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.mark.parametrize("backend", BACKENDS)
def test_copy_deepcopy_and_pickle_are_refused_and_the_env_goes_on(backend, address):
    env = _env(backend, address, seed=1)
    try:
        env.reset(seed=1)
        for what in (env, env.client):
            for fn in (copy.copy, copy.deepcopy, pickle.dumps):
                with pytest.raises(TypeError, match="cannot be copied or pickled"):
                    fn(what)
        env.step(np.arange(3))
    finally:
        env.close()
    v = _venv(backend, address)
    try:
        with pytest.raises(TypeError, match="cannot be copied or pickled"):
            pickle.dumps(v)
    finally:
        v.close()


def test_a_collected_copy_or_a_closed_client_leaves_an_error_not_a_crash():
    """copy.copy of the local env used to share its C batch and free it when collected: the next
    step crashed the interpreter; closing the client under the env did the same."""
    if not local.available():
        pytest.skip("librecarena_local.so is not built")
    r = _run("""
import copy, gc, numpy as np, recarena
env = recarena.RemoteEnv("ECommerce-v1", backend="local")
env.reset(seed=1)
try:
    copy.copy(env)
except TypeError:
    pass
gc.collect()
env.step(np.arange(3))
env.client.close()
try:
    env.step(np.arange(3))
except recarena.TransportError as e:
    print("step:", e)
try:
    env.reset()
except recarena.TransportError as e:
    print("reset:", e)
""")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "step: TRANSPORT: the client is closed" in r.stdout
    assert "reset: TRANSPORT: the client is closed" in r.stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_second_thread_in_a_call_gets_a_clear_error_at_once(backend, address):
    """Two threads stepping one env: over the server they took each other's replies and both
    waited out the deadline (then blamed the server); in-process they raced on the C buffers.
    The env's lock is held here by another thread, as a step in flight would hold it."""
    env = _env(backend, address)
    try:
        env.reset(seed=1)
        lock = env._local._busy if backend == "local" else env.client._busy
        held, done = threading.Event(), threading.Event()

        def hold():
            with lock:
                held.set()
                done.wait(30)

        t = threading.Thread(target=hold)
        t.start()
        held.wait(30)
        try:
            with pytest.raises(recarena.TransportError, match="another thread"):
                env.step(np.arange(3))
        finally:
            done.set()
            t.join()
        env.step(np.arange(3))  # the lock is free again: the env goes on
    finally:
        env.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_numpy_scalars_are_numbers_in_config_task_and_seeds(backend, address):
    """np.int64(3) as a task id or config value used to be msgpack's TypeError over the server."""
    env = _env(backend, address, seed=np.uint64(5), config={"num_candidates": np.int64(12)},
               task={"split": "test", "id": np.int64(3)})
    try:
        assert env.action_space.nvec[0] == 12 and env.task["id"] == 3
        assert env.set_task({"split": "train", "id": np.int32(2)})["id"] == 2
        obs, _ = env.reset(seed=np.int64(7))  # Gymnasium's seeding alone takes Python ints
        again, _ = env.reset(seed=7)
        assert all(np.array_equal(obs[k], again[k]) for k in obs)
    finally:
        env.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_fractional_or_text_counts_and_seeds_are_refused_not_truncated(backend, address):
    for kw, named in ((dict(seed=1.5), "seed"), (dict(seed="3"), "seed"),
                      (dict(max_episode_steps=2.7), "max_episode_steps")):
        with pytest.raises(TypeError, match=named):
            _env(backend, address, **kw)
    for n in (2.5, "4", True):
        with pytest.raises(TypeError, match="num_envs"):
            _venv(backend, address, n=n)
    v = _venv(backend, address)
    try:
        for seed in ("abc", 1.5, [1.5, 2, 3], [1, "2", None]):
            with pytest.raises(TypeError, match="seed"):
                v.reset(seed=seed)
        v.reset(seed=np.array([1, 2, 3], dtype=np.uint32))
    finally:
        v.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_seeds_and_config_numbers_beyond_64_bits_get_the_same_errors(backend, address):
    """Over the server these were msgpack's OverflowError, naming nothing."""
    with pytest.raises(recarena.BadRequestError, match="seed"):
        _env(backend, address, seed=2 ** 64)
    with pytest.raises(recarena.BadConfigError, match="num_candidates"):
        _env(backend, address, config={"num_candidates": 10 ** 400})
    with pytest.raises(recarena.BadConfigError, match="task.id"):
        _env(backend, address, task={"split": "test", "id": 2 ** 64})
    v = _venv(backend, address)
    try:
        with pytest.raises(recarena.BadRequestError, match="seed"):
            v.reset(seed=2 ** 64)
        with pytest.raises(recarena.BadRequestError) as e:
            v.reset(seed=[1, None, 2 ** 70])
        assert e.value.env_index == 2
    finally:
        v.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_integer_action_dtype_steps_and_huge_unsigned_ones_are_named(backend, address):
    """int16, uint16, uint32 and uint64 have no wire dtype: the server path refused them with a
    TypeError about the protocol, and the local one read a uint64 past int64 as -1."""
    env = _env(backend, address, seed=1)
    try:
        env.reset(seed=1)
        for dt in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64,
                   np.uint64, np.dtype(">i4")):
            env.step(np.array([0, 1, 2], dtype=dt))
        with pytest.raises(recarena.BadActionError, match="18446744073709551615"):
            env.step(np.array([2 ** 64 - 1, 1, 2], dtype=np.uint64))
        with pytest.raises(recarena.BadActionError, match="dtype bool"):
            env.step(np.ones(3, bool))
    finally:
        env.close()


@pytest.mark.parametrize("address_", ["bogus://x", "tcp://", "not an endpoint", 5555])
def test_an_address_that_is_not_an_endpoint_is_a_transport_error_naming_it(address_):
    with pytest.raises(recarena.TransportError, match="cannot connect to"):
        recarena.RemoteEnv("ECommerce-v1", address=address_, timeout=1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_timeout_is_seconds_above_zero_and_inf_means_no_deadline(backend, address):
    """inf raised OverflowError from the poll loop, NaN a ValueError about NaN, 0 and -1 a
    DeadlineError blaming the server, and the local backend took any of them (and 'x')."""
    for t in (0, -1, float("nan"), "x", None):
        with pytest.raises(ValueError, match="timeout must be a number of seconds > 0"):
            _env(backend, address, timeout=t)
    env = _env(backend, address, timeout=float("inf"))
    try:
        env.reset(seed=1)
        env.step(np.arange(3))
    finally:
        env.close()


def test_a_forked_child_using_its_parents_server_env_gets_an_error_not_a_hang(address):
    """The child's step hung in ZeroMQ's send past any deadline (and its close would have closed
    the parent's session); now it is a TransportError and the parent's env goes on."""
    r = _run(f"""
import os, signal, numpy as np, recarena
env = recarena.RemoteEnv("ECommerce-v1", address={address!r}, timeout=3)
env.reset(seed=1)
pid = os.fork()
if pid == 0:
    signal.alarm(20)  # the hang this test is about ends the child with SIGALRM
    try:
        env.step(np.arange(3))
        os._exit(3)
    except recarena.TransportError as e:
        env.close()
        os._exit(0 if "forked" in str(e) else 4)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
env.step(np.arange(3))
env.close()
print("parent ok")
""")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "child 0" in r.stdout and "parent ok" in r.stdout
