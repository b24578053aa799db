"""recarena.local - the in-process backend: the simulators run inside this Python process through
librecarena_local.so (env/local/local.h, docs/local.md), loaded with ctypes. No server, no message.

LocalClient has the methods of Client that RemoteEnv and RemoteVectorEnv use (make, reset, step,
set_task, render, close_handle, close) with the same return values and the same exception classes
for the same bad input, so the env classes are the same code over either backend. Each make
returns a handle into this client's own table.

Arrays returned by reset and step are fresh copies (as the server path's replies are), so a
caller may keep them across steps.

The library is found as find_local_library describes. A LocalClient belongs to one thread.
"""
from __future__ import annotations

import ctypes as C
import itertools
import math
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from gymnasium import spaces

from .errors import (ERROR_CLASSES, BadActionError, BadConfigError, BadRequestError, NoSuchHandleError,
                     ServerError, TransportError, RecarenaError, refuse_copy)
from .wire import check_int

LIBRARY_NAME = "librecarena_local.so"
ENV_VAR = "RECARENA_LOCAL_LIB"
ABI = 1                          # RA_LOCAL_ABI of env/local/local.h
MAX_FIELDS = 16                  # RA_SIM_MAX_FIELDS
MAX_DIMS = 3                     # RA_SIM_MAX_DIMS
MIN_PARALLEL = 64                # RA_SESSION_MIN_PARALLEL: smaller batches run on one thread

# ra_dtype_t order (protocol/tensor.h)
_DTYPES = [np.dtype("<f4"), np.dtype("<f8"), np.dtype("<i4"), np.dtype("<i8"), np.dtype("u1"),
           np.dtype("i1"), np.dtype("?")]
_KV_NUM, _KV_STR, _KV_BOOL = 0, 1, 2
_KEY_MAX = 256                   # the server's config key limit (bytes, with the NUL)
_KV_MAX = 256
_DEPTH_MAX = 8


class LocalLibraryNotFoundError(RecarenaError, FileNotFoundError):
    """librecarena_local.so was not found (or is of another ABI); the message says where we looked."""
    code = "IO"


# ------------------------------------------------------------------------------------------------
# ctypes mirror of env/local/local.h

class _KV(C.Structure):
    _fields_ = [("key", C.c_char_p), ("type", C.c_int), ("num", C.c_double), ("str", C.c_char_p)]


class _Task(C.Structure):
    _fields_ = [("split", C.c_char_p), ("id", C.c_int64), ("params", C.POINTER(_KV)),
                ("n_params", C.c_int)]


class _Args(C.Structure):
    _fields_ = [("env", C.c_char_p), ("num_envs", C.c_int64), ("seed", C.c_uint64),
                ("config", C.POINTER(_KV)), ("n_config", C.c_int), ("task", C.POINTER(_Task)),
                ("autoreset", C.c_char_p), ("has_max_episode_steps", C.c_bool),
                ("max_episode_steps", C.c_int64), ("threads", C.c_int)]


class _Buffers(C.Structure):
    _fields_ = [("obs", C.c_void_p * MAX_FIELDS), ("info", C.c_void_p * MAX_FIELDS),
                ("final_obs", C.c_void_p * MAX_FIELDS), ("reward", C.c_void_p),
                ("terminated", C.c_void_p), ("truncated", C.c_void_p),
                ("info_mask", C.c_void_p), ("final_mask", C.c_void_p)]


class _Field(C.Structure):
    _fields_ = [("name", C.c_char_p), ("dtype", C.c_int), ("ndim", C.c_int),
                ("shape", C.c_int64 * MAX_DIMS), ("low", C.c_void_p), ("high", C.c_void_p)]


class _Error(C.Structure):
    _fields_ = [("code", C.c_int), ("env_index", C.c_int), ("message", C.c_char * 256)]


def _dev_library() -> Path:
    """Where a development checkout builds the library (clients/python/recarena/ -> repo root)."""
    return Path(__file__).resolve().parents[3] / "build" / "env" / "local" / LIBRARY_NAME


