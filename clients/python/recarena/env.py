"""recarena.env - RemoteEnv, a gymnasium.Env backed by a server-side batch of one env.

Single-env Gymnasium semantics: reset(seed=, options=) -> (obs, info); step(action) ->
(obs, reward: float, terminated: bool, truncated: bool, info). The server batch is made with
autoreset "disabled", so an episode ends when the agent sees it end and the next step needs a
reset (the server answers NEEDS_RESET otherwise). Observations are read-only zero-copy views of the
reply; info holds this env's entries without the vector "_name" masks.
Not thread-safe (one Client, one socket).
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional, Tuple

import gymnasium as gym
import numpy as np

from . import shm as _shm
from .spaces import as_action, as_slate
from .client import CLOSE_TIMEOUT_S, DEFAULT_TIMEOUT_S, Client
from .errors import refuse_copy
from .local import LocalClient, open_backend


def random_seed() -> int:
    """A fresh 63-bit seed, so that unseeded envs do not all replay the server's default stream."""
    return int.from_bytes(os.urandom(8), "little") >> 1


def check_reset_options(options: Any) -> None:
    """Refuses reset options this package does not know: the protocol ignores unknown keys, so a
    hoped-for option ({"task": ...}) would otherwise do nothing, silently. ValueError naming it."""
    if options is None:
        return
    if not isinstance(options, dict):
        raise ValueError(f"reset options must be a dict or None, got {type(options).__name__}")
    unknown = sorted(str(k) for k in options if k != "reset_mask")
    if unknown:
        raise ValueError(f"unknown reset option(s) {', '.join(map(repr, unknown))}: the only one is "
                         "'reset_mask' (a task is chosen with task= or set_task, not at reset)")


def set_task_or_close(env: Any, task: Optional[dict]) -> None:
    """The task= of a constructor: env.set_task(task) unless None; a refused task closes env (its
    server handle) before the error goes on."""
    if task is None:
        return
    try:
        env.set_task(task)
    except BaseException:
        env.close()
        raise


def unbatch(obs: Any, i: int = 0) -> Any:
    """Row i of a batched obs (a dict of arrays, or an array)."""
    if isinstance(obs, dict):
        return {k: unbatch(v, i) for k, v in obs.items()}
    if isinstance(obs, (list, tuple)):
        return tuple(unbatch(v, i) for v in obs)
    return obs[i]


def unbatch_info(info: Dict[str, Any], i: int = 0) -> Dict[str, Any]:
    """Env i's entries of a vector info dict: "_name" masks dropped, masked-out entries omitted."""
    out: Dict[str, Any] = {}
    for k, v in info.items():
        if k.startswith("_") and k[1:] in info:
            continue
        mask = info.get("_" + k)
        if mask is not None and not bool(mask[i]):
            continue
        if isinstance(v, dict):
            out[k] = unbatch_info(v, i)
        elif isinstance(v, np.ndarray) and v.ndim >= 1:
            out[k] = v[i]
        else:
            out[k] = v
    return out


