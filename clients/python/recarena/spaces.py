"""recarena.spaces - Slate, the action space of a slate of k distinct candidates out of K.

On the wire a slate action is MultiDiscrete([K] * k) (docs/protocol.md, "Spaces"), but a repeated index
is BAD_ACTION, so a plain MultiDiscrete.sample() would produce invalid actions. Slate is a
MultiDiscrete (same nvec, dtype and batching; anything that accepts MultiDiscrete accepts it) whose
sample() draws each slate without replacement and whose contains() rejects repeats. nvec may be
(k,) or batched (N, k): the last axis is the slate.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from .errors import BadActionError


class Slate(spaces.MultiDiscrete):
    """k distinct indices in [0, K) (plus start) along the last axis."""

    def sample(self, mask: Any = None, probability: Any = None) -> np.ndarray:
        if mask is not None or probability is not None:
            return super().sample(mask=mask, probability=probability)
        K = int(self.nvec.reshape(-1)[0])
        k = self.nvec.shape[-1]
        rows = int(np.prod(self.nvec.shape[:-1], dtype=np.int64))
        # argsort of uniform keys: a uniformly random k-subset in random order, per row.
        keys = self.np_random.random((rows, K))
        out = np.argsort(keys, axis=1)[:, :k].astype(self.dtype)
        return out.reshape(self.nvec.shape) + self.start

    def contains(self, x: Any) -> bool:
        if not super().contains(x):
            return False
        a = np.asarray(x).reshape(-1, self.nvec.shape[-1])
        s = np.sort(a, axis=1)
        return bool((s[:, 1:] != s[:, :-1]).all())

    def __repr__(self) -> str:
        return f"Slate({self.nvec.tolist()})"


@batch_space.register(Slate)
def _batch_slate(space: Slate, n: int = 1) -> Slate:
    return Slate(np.tile(space.nvec, (n,) + (1,) * space.nvec.ndim), dtype=space.dtype,
                 seed=None, start=np.tile(space.start, (n,) + (1,) * space.start.ndim))


def as_slate(space: spaces.Space) -> spaces.Space:
    """Slate for a 1-D MultiDiscrete of k >= 2 equal entries (a recommendation slate), else space."""
    if (type(space) is spaces.MultiDiscrete and space.nvec.ndim == 1 and space.nvec.size >= 2
            and (space.nvec == space.nvec[0]).all() and (space.start == space.start[0]).all()):
        return Slate(space.nvec.copy(), dtype=space.dtype, start=space.start.copy())
    return space


def dedupe_slates(actions: Any, num_candidates: int) -> np.ndarray:
    """actions (..., k) with any repeated index in a slate replaced by the smallest index not yet
    in that slate (order of first occurrences kept). For policies that pick each slot
    independently (SB3's MultiDiscrete heads). Cost: O(rows * k^2), numpy over rows."""
    a = np.array(actions, dtype=np.int64, copy=True)
    flat = a.reshape(-1, a.shape[-1])
    k = flat.shape[1]
    for j in range(1, k):
        dup = (flat[:, j:j + 1] == flat[:, :j]).any(axis=1)
        for r in np.flatnonzero(dup):
            used = set(flat[r, :j].tolist()) | set(flat[r, j + 1:].tolist())
            flat[r, j] = next(c for c in range(num_candidates) if c not in used)
    return flat.reshape(a.shape)


def as_action(action: Any, shape: tuple) -> np.ndarray:
    """action as an integer array of shape, for RemoteEnv / RemoteVectorEnv.step. Integer dtypes
    the wire carries (int8, uint8, int32, int64) pass as they are (the server checks ranges and
    repeats); int16, uint16, uint32 and uint64 become int64, so that no backend refuses them for
    their dtype alone, and a uint64 past int64's range is refused as the number it is instead of
    wrapping to a negative one. Floats (a policy's float argmax, a list mixing ints and floats)
    are converted only when every value is a whole number; other dtypes are refused (a cast would
    silently turn 0.5 and 0.9 into candidate 0). Any layout with shape's number of entries is
    accepted ((k,) for one env's (1, k)). Raises BadActionError naming the problem."""
    a = np.asarray(action)
    # dtype.kind and math.prod, not np.issubdtype and np.prod: this runs on every step, and
    # those cost microseconds where a local step costs a few
    if a.size != math.prod(shape):
        raise BadActionError(f"action has {a.size} entries (shape {a.shape}), expected "
                             f"{math.prod(shape)}: one candidate index per slot and env")
    kind, size = a.dtype.kind, a.dtype.itemsize
    if kind == "i" or kind == "u":
        if kind == "u" and size == 8:
            big = a > np.iinfo(np.int64).max
            if big.any():
                where = tuple(int(i) for i in np.argwhere(big)[0])
                raise BadActionError(f"action{list(where)} is {int(a[where])}, not a candidate "
                                     "index")
        if size == 2 or (kind == "u" and size > 1):
            a = a.astype(np.int64)
    else:
        if kind != "f":
            raise BadActionError(f"action has dtype {a.dtype}, expected integer candidate indexes")
        bad = ~np.isfinite(a) | (a != np.round(a))
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise BadActionError(f"action{list(where)} is {float(a[where])}, expected a whole number "
                                 f"(a candidate index)")
        a = a.astype(np.int64)
    return a.reshape(shape)