def find_local_library(explicit: Optional[str] = None) -> str:
    """Path of librecarena_local.so: (1) explicit, (2) $RECARENA_LOCAL_LIB, (3) next to the
    recarena-server binary $RECARENA_SERVER points at (build/env/server -> build/env/local),
    (4) the development checkout's build/env/local/. LocalLibraryNotFoundError when (1) or (2)
    is given and wrong, or when nothing is found: it lists the tries."""
    tried: List[str] = []
    cands: List[Tuple[str, Optional[str]]] = [("argument library_path", explicit),
                                              (f"${ENV_VAR}", os.environ.get(ENV_VAR))]
    srv = os.environ.get("RECARENA_SERVER")
    if srv:
        cands.append(("next to $RECARENA_SERVER",
                      str(Path(srv).resolve().parent.parent / "local" / LIBRARY_NAME)))
    cands.append(("development checkout", str(_dev_library())))
    for what, p in cands:
        if not p:
            tried.append(f"{what}: not set")
        elif os.path.isfile(p):
            return os.path.abspath(p)
        elif what in ("argument library_path", f"${ENV_VAR}"):
            # named by the caller: a wrong one is an error, not a reason to load another build
            raise LocalLibraryNotFoundError(f"{what} {p!r} is not a file")
        else:
            tried.append(f"{what} {p!r}: not a file")
    raise LocalLibraryNotFoundError(
        "cannot find " + LIBRARY_NAME + "; tried:\n  " + "\n  ".join(tried) +
        "\nBuild it (scripts/build.sh) or use backend='server'.")


_LIBS: Dict[str, C.CDLL] = {}


def load_library(path: Optional[str] = None) -> C.CDLL:
    """The loaded library (once per path), with every signature declared."""
    path = find_local_library(path)
    lib = _LIBS.get(path)
    if lib is not None:
        return lib
    try:
        lib = C.CDLL(path)
    except OSError as e:
        raise LocalLibraryNotFoundError(f"cannot load {path}: {e}") from None
    P, I, V = C.c_void_p, C.c_int, None
    sigs = {
        "ra_local_abi": ([], I),
        "ra_local_new": ([C.POINTER(_Args), C.POINTER(P), C.POINTER(_Error)], I),
        "ra_local_destroy": ([C.POINTER(P)], V),
        "ra_local_num_candidates": ([P], I), "ra_local_slate_size": ([P], I),
        "ra_local_max_episode_steps": ([P], I), "ra_local_autoreset": ([P], C.c_char_p),
        "ra_local_reward_range": ([P, C.POINTER(C.c_double)], V),
        "ra_local_num_obs": ([P], I), "ra_local_num_info": ([P], I),
        "ra_local_field": ([P, C.c_bool, I, C.POINTER(_Field)], C.c_bool),
        "ra_local_buffers": ([P, C.POINTER(_Buffers)], V),
        "ra_local_reset": ([P, P, P], I),
        "ra_local_step": ([P, P, I, P, P], I),
        "ra_local_set_task": ([P, C.POINTER(_Task), P, C.POINTER(_Error)], I),
        "ra_local_describe_task": ([P, I, C.POINTER(_KV), I], I),
        "ra_local_render": ([P, I, C.c_char_p, C.c_size_t], I),
        "ra_local_env_count": ([], I), "ra_local_env_name": ([I], C.c_char_p),
        "ra_err_code": ([I], C.c_char_p),
    }
    for name, (argtypes, restype) in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = argtypes, restype
    if lib.ra_local_abi() != ABI:
        raise LocalLibraryNotFoundError(f"{path} has ABI {lib.ra_local_abi()}, this package "
                                        f"expects {ABI}; rebuild it")
    _LIBS[path] = lib
    return lib


def available(path: Optional[str] = None) -> bool:
    """Whether the local backend can be used (the library is found and loads)."""
    try:
        load_library(path)
        return True
    except LocalLibraryNotFoundError:
        return False


# ------------------------------------------------------------------------------------------------
# Request fields -> C key/value lists, with the server's checks (env/server/kvlist.c, reply.c)

