"""recarena.wire - the protocol v1 codec (docs/protocol.md). No sockets here.

A message is multipart: frame 0 a msgpack map (the header), frames 1..n raw little-endian C-order
tensor bytes referenced from the header as {"dtype", "shape", "frame"} (frame index 1-based).
Decoding is zero-copy: tensors are np.frombuffer views of the received frames (read-only; they keep
their frame alive). Every field of a reply is checked; a malformed one raises TransportError.
Pure functions; thread-safe.
"""
from __future__ import annotations

from collections import OrderedDict
from math import prod
from typing import Any, List, Sequence, Tuple

import msgpack
import numpy as np
from gymnasium import spaces

from .errors import TransportError

PROTOCOL_VERSION = 1

#: wire dtype name <-> numpy dtype (little-endian, bool one byte 0/1).
DTYPES = {
    "f32": np.dtype("<f4"), "f64": np.dtype("<f8"), "i32": np.dtype("<i4"),
    "i64": np.dtype("<i8"), "u8": np.dtype("u1"), "i8": np.dtype("i1"), "bool": np.dtype("?"),
}
_NAMES = {dt: name for name, dt in DTYPES.items()}
MAX_DIMS = 8
MAX_SPACE_DEPTH = 8


def dtype_name(dtype: Any) -> str:
    """Wire name of a numpy dtype; TypeError if the protocol has no such dtype."""
    dt = np.dtype(dtype).newbyteorder("<") if np.dtype(dtype).itemsize > 1 else np.dtype(dtype)
    try:
        return _NAMES[dt]
    except KeyError:
        raise TypeError(f"dtype {np.dtype(dtype)} has no protocol name; expected one of "
                        f"{sorted(DTYPES)}") from None


