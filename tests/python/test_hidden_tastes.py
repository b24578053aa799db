"""The hidden_tastes sim config key (docs/sims/shared.md 4) through the Gymnasium env, on the
server path and the in-process one: the task description says it is on, the same seed shows the
same observations as with it off, and the users then click differently."""
from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence

import recarena
from recarena import local

STEPS = 40


def _make(backend, address, name, hidden):
    cfg = {"task": {"split": "test", "id": 3}}
    if hidden is not None:
        cfg["hidden_tastes"] = hidden
    kw = dict(address=address) if backend == "server" else dict(backend="local")
    return recarena.RemoteEnv(name, seed=3, config=cfg, **kw)


@pytest.mark.parametrize("backend", ["server", "local"])
@pytest.mark.parametrize("name", recarena.KNOWN_ENVS)
def test_hidden_tastes_reaches_the_sim(address, backend, name):
    if backend == "local" and not local.available():
        pytest.skip("librecarena_local.so is not built")
    off, on = _make(backend, address, name, None), _make(backend, address, name, 1)
    try:
        assert "hidden_tastes" not in off.task
        assert on.task["hidden_tastes"] == 1
        assert data_equivalence(off.reset(seed=5)[0], on.reset(seed=5)[0], exact=True)
        off.action_space.seed(2)
        rewards_off, rewards_on = [], []
        for _ in range(STEPS):
            act = off.action_space.sample()
            a, b = off.step(act), on.step(act)
            rewards_off.append(a[1])
            rewards_on.append(b[1])
            if a[2] or a[3]:
                off.reset()
            if b[2] or b[3]:
                on.reset()
        assert not np.array_equal(rewards_off, rewards_on), f"{name}: hidden tastes changed no reward"
    finally:
        off.close()
        on.close()


def test_bad_hidden_tastes_names_the_key(address):
    with pytest.raises(recarena.BadConfigError, match="hidden_tastes"):
        recarena.RemoteEnv("ECommerce-v1", address=address, config={"hidden_tastes": 2})