class _KVList:
    """Flattened key/values kept alive (with their encoded strings) as long as this object."""

    def __init__(self) -> None:
        self.items: List[Tuple[bytes, int, float, Optional[bytes]]] = []

    def flatten(self, m: dict, prefix: str, depth: int, skip_task: bool, what: str) -> None:
        if depth > _DEPTH_MAX:
            raise BadConfigError(f"{what} key '{prefix}' nests deeper than {_DEPTH_MAX} maps")
        for k, v in m.items():
            if not isinstance(k, str):
                raise BadConfigError(f"{what} keys must be strings, got {type(k).__name__}")
            if not k or "\0" in k:
                raise BadConfigError(f"{what} has an empty key or a key with a NUL byte")
            full = f"{prefix}.{k}" if prefix else k
            if len(full.encode()) >= _KEY_MAX:
                raise BadConfigError(f"{what} key '{full[:60]}...' is longer than {_KEY_MAX - 1} "
                                     "bytes")
            if skip_task and depth == 0 and full == "task":
                continue
            if v is None:
                continue
            if isinstance(v, dict):
                self.flatten(v, full, depth + 1, False, what)
                continue
            if len(self.items) >= _KV_MAX:
                raise BadConfigError(f"{what} has more than {_KV_MAX} keys")
            if isinstance(v, (bool, np.bool_)):
                item = (full.encode(), _KV_BOOL, 1.0 if v else 0.0, None)
            elif isinstance(v, (int, np.integer)):
                if not -1e308 < v < 1e308:  # float(v) would overflow: no double holds it
                    raise BadConfigError(f"{what} key '{full}' must be a finite number")
                item = (full.encode(), _KV_NUM, float(v), None)
            elif isinstance(v, (float, np.floating)):
                if not math.isfinite(v):
                    raise BadConfigError(f"{what} key '{full}' must be a finite number")
                item = (full.encode(), _KV_NUM, float(v), None)
            elif isinstance(v, str):
                if "\0" in v:
                    raise BadConfigError(f"{what} key '{full}' has a NUL byte in its value")
                item = (full.encode(), _KV_STR, 0.0, v.encode())
            else:
                raise BadConfigError(f"{what} key '{full}' is {type(v).__name__}; expected a "
                                     "number, bool, string or map")
            self.items.append(item)

    def array(self) -> Any:
        arr = (_KV * max(1, len(self.items)))()
        for i, (k, t, num, s) in enumerate(self.items):
            arr[i].key, arr[i].type, arr[i].num, arr[i].str = k, t, num, s
        return arr


def _parse_task(t: Any) -> Tuple[_Task, Any]:
    """(task struct, what keeps its memory alive), with the server's checks."""
    if not isinstance(t, dict):
        raise BadConfigError(f"task must be a map, got {type(t).__name__}")
    split, tid, params = t.get("split"), t.get("id"), t.get("params")
    if split is not None and params is not None:
        raise BadConfigError("task takes {split, id} or {params}, not both")
    task = _Task()
    if split is not None:
        if not isinstance(split, str) or "\0" in split:
            raise BadConfigError(f"task.split must be a string, got {type(split).__name__}")
        if (not isinstance(tid, (int, np.integer)) or isinstance(tid, (bool, np.bool_))
                or not 0 <= tid < 2 ** 63):
            raise BadConfigError("task.id must be a non-negative integer with task.split")
        task.split, task.id = split.encode(), int(tid)
        return task, None
    if params is not None:
        if not isinstance(params, dict):
            raise BadConfigError(f"task.params must be a map, got {type(params).__name__}")
        kv = _KVList()
        kv.flatten(params, "", 0, False, "task.params")
        arr = kv.array()
        task.params, task.n_params = C.cast(arr, C.POINTER(_KV)), len(kv.items)
        return task, arr
    raise BadConfigError("task needs {split: str, id: int} or {params: map}")


def _kv_value(kv: _KV) -> Any:
    if kv.type == _KV_STR:
        return (kv.str or b"").decode()
    if kv.type == _KV_BOOL:
        return kv.num != 0
    x = kv.num
    return int(x) if x == math.floor(x) and abs(x) < 9e15 else float(x)


# ------------------------------------------------------------------------------------------------
# One batch

def _view(addr: int, dtype: np.dtype, shape: Tuple[int, ...]) -> np.ndarray:
    """A numpy view of memory the library owns (valid while the batch lives)."""
    n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    return np.frombuffer((C.c_char * max(n, 1)).from_address(addr), dtype=dtype,
                         count=int(np.prod(shape, dtype=np.int64))).reshape(shape)