def check_int(what: str, v: Any) -> int:
    """v as a Python int when it is an integer (numpy's too); TypeError naming what otherwise, so
    that num_envs=2.5, seed=1.5 or max_episode_steps="10" are refused instead of truncated by
    int() (or refused with int()'s message, which names nothing)."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{what} must be an integer, got {v!r}")
    return int(v)


# ------------------------------------------------------------------------------------------------
# Outgoing

class Outgoing:
    """Collects the raw frames of one message while its header is built."""

    __slots__ = ("frames",)

    def __init__(self) -> None:
        self.frames: List[Any] = []

    def tensor(self, array: Any, dtype: Any = None) -> dict:
        """Appends array (cast to dtype if given; made little-endian and C-contiguous) as the next
        frame; returns its header reference."""
        a = np.asarray(array, dtype=dtype)
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        # The shape as given: ascontiguousarray makes a 0-d array 1-d, and a scalar sent as [1]
        # was accepted as a mask or action of one env, which the in-process backend refuses.
        shape = list(a.shape)
        a = np.ascontiguousarray(a)
        name = dtype_name(a.dtype)
        self.frames.append(memoryview(a).cast("B"))
        return {"dtype": name, "shape": shape, "frame": len(self.frames)}


def _pack_default(obj: Any) -> Any:
    """msgpack's hook for what it cannot pack itself: numpy scalars (a task id or config value
    drawn with numpy) go as the Python number they hold, as the in-process backend takes them."""
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, int):  # msgpack hands over the ints beyond 64 bits: see _fit_ints
        raise OverflowError(f"integer {obj} does not fit in 64 bits")
    raise TypeError(f"cannot send a {type(obj).__name__} in a request; expected numbers, "
                    "strings, bools, lists and maps")


def _fit_ints(v: Any) -> Any:
    """v with every int outside msgpack's 64-bit range made a float: the server reads numbers as
    doubles and answers with its own range error naming the key, as the in-process backend does,
    instead of msgpack's OverflowError naming nothing."""
    if isinstance(v, dict):
        return {k: _fit_ints(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_fit_ints(x) for x in v]
    if isinstance(v, int) and not isinstance(v, bool) and not -2 ** 63 <= v < 2 ** 64:
        try:
            return float(v)
        except OverflowError:  # beyond any double: still a number far out of every range
            return float("inf") if v > 0 else float("-inf")
    return v


def pack_request(req_id: int, op: str, fields: dict, out: Outgoing | None = None) -> List[Any]:
    """The parts of a request: [header, *frames]."""
    header = {"v": PROTOCOL_VERSION, "id": req_id, "op": op}
    header.update(fields)
    try:
        head = msgpack.packb(header, use_bin_type=True, default=_pack_default)
    except OverflowError:  # rare: only then pay for the walk over the fields
        head = msgpack.packb(_fit_ints(header), use_bin_type=True, default=_pack_default)
    return [head] + (out.frames if out is not None else [])


# ------------------------------------------------------------------------------------------------
# Incoming

def _buf(frame: Any) -> Any:
    """The bytes-like content of a received frame (zmq.Frame, bytes, memoryview)."""
    b = getattr(frame, "buffer", None)
    return frame if b is None else b


def unpack_header(frame: Any) -> dict:
    """Decodes frame 0: exactly one msgpack map."""
    try:
        header = msgpack.unpackb(_buf(frame), raw=False, strict_map_key=False)
    except Exception as e:  # msgpack raises several unrelated types
        raise TransportError(f"malformed reply header: {e}") from None
    if not isinstance(header, dict):
        raise TransportError(f"reply header is a {type(header).__name__}, expected a map")
    return header


def is_tensor_ref(obj: Any) -> bool:
    return isinstance(obj, dict) and "frame" in obj and "dtype" in obj and "shape" in obj


def decode_tensor(ref: Any, frames: Sequence[Any], name: str = "tensor") -> np.ndarray:
    """A read-only numpy view of the frame ref points at. frames[0] is the header frame.
    Cost: O(ndim) checks, no copy."""
    try:
        dt = DTYPES[ref["dtype"]]
        shape = ref["shape"]
        k = ref["frame"]
        numel = prod(shape)
        ok = (type(k) is int and 0 < k < len(frames) and type(shape) is list
              and len(shape) <= MAX_DIMS and all(type(s) is int and s >= 0 for s in shape))
    except (KeyError, TypeError):
        ok = False
    if not ok:
        _bad_tensor(ref, frames, name)
    buf = _buf(frames[k])
    if len(buf) != numel * dt.itemsize:
        raise TransportError(f"{name}: frame {k} holds {len(buf)} bytes, shape {list(shape)} "
                             f"of {ref['dtype']} needs {numel * dt.itemsize}")
    return np.frombuffer(buf, dtype=dt).reshape(shape)


def _bad_tensor(ref: Any, frames: Sequence[Any], name: str) -> None:
    """Raises the TransportError that says what is wrong with a tensor reference."""
    if not isinstance(ref, dict):
        raise TransportError(f"{name}: tensor reference is a {type(ref).__name__}, expected a map")
    if ref.get("dtype") not in DTYPES:
        raise TransportError(f"{name}: unknown dtype {ref.get('dtype')!r}")
    shape = ref.get("shape")
    if (not isinstance(shape, list) or len(shape) > MAX_DIMS
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)):
        raise TransportError(f"{name}: bad shape {shape!r}")
    k = ref.get("frame")
    raise TransportError(f"{name}: frame {k!r} out of range 1..{len(frames) - 1}")


def decode_tree(obj: Any, frames: Sequence[Any], name: str = "value") -> Any:
    """Replaces every tensor reference in a decoded header value by its array (maps stay dicts in
    wire order, lists stay lists)."""
    if is_tensor_ref(obj):
        return decode_tensor(obj, frames, name)
    if isinstance(obj, dict):
        return {k: decode_tree(v, frames, f"{name}.{k}") for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode_tree(v, frames, f"{name}[{i}]") for i, v in enumerate(obj)]
    return obj


# ------------------------------------------------------------------------------------------------
# Spaces

def _int(d: dict, key: str, where: str) -> int:
    v = d.get(key)
    if not isinstance(v, int) or isinstance(v, bool):
        raise TransportError(f"{where}: field '{key}' must be an integer, got {v!r}")
    return v


