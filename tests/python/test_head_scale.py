"""bench/head_scale.py: the scorer's last layer and target.temp times alpha, nothing else changed.

Builds a small target-like checkpoint in the test (two scorer layers, a value layer, metadata),
so no binary is needed."""
from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "bench" / "head_scale.py"


def write_safetensors(path: Path, tensors: dict, meta: dict) -> None:
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, arr in tensors.items():
        b = np.asarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(np.shape(arr)), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_safetensors(path: Path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__")
    data = raw[8 + n :]
    return {k: np.frombuffer(data[v["data_offsets"][0] : v["data_offsets"][1]], dtype="<f4").reshape(v["shape"])
            for k, v in header.items()}, meta


def run(*args):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True)


def test_scales_last_scorer_layer_and_temp_only(tmp_path):
    rng = np.random.default_rng(3)
    t = {"l0.w": rng.normal(size=(4, 6)), "l0.b": rng.normal(size=4), "l1.w": rng.normal(size=(1, 4)),
         "l1.b": rng.normal(size=1), "v0.w": rng.normal(size=(1, 3)), "v0.b": rng.normal(size=1)}
    src, dst = tmp_path / "in.safetensors", tmp_path / "out.safetensors"
    write_safetensors(src, t, {"target.temp": "0.5", "target.lr": "0.01"})
    r = run(src, dst, 0.1)
    assert r.returncode == 0, r.stderr
    a, ma = read_safetensors(src)
    b, mb = read_safetensors(dst)
    for k in ("l0.w", "l0.b", "v0.w", "v0.b"):
        assert np.array_equal(a[k], b[k]), k
    for k in ("l1.w", "l1.b"):
        assert np.array_equal(b[k], (a[k] * np.float32(0.1)).astype("<f4")), k
    assert float(mb["target.temp"]) == float(np.float32(0.05))
    assert mb["target.lr"] == "0.01"
    # the tempered scores of the last layer are the same up to float rounding
    h = rng.normal(size=4).astype("<f4")
    assert np.allclose((a["l1.w"] @ h + a["l1.b"]) / 0.5, (b["l1.w"] @ h + b["l1.b"]) / float(mb["target.temp"]),
                       rtol=1e-5)


def test_bad_input_is_exit_2_with_a_message(tmp_path):
    good = tmp_path / "g.safetensors"
    write_safetensors(good, {"l0.w": np.ones((1, 2))}, {"target.temp": "1"})
    for alpha in ("0", "-1", "x", "nan"):
        r = run(good, tmp_path / "o", alpha)
        assert r.returncode == 2 and "ALPHA" in r.stderr, alpha
    notarget = tmp_path / "n.safetensors"
    write_safetensors(notarget, {"w": np.ones(2)}, {"format": "x"})
    r = run(notarget, tmp_path / "o", 0.5)
    assert r.returncode == 2 and "not a target-policy checkpoint" in r.stderr
    junk = tmp_path / "j"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    r = run(junk, tmp_path / "o", 0.5)
    assert r.returncode == 2 and "not a safetensors file" in r.stderr
    r = run(tmp_path / "missing", tmp_path / "o", 0.5)
    assert r.returncode == 2 and "cannot read" in r.stderr
    r = run(good, tmp_path / "o")
    assert r.returncode == 2 and "usage" in r.stderr