class RemoteEnv(gym.Env):
    """One env of simulator env_id (e.g. "ECommerce-v1") hosted by a recarena-server.

    address: the server endpoint, or None for the embedded local server. server_key, client_key:
    CURVE keys for a server started with --curve-secret (see recarena.client.curve_keys).
    config: the sim's config map (see Client.list()). seed: the make-time seed (default: random).
    max_episode_steps: server-side truncation limit (default: the sim's). render_mode: None or
    "ansi". backend: "auto" (the server when an address is given, else in-process), "local" or
    "server" (docs/local.md). task: the user population to play ({"split": "test", "id": 3} or
    {"params": {...}}), as set_task would set it (default: the sim's default task).
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}
    __reduce_ex__ = refuse_copy  # no copy, deepcopy or pickle: see errors.refuse_copy

    def __init__(self, env_id: str = "ECommerce-v1", *, address: Optional[str] = None,
                 config: Optional[dict] = None, seed: Optional[int] = None,
                 max_episode_steps: Optional[int] = None, render_mode: Optional[str] = None,
                 timeout: float = DEFAULT_TIMEOUT_S, server_path: Optional[str] = None,
                 server_key: Optional[str] = None, client_key: Any = None,
                 backend: str = "auto", task: Optional[dict] = None):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode {render_mode!r} is not supported; expected one of "
                             f"{self.metadata['render_modes']} or None")
        self.env_id = env_id
        self.render_mode = render_mode
        self._handle: Optional[int] = None
        self._local = None  # the LocalBatch when the backend is in-process
        self._client: Optional[Client] = None
        self._client = open_backend(backend, address, timeout=timeout, server_path=server_path,
                                    server_key=server_key, client_key=client_key)
        try:
            made = self._client.make(env_id, 1, seed=random_seed() if seed is None else seed,
                                     config=config, autoreset="disabled",
                                     max_episode_steps=max_episode_steps)
        except BaseException:
            self._client.close()
            self._client = None
            raise
        self._handle = made["handle"]
        self.observation_space = made["observation_space"]
        self.action_space = as_slate(made["action_space"])
        self.max_episode_steps = made.get("max_episode_steps")
        self.task = made.get("task") or {}
        rr = made.get("reward_range")
        self.reward_range = (float(rr[0]), float(rr[1])) if isinstance(rr, list) and len(rr) == 2 \
            else (-float("inf"), float("inf"))
        self.metadata = dict(type(self).metadata)
        server_meta = made.get("metadata")
        if isinstance(server_meta, dict):
            for k, v in server_meta.items():
                if k != "autoreset_mode":  # the batch-of-one is "disabled"; not a vector env
                    self.metadata.setdefault(k, v)
        self._action_shape = (1,) + tuple(self.action_space.shape or ())
        self._local = self._client.batch(self._handle) if isinstance(self._client, LocalClient) \
            else None
        # Over shared memory the batch is a view two steps long; a Gymnasium env hands out data
        # its user may keep, so the one env's row is copied off the segment.
        self._detach = self._local is None and self._client.uses_shm(self._handle)
        set_task_or_close(self, task)

    @property
    def client(self) -> Client:
        if self._client is None:
            raise gym.error.ClosedEnvironmentError(f"{self.env_id} env is closed")
        return self._client

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None
              ) -> Tuple[Any, Dict[str, Any]]:
        if isinstance(seed, np.integer):  # Gymnasium's seeding takes Python ints only; the
            seed = int(seed)               # vector env and the make-time seed take numpy's too
        super().reset(seed=seed)
        check_reset_options(options)
        if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
        obs, info = self.client.reset(self._handle, seed=None if seed is None else int(seed),
                                      options=options)
        if self._detach:
            obs, info = _shm.detach(obs), _shm.detach(info)
        return unbatch(obs), unbatch_info(info)

    def step(self, action: Any) -> Tuple[Any, float, bool, bool, Dict[str, Any]]:
        a = as_action(action, self._action_shape)
        if self._local is not None:  # in-process: the same result without the batch form
            return self._local.step_single(a)
        obs, reward, terminated, truncated, info = self.client.step(self._handle, a)
        if self._detach:
            obs, info = _shm.detach(obs), _shm.detach(info)
        return (unbatch(obs), float(reward[0]), bool(terminated[0]), bool(truncated[0]),
                unbatch_info(info))

    def render(self) -> Optional[str]:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; make the env with "
                            "render_mode='ansi'")
            return None
        return self.client.render(self._handle, 0)

    def set_task(self, task: dict) -> Dict[str, Any]:
        """Sets the task ({"split": "train", "id": 3} or {"params": {...}}); it takes effect at
        the next reset. Returns the server's description of it."""
        self.task = self.client.set_task(self._handle, task)
        return self.task

    def close(self) -> None:
        """Closes the server handle and the connection. Idempotent; never raises for a dead server."""
        client, self._client = self._client, None
        self._local = None
        if client is None:
            return
        try:
            if self._handle is not None:
                client.close_handle(self._handle, timeout=CLOSE_TIMEOUT_S)
        except Exception:
            pass  # the server is gone or the handle expired: nothing left to free
        finally:
            client.close()
        super().close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"<RemoteEnv {self.env_id} handle={self._handle}>"
