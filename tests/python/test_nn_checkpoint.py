"""agents/nn checkpoints are plain safetensors: readable with numpy alone, values as written.

The C tool nn_checkpoint_demo writes a checkpoint and the same values as JSON. Its path comes from
$RECARENA_NN_DEMO, else $RECARENA_BUILD_DIR/agents/nn/nn_checkpoint_demo, where RECARENA_BUILD_DIR
defaults to <repo>/build. Without the binary the tests are skipped with the reason.
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _demo() -> Path:
    explicit = os.environ.get("RECARENA_NN_DEMO")
    if explicit:
        return Path(explicit)
    build = Path(os.environ.get("RECARENA_BUILD_DIR", REPO / "build"))
    return build / "agents" / "nn" / "nn_checkpoint_demo"


def read_safetensors(path: Path):
    """Returns ({name: float32 array}, metadata) using only the format's definition."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    data = raw[8 + n :]
    meta = header.pop("__metadata__", {})
    out = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", name
        a, b = info["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype="<f4").reshape(info["shape"])
        out[name] = arr
    return out, meta


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    demo = _demo()
    if not demo.is_file():
        pytest.skip(f"nn_checkpoint_demo not built at {demo} (set RECARENA_NN_DEMO or RECARENA_BUILD_DIR)")
    d = tmp_path_factory.mktemp("nn")
    ck, expected = d / "demo.safetensors", d / "expected.json"
    subprocess.run([str(demo), str(ck), str(expected)], check=True, timeout=60)
    return read_safetensors(ck), json.loads(expected.read_text()), ck


def test_header_is_8_byte_aligned_json_with_metadata(written):
    (tensors, meta), expected, path = written
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert (8 + n) % 8 == 0
    assert meta["format"] == "recarena-nn-1"
    assert int(meta["step"]) == expected["step"] == 3
    assert {"rng_seed", "rng_stream", "rng_counter", "replicas"} <= set(meta)


def test_tensors_have_the_shapes_and_values_written(written):
    (tensors, _), expected, _ = written
    assert tensors["l0.w"].shape == (3, 4)
    assert tensors["l0.b"].shape == (3,)
    for name in ["l0.w", "l0.b", "adam_m.l0.w", "adam_m.l0.b", "adam_v.l0.w", "adam_v.l0.b"]:
        want = np.asarray(expected[name], dtype=np.float32)
        np.testing.assert_array_equal(tensors[name].ravel(), want, err_msg=name)


def test_data_section_is_exactly_covered(written):
    (tensors, _), _, path = written
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert sum(t.nbytes for t in tensors.values()) == len(raw) - 8 - n
