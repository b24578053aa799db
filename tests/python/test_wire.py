"""The protocol codec: tensors, spaces, malformed replies, and the golden messages of tests/data
that the C suite decodes too."""
from __future__ import annotations

import glob
import json
import os
from collections import OrderedDict

import struct

import msgpack
import numpy as np
import pytest
from gymnasium import spaces

from recarena import errors, wire
from recarena.errors import TransportError

GOLDEN = os.path.join(os.path.dirname(__file__), "..", "data", "golden")


@pytest.mark.parametrize("name", sorted(wire.DTYPES))
def test_tensor_roundtrip_is_zero_copy_for_every_dtype(name):
    dt = wire.DTYPES[name]
    a = (np.arange(12) % 2).astype(dt).reshape(3, 4) if name == "bool" else \
        np.arange(12).astype(dt).reshape(3, 4)
    out = wire.Outgoing()
    ref = out.tensor(a)
    assert ref == {"dtype": name, "shape": [3, 4], "frame": 1}
    frames = [b"header", bytes(out.frames[0])]
    b = wire.decode_tensor(ref, frames)
    assert b.dtype == dt and b.shape == (3, 4) and np.array_equal(a, b)
    assert not b.flags.writeable  # a view of the frame, not a copy
    assert np.shares_memory(b, np.frombuffer(frames[1], np.uint8))


def test_tensor_decode_rejects_mismatched_frames():
    frames = [b"h", b"\0" * 8]
    with pytest.raises(TransportError, match="needs 12"):
        wire.decode_tensor({"dtype": "f32", "shape": [3], "frame": 1}, frames)
    with pytest.raises(TransportError, match="out of range"):
        wire.decode_tensor({"dtype": "f32", "shape": [2], "frame": 2}, frames)
    with pytest.raises(TransportError, match="out of range"):
        wire.decode_tensor({"dtype": "f32", "shape": [2], "frame": 0}, frames)
    with pytest.raises(TransportError, match="unknown dtype"):
        wire.decode_tensor({"dtype": "f16", "shape": [4], "frame": 1}, frames)
    with pytest.raises(TransportError, match="bad shape"):
        wire.decode_tensor({"dtype": "u8", "shape": [-8], "frame": 1}, frames)


def test_big_endian_input_is_sent_little_endian():
    out = wire.Outgoing()
    ref = out.tensor(np.array([1, 2], dtype=">i4"))
    assert ref["dtype"] == "i32" and bytes(out.frames[0]) == b"\1\0\0\0\2\0\0\0"


def test_a_scalar_keeps_its_empty_shape():
    # np.ascontiguousarray makes a 0-d array 1-d: a scalar mask went out as shape [1] and the
    # server took it for a mask of one env, which the in-process backend refuses
    for a in (np.array(True), np.array(7, dtype=np.int64), np.float32(1.5)):
        out = wire.Outgoing()
        ref = out.tensor(a)
        assert ref["shape"] == [] and len(bytes(out.frames[0])) == np.asarray(a).itemsize
        b = wire.decode_tensor(ref, [b"h", bytes(out.frames[0])])
        assert b.shape == () and b == a


def _roundtrip(space):
    out = wire.Outgoing()
    tree = msgpack.unpackb(msgpack.packb(wire.encode_space(space, out)), raw=False)
    return wire.decode_space(tree, [b"h"] + [bytes(f) for f in out.frames])


def test_spaces_rebuild_exactly_with_dict_key_order():
    box = spaces.Box(low=np.array([-1, 0], np.float32), high=np.array([1, np.inf], np.float32))
    space = spaces.Dict(OrderedDict([
        ("zeta", box),
        ("alpha", spaces.Box(0, 255, (2, 3), np.uint8)),
        ("m", spaces.MultiDiscrete(np.array([[3, 4], [5, 6]]))),
        ("t", spaces.Tuple([spaces.Discrete(7, start=-2), spaces.MultiBinary(5)])),
    ]))
    back = _roundtrip(space)
    assert list(back.spaces) == ["zeta", "alpha", "m", "t"]
    assert back == space
    assert back["zeta"].dtype == np.float32 and np.isinf(back["zeta"].high[1])
    assert back["alpha"].dtype == np.uint8
    assert back["m"].nvec.shape == (2, 2) and back["m"].dtype == np.int64
    assert back["t"][0].start == -2


@pytest.mark.parametrize("tree,match", [
    ({"type": "Nope"}, "unknown space type"),
    ({"type": "Discrete"}, "'n' must be an integer"),
    ({"type": "Dict", "keys": ["a"], "spaces": {"b": {"type": "Discrete", "n": 2}}}, "do not match"),
    ({"type": "Box", "dtype": "f16", "shape": [1]}, "unknown Box dtype"),
    ([1, 2], "must be a map"),
])
def test_space_decode_rejects_malformed_trees(tree, match):
    with pytest.raises(TransportError, match=match):
        wire.decode_space(tree, [b"h"])


