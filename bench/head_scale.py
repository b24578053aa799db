#!/usr/bin/env python3
"""bench/head_scale.py IN OUT ALPHA: the same target policy, with another learning speed.

Multiplies the scorer's last layer (l<L>.w, l<L>.b) and the checkpoint's sampling temperature
(target.temp) by ALPHA. The tempered scores s / tau, hence every slate distribution and every
frozen return, are unchanged; what changes is how far one Adam step of the adaptation moves them
(Adam's step per weight is about the learning rate whatever the weight's scale, so a head ALPHA
times smaller moves s / tau about 1 / ALPHA times further). docs/meta.md 6.7 uses it to ask
whether the meta-inits adapt slower than a fresh network because their scores are large.

Reads and writes plain safetensors (8-byte header length, JSON header, float32 data); every other
tensor and metadata key is copied unchanged. Exit 2 with a message on a bad argument or file.
"""
from __future__ import annotations

import json
import struct
import sys

import numpy as np


def fail(msg: str) -> None:
    print(f"head_scale: {msg}", file=sys.stderr)
    sys.exit(2)


def scale_head(raw: bytes, alpha: float) -> bytes:
    """The checkpoint bytes `raw` with the scorer's last layer and target.temp times alpha."""
    if len(raw) < 8:
        fail("not a safetensors file (shorter than its header length)")
    (n,) = struct.unpack("<Q", raw[:8])
    try:
        header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        fail(f"not a safetensors file (header: {e})")
    if not isinstance(header, dict):
        fail("not a safetensors file (its header is not a JSON object)")
    data = bytearray(raw[8 + n :])
    meta = header.get("__metadata__", {})
    layers = [int(k[1:].split(".")[0]) for k in header if k.startswith("l") and k.endswith(".w")]
    if not layers or "target.temp" not in meta:
        fail("not a target-policy checkpoint (no scorer tensors l0.w... or no target.temp)")
    last = max(layers)
    for name in (f"l{last}.w", f"l{last}.b"):
        info = header.get(name)
        if info is None or info.get("dtype") != "F32":
            fail(f"tensor {name} is missing or not F32")
        a, b = info["data_offsets"]
        x = np.frombuffer(bytes(data[a:b]), dtype="<f4") * np.float32(alpha)
        data[a:b] = x.astype("<f4").tobytes()
    meta["target.temp"] = repr(float(np.float32(float(meta["target.temp"]) * alpha)))
    out = json.dumps(header, separators=(",", ":")).encode("utf-8")
    out += b" " * (-len(out) % 8)  # safetensors pads the header to 8 bytes
    return struct.pack("<Q", len(out)) + out + bytes(data)


def main(argv: list[str]) -> None:
    if len(argv) != 4:
        fail("usage: head_scale.py IN OUT ALPHA")
    try:
        alpha = float(argv[3])
    except ValueError:
        alpha = float("nan")
    if not (alpha > 0 and np.isfinite(alpha)):
        fail(f"ALPHA must be a positive number, got '{argv[3]}'")
    try:
        raw = open(argv[1], "rb").read()
    except OSError as e:
        fail(f"cannot read {argv[1]}: {e.strerror}")
    out = scale_head(raw, alpha)
    try:
        with open(argv[2], "wb") as f:
            f.write(out)
    except OSError as e:
        fail(f"cannot write {argv[2]}: {e.strerror}")


if __name__ == "__main__":
    main(sys.argv)