def decode_space(obj: Any, frames: Sequence[Any], where: str = "space",
                 depth: int = 0) -> spaces.Space:
    """Rebuilds a Gymnasium space from its tagged tree: exact dtype, shape, bounds, key order."""
    if depth > MAX_SPACE_DEPTH:
        raise TransportError(f"{where}: spaces nested deeper than {MAX_SPACE_DEPTH}")
    if not isinstance(obj, dict):
        raise TransportError(f"{where}: a space must be a map, got {type(obj).__name__}")
    kind = obj.get("type")
    if kind == "Box":
        dt = DTYPES.get(obj.get("dtype"))
        if dt is None:
            raise TransportError(f"{where}: unknown Box dtype {obj.get('dtype')!r}")
        shape = tuple(obj.get("shape") or ())
        low = np.asarray(decode_tensor(obj.get("low"), frames, f"{where}.low"))
        high = np.asarray(decode_tensor(obj.get("high"), frames, f"{where}.high"))
        if low.shape != shape:
            low = np.broadcast_to(low, shape)
        if high.shape != shape:
            high = np.broadcast_to(high, shape)
        return spaces.Box(low=low.astype(dt), high=high.astype(dt), shape=shape,
                          dtype=dt.newbyteorder("="))
    if kind == "Discrete":
        start = obj.get("start", 0)
        return spaces.Discrete(_int(obj, "n", where), start=start if isinstance(start, int) else 0)
    if kind == "MultiDiscrete":
        nvec = obj.get("nvec")
        if is_tensor_ref(nvec):
            nvec = decode_tensor(nvec, frames, f"{where}.nvec")
        nvec = np.asarray(nvec, dtype=np.int64)
        if obj.get("shape") is not None:
            nvec = nvec.reshape(tuple(obj["shape"]))
        start = obj.get("start")
        if start is not None:
            start = np.asarray(start, dtype=np.int64).reshape(nvec.shape)
        return spaces.MultiDiscrete(nvec, dtype=np.int64, start=start)
    if kind == "MultiBinary":
        shape = obj.get("shape")
        return spaces.MultiBinary(list(shape) if shape else _int(obj, "n", where))
    if kind == "Dict":
        keys = obj.get("keys")
        children = obj.get("spaces")
        if not isinstance(keys, list) or not isinstance(children, dict):
            raise TransportError(f"{where}: Dict needs 'keys' (list) and 'spaces' (map)")
        if sorted(map(str, keys)) != sorted(map(str, children)):
            raise TransportError(f"{where}: Dict keys {keys} do not match spaces {list(children)}")
        return spaces.Dict(OrderedDict(
            (k, decode_space(children[k], frames, f"{where}.{k}", depth + 1)) for k in keys))
    if kind == "Tuple":
        children = obj.get("spaces")
        if not isinstance(children, list):
            raise TransportError(f"{where}: Tuple needs 'spaces' (list)")
        return spaces.Tuple([decode_space(c, frames, f"{where}[{i}]", depth + 1)
                             for i, c in enumerate(children)])
    raise TransportError(f"{where}: unknown space type {kind!r}")


def encode_space(space: spaces.Space, out: Outgoing) -> dict:
    """The tagged tree of a space (used by tests and tools; the server is the usual sender)."""
    if isinstance(space, spaces.Box):
        return {"type": "Box", "dtype": dtype_name(space.dtype), "shape": list(space.shape),
                "low": out.tensor(space.low), "high": out.tensor(space.high)}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": [int(x) for x in space.nvec.ravel()],
                "shape": list(space.nvec.shape)}
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": int(np.prod(space.shape))}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "keys": list(space.spaces),
                "spaces": {k: encode_space(s, out) for k, s in space.spaces.items()}}
    if isinstance(space, spaces.Tuple):
        return {"type": "Tuple", "spaces": [encode_space(s, out) for s in space.spaces]}
    raise TypeError(f"space {space} has no protocol form")


def decode_reset_reply(header: dict, frames: Sequence[Any]) -> Tuple[Any, dict]:
    """(obs, info) of a reset reply."""
    return (decode_tree(header.get("obs"), frames, "obs"),
            decode_tree(header.get("info") or {}, frames, "info"))


def decode_step_reply(header: dict, frames: Sequence[Any]) -> Tuple[Any, np.ndarray, np.ndarray,
                                                                    np.ndarray, dict]:
    """(obs, reward, terminated, truncated, info) of a step reply. Under same_step the server
    puts final_obs / final_info and their masks inside info, only in a step where an env ended."""
    info = decode_tree(header.get("info") or {}, frames, "info")
    return (decode_tree(header.get("obs"), frames, "obs"),
            decode_tensor(header.get("reward"), frames, "reward"),
            decode_tensor(header.get("terminated"), frames, "terminated"),
            decode_tensor(header.get("truncated"), frames, "truncated"),
            info)


def split_reply(parts: Sequence[Any]) -> Tuple[dict, Sequence[Any]]:
    """(header, frames) of a received multipart reply, frames[0] being the header frame."""
    if not parts:
        raise TransportError("empty reply")
    return unpack_header(parts[0]), parts