def test_space_decode_caps_nesting_depth():
    tree = {"type": "Discrete", "n": 2}
    for _ in range(wire.MAX_SPACE_DEPTH + 2):
        tree = {"type": "Tuple", "spaces": [tree]}
    with pytest.raises(TransportError, match="nested deeper"):
        wire.decode_space(tree, [b"h"])


def test_malformed_header_is_a_transport_error():
    with pytest.raises(TransportError):
        wire.unpack_header(b"\xc1")
    with pytest.raises(TransportError, match="expected a map"):
        wire.unpack_header(msgpack.packb([1, 2]))


# ------------------------------------------------------------------------------------------------
# Golden messages shared with the C suite (format: tests/data/golden/README.md).

def _golden_cases():
    return sorted(glob.glob(os.path.join(GOLDEN, "*.json")))


def _read_frames(path):
    """The parts of a .frames file: u32 count, then per frame u32 length and the bytes."""
    with open(path, "rb") as f:
        data = f.read()
    (count,), at, parts = struct.unpack_from("<I", data, 0), 4, []
    for _ in range(count):
        (n,) = struct.unpack_from("<I", data, at)
        parts.append(data[at + 4:at + 4 + n])
        at += 4 + n
    assert at == len(data), "trailing bytes"
    return parts


def _same(a, b, where="header"):
    """Equal values of equal types (an int is not a float), maps in the same key order."""
    if isinstance(b, dict):
        assert isinstance(a, dict) and list(a) == list(b), f"{where}: keys {list(a)} vs {list(b)}"
        for k in b:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(b, list):
        assert isinstance(a, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert type(a) is type(b) and a == b, f"{where}: {a!r} vs {b!r}"


def _tensor_refs(x, path="header"):
    if wire.is_tensor_ref(x):
        yield path, x
    elif isinstance(x, dict):
        for k, v in x.items():
            yield from _tensor_refs(v, f"{path}.{k}")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _tensor_refs(v, f"{path}[{i}]")


@pytest.mark.skipif(not _golden_cases(), reason="no golden messages in tests/data/golden yet")
@pytest.mark.parametrize("path", _golden_cases(), ids=os.path.basename)
def test_golden_message_decodes_like_its_description(path):
    with open(path) as f:
        want = json.load(f)
    parts = _read_frames(path[:-len(".json")] + ".frames")
    assert len(parts) == want["frames"]
    header = wire.unpack_header(parts[0])
    _same(header, want["header"])
    frames = {t["frame"]: t for t in want["tensor_frames"]}
    for k, t in frames.items():
        assert len(parts[k]) == t["nbytes"] and parts[k].hex() == t["hex"]
    for where, ref in _tensor_refs(header):  # every tensor decodes zero-copy to its frame
        arr = wire.decode_tensor(ref, parts, where)
        assert arr.dtype == wire.DTYPES[ref["dtype"]] and list(arr.shape) == ref["shape"]
        assert arr.tobytes().hex() == frames[ref["frame"]]["hex"]
    if want["kind"] == "request":  # and Python encodes the same request to the same bytes
        fields = {k: v for k, v in header.items() if k not in ("v", "id", "op")}
        assert wire.pack_request(header["id"], header["op"], fields)[0] == parts[0]
    elif header.get("ok") is False:
        e = errors.error_from_reply(header["error"])
        assert e.code == want["header"]["error"]["code"]
        assert e.message == want["header"]["error"]["message"]
        assert e.env_index == want["header"]["error"].get("env_index")
    for key in ("observation_space", "action_space"):
        if key in header:  # spaces rebuild with their exact dtype, bounds and key order
            space = wire.decode_space(header[key], parts, key)
            assert wire.encode_space(space, wire.Outgoing()).keys() >= {"type"}
            tree = header[key]
            if tree["type"] == "Dict":
                assert list(space.spaces) == tree["keys"]
                for name, sub in tree["spaces"].items():
                    if sub["type"] == "Box":
                        low = wire.decode_tensor(sub["low"], parts)
                        assert space[name].dtype == wire.DTYPES[sub["dtype"]]
                        assert np.array_equal(space[name].low, low)


@pytest.mark.skipif(not os.path.exists(os.path.join(GOLDEN, "step_reply.frames")),
                    reason="no golden step_reply")
def test_golden_step_reply_decodes_to_gymnasium_form():
    parts = _read_frames(os.path.join(GOLDEN, "step_reply.frames"))
    header = wire.unpack_header(parts[0])
    obs, reward, term, trunc, info = wire.decode_step_reply(header, parts)
    assert list(obs) == list(header["obs"]) and obs["user"].dtype == np.float32
    assert reward.shape == term.shape == trunc.shape == (obs["user"].shape[0],)
    assert term.dtype == np.bool_ and info["_clicks"].dtype == np.bool_
    assert set(info["final_obs"]) == set(header["info"]["final_obs"])
    assert info["_final_obs"].shape == reward.shape
