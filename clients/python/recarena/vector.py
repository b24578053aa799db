"""recarena.vector - RemoteVectorEnv, a gymnasium.vector.VectorEnv whose num_envs envs are one
server-side batch: one message per reset or step, whatever num_envs is.

Gymnasium 1.x vector semantics: reset(seed=int | [int | None] * N | None, options={"reset_mask":
bool[N], ...}); step(actions) -> (obs, rewards f32[N], terminations bool[N], truncations bool[N],
infos) with infos a dict of arrays plus "_name" bool masks; autoreset modes NEXT_STEP, SAME_STEP
(infos carry "final_obs", an object array of per-env observations, and "final_info", each with its
mask) and DISABLED (reset finished envs with reset_mask), reported in metadata["autoreset_mode"].
The server does the autoreset; this class converts the wire form. Arrays are zero-copy read-only
views of the reply. With addresses=[...] the batch is spread over several servers (recarena.shard,
docs/scaling.md) with the same results as one server. Not thread-safe (one Client, one socket).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from .client import CLOSE_TIMEOUT_S, DEFAULT_TIMEOUT_S, Client
from .env import check_reset_options, random_seed, set_task_or_close, unbatch
from .errors import refuse_copy
from .local import open_backend
from .shard import ShardGroup
from .spaces import as_action, as_slate
from .wire import check_int

_WIRE_MODES = {AutoresetMode.NEXT_STEP: "next_step", AutoresetMode.SAME_STEP: "same_step",
               AutoresetMode.DISABLED: "disabled"}
_MODE_NAMES = {"next_step": AutoresetMode.NEXT_STEP, "nextstep": AutoresetMode.NEXT_STEP,
               "same_step": AutoresetMode.SAME_STEP, "samestep": AutoresetMode.SAME_STEP,
               "disabled": AutoresetMode.DISABLED}


def to_autoreset_mode(mode: Union[str, AutoresetMode]) -> AutoresetMode:
    """AutoresetMode from the enum, its value ("NextStep") or the wire name ("next_step")."""
    if isinstance(mode, AutoresetMode):
        return mode
    m = _MODE_NAMES.get(str(mode).lower())
    if m is None:
        raise ValueError(f"unknown autoreset mode {mode!r}; expected one of "
                         f"{[x.value for x in AutoresetMode]} or {sorted(_WIRE_MODES.values())}")
    return m


class RemoteVectorEnv(gym.vector.VectorEnv):
    """num_envs envs of simulator env_id hosted by a recarena-server as one batch.

    address: the server endpoint, or None for the embedded local server. addresses: several
    server endpoints instead; the envs are split into contiguous shards, one per server, stepped
    in parallel and gathered in order (recarena.shard, docs/scaling.md). server_key, client_key:
    CURVE keys for a server started with --curve-secret (see recarena.client.curve_keys).
    config: the sim's config map. seed: make-time seed (env i starts from seed + i; default random). autoreset_mode:
    AutoresetMode or its name. max_episode_steps: server-side truncation (default: the sim's).
    render_mode: None or "ansi" (render() returns one text per env). backend: "auto" (the server
    when an address is given, else in-process), "local" or "server" (docs/local.md). task: the
    user population every env plays, as set_task would set it (default: the sim's default task).
    """

    metadata = {"render_modes": ["ansi"], "autoreset_mode": AutoresetMode.NEXT_STEP}
    __reduce_ex__ = refuse_copy  # no copy, deepcopy or pickle: see errors.refuse_copy

    def __init__(self, env_id: str = "ECommerce-v1", num_envs: int = 1, *,
                 address: Optional[str] = None, config: Optional[dict] = None,
                 seed: Optional[int] = None,
                 autoreset_mode: Union[str, AutoresetMode] = AutoresetMode.NEXT_STEP,
                 max_episode_steps: Optional[int] = None, render_mode: Optional[str] = None,
                 timeout: float = DEFAULT_TIMEOUT_S, server_path: Optional[str] = None,
                 server_key: Optional[str] = None, client_key: Any = None,
                 backend: str = "auto", addresses: Optional[Sequence[str]] = None,
                 task: Optional[dict] = None):
        if render_mode is not None and render_mode != "ansi":
            raise ValueError(f"render_mode {render_mode!r} is not supported; expected 'ansi' or None")
        mode = to_autoreset_mode(autoreset_mode)
        self.env_id = env_id
        self.num_envs = check_int("num_envs", num_envs)
        self.render_mode = render_mode
        self._handle: Optional[int] = None
        self._client: Optional[Client] = None
        if addresses is not None:
            if address is not None or backend == "local":
                raise ValueError("addresses= spreads the envs over running servers; it excludes "
                                 "address= and backend='local'")
            self._client = ShardGroup(addresses, timeout=timeout, server_key=server_key,
                                      client_key=client_key)
        else:
            self._client = open_backend(backend, address, timeout=timeout,
                                        server_path=server_path, server_key=server_key,
                                        client_key=client_key)
        try:
            made = self._client.make(env_id, self.num_envs,
                                     seed=random_seed() if seed is None else seed,
                                     config=config, autoreset=_WIRE_MODES[mode],
                                     max_episode_steps=max_episode_steps)
        except BaseException:
            self._client.close()
            self._client = None
            raise
        self._handle = made["handle"]
        self.autoreset_mode = mode
        self.single_observation_space = made["observation_space"]
        self.single_action_space = as_slate(made["action_space"])
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.max_episode_steps = made.get("max_episode_steps")
        self.task = made.get("task") or {}
        self.metadata = dict(type(self).metadata)
        server_meta = made.get("metadata")
        if isinstance(server_meta, dict):
            for k, v in server_meta.items():
                self.metadata.setdefault(k, v)
        self.metadata["autoreset_mode"] = mode
        self._action_shape = (self.num_envs,) + tuple(self.single_action_space.shape or ())
        set_task_or_close(self, task)

    @property
    def client(self) -> Client:
        if self._client is None:
            raise gym.error.ClosedEnvironmentError(f"{self.env_id} vector env is closed")
        return self._client

    # --------------------------------------------------------------------------------------------
    def reset(self, *, seed: Union[int, Sequence[Optional[int]], None] = None,
              options: Optional[dict] = None) -> Tuple[Any, Dict[str, Any]]:
        n = self.num_envs
        check_reset_options(options)
        options = dict(options) if options else {}
        mask = options.pop("reset_mask", None)
        if mask is not None:
            if not isinstance(mask, np.ndarray):
                raise TypeError(f"`options['reset_mask']` must be a numpy array, got {type(mask)}")
            if mask.shape != (n,):
                raise ValueError(f"`options['reset_mask']` must have shape `({n},)`, got "
                                 f"{mask.shape}")
            if mask.dtype != np.bool_:
                raise TypeError(f"`options['reset_mask']` must have `dtype=np.bool_`, got "
                                f"{mask.dtype}")
            if not mask.any():
                raise ValueError("`options['reset_mask']` must contain at least one True value")
        if seed is not None and not isinstance(seed, (int, np.integer)):
            if not isinstance(seed, (list, tuple, np.ndarray)):  # a str would pass as a list
                raise TypeError(f"seed must be an int, a list of {n} ints or Nones, or None; got "
                                f"{seed!r}")
            seed = [None if s is None else check_int(f"seed {i}", s) for i, s in enumerate(seed)]
            if len(seed) != n:
                raise ValueError(f"If seeds are passed as a list the length must match "
                                 f"num_envs={n} but got length={len(seed)}.")
            if any(s is None for s in seed):
                return self._reset_partly_seeded(seed, mask, options)
        for s in ([check_int("seed", seed)] if seed is not None and not isinstance(seed, list)
                  else seed or []):
            if s < 0:
                raise ValueError(f"seeds must be non-negative, got {s}")
        wire_opts = dict(options)
        if mask is not None:
            wire_opts["reset_mask"] = mask
        obs, info = self.client.reset(self._handle, seed=seed, options=wire_opts or None)
        return self._obs(obs), dict(info)

    def _reset_partly_seeded(self, seeds: List[Optional[int]], mask: Optional[np.ndarray],
                             options: dict) -> Tuple[Any, Dict[str, Any]]:
        """A seed list with None entries: the unseeded envs keep their streams, as Gymnasium's
        single envs do. Two masked resets; the second reply holds every env's current obs."""
        want = np.ones(self.num_envs, np.bool_) if mask is None else mask
        seeded = want & np.array([s is not None for s in seeds])
        unseeded = want & ~seeded
        infos = []
        obs = None
        if unseeded.any():
            obs, info = self.client.reset(self._handle, options={**options,
                                                                  "reset_mask": unseeded})
            obs, infos = self._copy(obs), infos + [info]
        if seeded.any():
            fill = [0 if s is None else int(s) for s in seeds]
            obs2, info = self.client.reset(self._handle, seed=fill,
                                           options={**options, "reset_mask": seeded})
            obs = obs2 if obs is None else _select(seeded, obs2, obs)
            infos.append(info)
        return self._obs(obs), _merge_infos(infos)

    def step(self, actions: Any) -> Tuple[Any, np.ndarray, np.ndarray, np.ndarray, Dict[str, Any]]:
        a = as_action(actions, self._action_shape)
        obs, reward, terminated, truncated, info = self.client.step(self._handle, a)
        if "final_obs" in info:
            # Gymnasium's form: final_obs an object array of per-env observations.
            info["final_obs"] = self._final_obs(info["final_obs"], info.get("_final_obs"))
        return self._obs(obs), reward, terminated, truncated, info

    # --------------------------------------------------------------------------------------------
    def _obs(self, obs: Any) -> Any:
        return obs

    def _copy(self, obs: Any) -> Any:
        if isinstance(obs, dict):
            return {k: np.array(v) for k, v in obs.items()}
        return np.array(obs)

    def _final_obs(self, batched: Any, mask: Optional[np.ndarray]) -> np.ndarray:
        """Gymnasium's form: an object array of N with env i's final observation where mask[i]."""
        if isinstance(batched, np.ndarray) and batched.dtype == object:
            return batched
        out = np.full(self.num_envs, None, dtype=object)
        idx = range(self.num_envs) if mask is None else np.flatnonzero(mask)
        for i in idx:
            out[i] = unbatch(batched, int(i))
        return out

    def render(self) -> Optional[Tuple[str, ...]]:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; make the env with "
                            "render_mode='ansi'")
            return None
        return tuple(self.client.render(self._handle, i) for i in range(self.num_envs))

    def set_task(self, task: dict, mask: Optional[np.ndarray] = None) -> Dict[str, Any]:
        """Sets the task of every env (or those in mask); it takes effect at each env's next
        reset. Returns the server's description."""
        self.task = self.client.set_task(self._handle, task, mask)
        return self.task

    def close_extras(self, **kwargs: Any) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if self._handle is not None:
                client.close_handle(self._handle, timeout=CLOSE_TIMEOUT_S)
        except Exception:
            pass  # the server is gone or the handle expired: nothing left to free
        finally:
            client.close()

    def __del__(self) -> None:
        try:
            if not getattr(self, "closed", True):
                self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"RemoteVectorEnv({self.env_id}, num_envs={self.num_envs})"


def _select(mask: np.ndarray, a: Any, b: Any) -> Any:
    """Rows of a where mask, else of b (obs dicts or arrays)."""
    if isinstance(a, dict):
        return {k: _select(mask, a[k], b[k]) for k in a}
    m = mask.reshape((-1,) + (1,) * (a.ndim - 1))
    return np.where(m, a, b)


def _merge_infos(infos: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Combines vector infos of disjoint env sets (each entry under its "_name" mask)."""
    out: Dict[str, Any] = {}
    for info in infos:
        for k, v in info.items():
            if k.startswith("_") or isinstance(v, dict):
                continue
            m = info.get("_" + k)
            if k not in out:
                out[k], out["_" + k] = np.array(v), np.array(m) if m is not None else None
            elif m is not None:
                out[k] = _select(m, v, out[k])
                out["_" + k] = out["_" + k] | m
    return {k: v for k, v in out.items() if v is not None}