class LocalBatch:
    """One ra_local_t: num_envs envs of one simulator, with numpy views of its output buffers."""

    def __init__(self, lib: C.CDLL, env: str, num_envs: int, seed: Optional[int],
                 config: Optional[dict], autoreset: Optional[str],
                 max_episode_steps: Optional[int], threads: Optional[int]):
        self._lib = lib
        self._ptr = C.c_void_p()
        self._busy = threading.Lock()  # see _enter
        if config is not None and not isinstance(config, dict):
            raise BadRequestError(f"field 'config' must be a map, got {type(config).__name__}")
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)):
            raise BadRequestError(f"field 'num_envs' must be an integer, got {num_envs!r}")
        kv = _KVList()
        task_keep: Any = None
        args = _Args()
        if config:
            kv.flatten(config, "", 0, True, "config")
            if config.get("task") is not None:
                task, task_keep = _parse_task(config["task"])
                args.task = C.pointer(task)
        cfg = kv.array()
        args.env = env.encode()
        args.num_envs = max(-2 ** 63, min(int(num_envs), 2 ** 63 - 1))
        if seed is not None and (not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 64):
            raise BadRequestError(f"field 'seed' must be a non-negative integer, got {seed!r}")
        args.seed = 0 if seed is None else int(seed)
        args.config, args.n_config = C.cast(cfg, C.POINTER(_KV)), len(kv.items)
        args.autoreset = None if autoreset is None else str(autoreset).encode()
        if max_episode_steps is not None:
            args.has_max_episode_steps = True
            args.max_episode_steps = max(-2 ** 63, min(int(max_episode_steps), 2 ** 63 - 1))
        if threads is None:
            threads = max(0, (os.cpu_count() or 1) - 1) if int(num_envs) >= MIN_PARALLEL else 0
        args.threads = int(threads)
        err = _Error()
        rc = lib.ra_local_new(C.byref(args), C.byref(self._ptr), C.byref(err))
        del task_keep
        if rc != 0:
            self._ptr = C.c_void_p()
            raise _error(lib, err)
        p = self._ptr
        self.num_envs = n = int(num_envs)
        self.K = lib.ra_local_num_candidates(p)
        self.k = lib.ra_local_slate_size(p)
        self.autoreset = lib.ra_local_autoreset(p).decode()
        bufs = _Buffers()
        lib.ra_local_buffers(p, C.byref(bufs))
        f = _Field()
        self.obs_fields: List[Tuple[str, np.dtype, Tuple[int, ...]]] = []
        self.obs_low: List[np.ndarray] = []
        self.obs_high: List[np.ndarray] = []
        self._obs: List[np.ndarray] = []
        self._final_obs: List[np.ndarray] = []
        for i in range(lib.ra_local_num_obs(p)):
            lib.ra_local_field(p, False, i, C.byref(f))
            dt, shape = _DTYPES[f.dtype], tuple(int(f.shape[d]) for d in range(f.ndim))
            self.obs_fields.append((f.name.decode(), dt, shape))
            self.obs_low.append(_view(f.low, dt, shape).copy())
            self.obs_high.append(_view(f.high, dt, shape).copy())
            self._obs.append(_view(bufs.obs[i], dt, (n,) + shape))
            if bufs.final_obs[i]:
                self._final_obs.append(_view(bufs.final_obs[i], dt, (n,) + shape))
        self.info_fields: List[Tuple[str, np.ndarray]] = []
        for i in range(lib.ra_local_num_info(p)):
            lib.ra_local_field(p, True, i, C.byref(f))
            dt, shape = _DTYPES[f.dtype], tuple(int(f.shape[d]) for d in range(f.ndim))
            self.info_fields.append((f.name.decode(), _view(bufs.info[i], dt, (n,) + shape)))
        self._reward = _view(bufs.reward, np.dtype("<f4"), (n,))
        self._term = _view(bufs.terminated, np.dtype("?"), (n,))
        self._trunc = _view(bufs.truncated, np.dtype("?"), (n,))
        self._info_mask = _view(bufs.info_mask, np.dtype("?"), (n,))
        self._final_mask = _view(bufs.final_mask, np.dtype("?"), (n,))
        self._names = [name for name, _, _ in self.obs_fields]
        # Action staging: shape (N,) or (N, k) int64, passed by a fixed address.
        self.action_shape = (n,) if self.k == 1 else (n, self.k)
        self._act = np.zeros(self.action_shape, np.int64)
        self._act_ptr = self._act.ctypes.data
        self._act_shape = (C.c_int64 * 2)(*self.action_shape, *([0] * (2 - len(self.action_shape))))
        self._act_ndim = len(self.action_shape)
        self._err = _Error()
        self._err_ref = C.byref(self._err)
        self._step = lib.ra_local_step
        self._seeds = np.zeros(n, np.uint64)
        self._mask = np.zeros(n, np.uint8)

    def destroy(self) -> None:
        with self._busy:  # never under another thread's step: it ends soon, and C would crash
            if self._ptr:
                self._obs = self._final_obs = []
                self.info_fields = []
                self._lib.ra_local_destroy(C.byref(self._ptr))
                self._ptr = C.c_void_p()

    # --------------------------------------------------------------------------------------------
    def spaces(self) -> Tuple[spaces.Dict, spaces.Space]:
        """Observation and action spaces, built as the wire decoder builds them."""
        obs = spaces.Dict(OrderedDict(
            (name, spaces.Box(low=lo, high=hi, shape=shape, dtype=dt.newbyteorder("=")))
            for (name, dt, shape), lo, hi in zip(self.obs_fields, self.obs_low, self.obs_high)))
        act = spaces.Discrete(self.K, start=0) if self.k == 1 else \
            spaces.MultiDiscrete(np.full(self.k, self.K, np.int64), dtype=np.int64)
        return obs, act

    def describe_task(self, i: int = 0) -> Dict[str, Any]:
        kv = (_KV * 128)()
        n = self._lib.ra_local_describe_task(self._ptr, i, kv, 128)
        return {(kv[j].key or b"").decode(): _kv_value(kv[j]) for j in range(max(n, 0))}

    def reward_range(self) -> List[float]:
        rr = (C.c_double * 2)()
        self._lib.ra_local_reward_range(self._ptr, rr)
        return [float(rr[0]), float(rr[1])]

    def obs(self) -> Dict[str, np.ndarray]:
        return {name: a.copy() for name, a in zip(self._names, self._obs)}

    def reset(self, seeds: Optional[np.ndarray], mask: Optional[np.ndarray]) -> None:
        self._enter()
        try:
            sp = mp = None
            if seeds is not None:
                self._seeds[:] = seeds
                sp = self._seeds.ctypes.data
            if mask is not None:
                self._mask[:] = mask
                mp = self._mask.ctypes.data
            if self._lib.ra_local_reset(self._ptr, sp, mp) != 0:
                raise MemoryError("recarena local backend: no output buffer for a reset")
        finally:
            self._busy.release()

    def step_single(self, action: np.ndarray) -> Tuple[Any, float, bool, bool, Dict[str, Any]]:
        """Steps a batch of one and returns env 0's (obs, reward, terminated, truncated, info)
        exactly as RemoteEnv builds them from a step reply (unbatch, unbatch_info), without
        building the batch form first: the single env's hot path."""
        self.step(action)
        obs = {name: (a[0].copy() if a.ndim > 1 else a[0]) for name, a in zip(self._names, self._obs)}
        info = {name: (a[0].copy() if a.ndim > 1 else a[0]) for name, a in self.info_fields} \
            if self._info_mask[0] else {}
        return obs, float(self._reward[0]), bool(self._term[0]), bool(self._trunc[0]), info

    def _enter(self) -> None:
        """Takes the batch for one call, or raises TransportError: when it is destroyed (under
        an env that still holds it) and when another thread is in a call (two threads stepping
        one batch race on its buffers in C). Release with self._busy.release()."""
        if not self._busy.acquire(blocking=False):
            raise TransportError("this env is in a reset or step from another thread; an env "
                                 "belongs to one thread at a time (make one env per thread)")
        if self._ptr.value is None:
            self._busy.release()
            raise TransportError("the client is closed")

    def step(self, action: np.ndarray) -> None:
        self._enter()
        try:
            if action.shape == self.action_shape:
                np.copyto(self._act, action, casting="unsafe")
                rc = self._step(self._ptr, self._act_ptr, self._act_ndim, self._act_shape,
                                self._err_ref)
            else:  # the library reports the shape error with the server's message
                shape = (C.c_int64 * max(1, action.ndim))(*action.shape)
                rc = self._step(self._ptr, self._act_ptr, action.ndim, shape, self._err_ref)
            if rc != 0:
                raise _error(self._lib, self._err)
        finally:
            self._busy.release()


def _error(lib: C.CDLL, err: _Error) -> ServerError:
    """The exception the server path raises for the same ra_err_t."""
    code = lib.ra_err_code(err.code).decode()
    cls = ERROR_CLASSES.get(code, ServerError)
    env_index = err.env_index if err.env_index >= 0 else None
    return cls(err.message.decode(errors="replace"), code=code, env_index=env_index)


# ------------------------------------------------------------------------------------------------
# The Client-shaped front

_handles = itertools.count(1)


class LocalClient:
    """The local backend behind RemoteEnv / RemoteVectorEnv (see the module docstring).
    threads: worker threads per batch (default: CPUs - 1 for batches of 64 or more, else none)."""

    local_server = None
    address = None
    __reduce_ex__ = refuse_copy  # a copy would destroy this one's batches when collected

    def __init__(self, library_path: Optional[str] = None, threads: Optional[int] = None):
        self._lib = load_library(library_path)
        self._threads = threads
        self._batches: Dict[int, LocalBatch] = {}
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        for b in self._batches.values():
            b.destroy()
        self._batches.clear()
        self._closed = True

    def __enter__(self) -> "LocalClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def _get(self, handle: int) -> LocalBatch:
        if self._closed:
            raise TransportError("the client is closed")
        b = self._batches.get(handle)
        if b is None:
            raise NoSuchHandleError(f"handle {handle} is not open in this process")
        return b

    def batch(self, handle: int) -> LocalBatch:
        return self._get(handle)

    def list(self) -> List[Dict[str, Any]]:
        return [{"id": self._lib.ra_local_env_name(i).decode()}
                for i in range(self._lib.ra_local_env_count())]

    def make(self, env: str, num_envs: int, seed: Optional[int] = None,
             config: Optional[dict] = None, autoreset: Optional[str] = None,
             max_episode_steps: Optional[int] = None) -> Dict[str, Any]:
        if self._closed:
            raise TransportError("the client is closed")
        # The checks Client.make applies before sending (TypeError / BadRequestError from them).
        num_envs = check_int("num_envs", num_envs)
        seed = None if seed is None else check_int("seed", seed)
        max_episode_steps = None if max_episode_steps is None else \
            check_int("max_episode_steps", max_episode_steps)
        if not isinstance(env, str):  # the server's ra_get_str: a request-level error
            raise BadRequestError(f"field 'env' must be a string, got {type(env).__name__}")
        b = LocalBatch(self._lib, env, num_envs, seed, config, autoreset, max_episode_steps,
                       self._threads)
        handle = next(_handles)
        self._batches[handle] = b
        obs_space, act_space = b.spaces()
        return {"handle": handle, "num_envs": b.num_envs, "observation_space": obs_space,
                "action_space": act_space, "reward_range": b.reward_range(),
                "max_episode_steps": self._lib.ra_local_max_episode_steps(b._ptr),
                "autoreset": b.autoreset, "task": b.describe_task(0),
                "metadata": {"autoreset_mode": b.autoreset, "render_modes": ["ansi"]}}

    def reset(self, handle: int, seed: Any = None, options: Optional[dict] = None
              ) -> Tuple[Any, Dict[str, Any]]:
        b = self._get(handle)
        n = b.num_envs
        seeds = mask = None
        if seed is not None:
            if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
                if not 0 <= seed < 2 ** 64:
                    raise BadRequestError(f"field 'seed' must be a non-negative integer or a list "
                                          f"of {n}, got {seed}")
                seeds = (np.arange(n, dtype=np.uint64) + np.uint64(seed))
            elif isinstance(seed, (list, tuple, np.ndarray)):
                seed = [check_int(f"seed {i}", s) for i, s in enumerate(seed)]  # as Client.reset
                if len(seed) != n:
                    raise BadRequestError(f"seed list has {len(seed)} entries, expected {n} "
                                          "(one per env)")
                for i, s in enumerate(seed):
                    if not 0 <= s < 2 ** 64:
                        raise BadRequestError(f"seed {i} is {s}, expected a non-negative "
                                              "integer", env_index=i)
                seeds = np.array(seed, dtype=np.uint64)
            else:
                raise BadRequestError(f"field 'seed' must be a non-negative integer or a list of "
                                      f"{n}, got {type(seed).__name__}")
        if options is not None and not isinstance(options, dict):
            raise BadRequestError(f"field 'options' must be a map, got {type(options).__name__}")
        if options and options.get("reset_mask") is not None:
            m = np.asarray(options["reset_mask"], dtype=np.bool_)  # as Client.reset sends it
            if m.shape != (n,):
                raise BadRequestError(f"reset_mask must have shape ({n},), one per env")
            mask = m != 0
        b.reset(seeds, mask)
        return b.obs(), {}

    def step(self, handle: int, action: np.ndarray) -> Tuple[Any, np.ndarray, np.ndarray,
                                                             np.ndarray, Dict[str, Any]]:
        b = self._get(handle)
        a = np.asarray(action)
        if not np.issubdtype(a.dtype, np.integer):
            raise BadActionError(f"action has dtype {a.dtype}, expected an integer dtype")
        b.step(a)
        info: Dict[str, Any] = {}
        imask = b._info_mask.copy()
        for name, arr in b.info_fields:
            info[name] = arr.copy()
            info["_" + name] = imask
        if b._final_obs and b._final_mask.any():
            fmask = b._final_mask.copy()
            info["final_obs"] = {name: a.copy() for name, a in zip(b._names, b._final_obs)}
            info["_final_obs"] = fmask
            info["final_info"] = {k: v for name, _ in b.info_fields
                                  for k, v in ((name, info[name]), ("_" + name, fmask))}
            info["_final_info"] = fmask
        return b.obs(), b._reward.copy(), b._term.copy(), b._trunc.copy(), info

    def set_task(self, handle: int, task: dict, mask: Any = None) -> Dict[str, Any]:
        b = self._get(handle)
        n = b.num_envs
        mp = None
        first = 0
        if mask is not None:
            m = np.asarray(mask, dtype=np.bool_)  # as Client.set_task sends it
            if m.shape != (n,):
                raise BadRequestError(f"mask must have shape ({n},), one per env")
            mm = np.ascontiguousarray(m != 0, dtype=np.uint8)
            mp = mm.ctypes.data
            nz = np.flatnonzero(mm[:n - 1])
            first = int(nz[0]) if nz.size else n - 1
        if not isinstance(task, dict):  # the server's ra_get_map: a request-level error
            raise BadRequestError(f"field 'task' must be a map, got {type(task).__name__}")
        t, keep = _parse_task(task)
        err = _Error()
        rc = self._lib.ra_local_set_task(b._ptr, C.byref(t), mp, C.byref(err))
        del keep
        if rc != 0:
            raise _error(self._lib, err)
        return b.describe_task(first)

    def render(self, handle: int, index: int = 0) -> str:
        b = self._get(handle)
        if not 0 <= int(index) < b.num_envs:
            raise BadRequestError(f"index is {index}, expected 0..{b.num_envs - 1}")
        want = self._lib.ra_local_render(b._ptr, int(index), None, 0)
        buf = C.create_string_buffer(max(want, 0) + 1)
        self._lib.ra_local_render(b._ptr, int(index), buf, len(buf))
        return buf.value.decode(errors="replace")

    def close_handle(self, handle: int, timeout: Optional[float] = None) -> None:
        b = self._get(handle)
        b.destroy()
        del self._batches[handle]


# ------------------------------------------------------------------------------------------------
# Backend choice (docs/local.md, "Choosing a backend")

BACKENDS = ("auto", "local", "server")


def open_backend(backend: str = "auto", address: Optional[str] = None, **server_kwargs: Any):
    """The client for a backend: "server" a Client (address, or the embedded local server);
    "local" a LocalClient; "auto" the server whenever an address is given, else the local
    backend when its library is found (it is the fastest for every call: no process, no
    message), else the embedded server."""
    from .client import Client, check_timeout  # here: client.py imports the server machinery
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is not one of {BACKENDS}")
    if backend == "local" and address is not None:
        raise ValueError("backend='local' runs in this process; it takes no address")
    if backend == "local" and any(server_kwargs.get(k) is not None for k in ("server_key", "client_key")):
        raise ValueError("backend='local' runs in this process; CURVE keys are for a server")
    if backend == "auto":  # a $RECARENA_LOCAL_LIB that is set but wrong is an error, below
        backend = "server" if address is not None or not (available() or os.environ.get(ENV_VAR)) \
            else "local"
    if backend == "local":
        check_timeout(server_kwargs.get("timeout", 1.0))  # unused here, but refused alike
        return LocalClient()
    return Client(address, **server_kwargs)
