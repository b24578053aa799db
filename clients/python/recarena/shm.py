"""The client's side of the shared-memory data plane (docs/protocol.md, "Shared memory").

A session made with shm on a local server comes with a POSIX shared-memory segment the server
created (mode 0600, an unguessable name, unlinked by the server once this client has used it).
This module maps it, writes each step's actions into one of its two action areas, and turns the
offsets a reply's header gives into the frames wire.decode_* read, so that observations, rewards,
flags and info come back as numpy views on the segment without a copy.

Views are read-only and valid until the next step or reset of the same session: slots alternate,
so the server writes step t+1 into the other block while step t's views stay intact, and step t+2
overwrites step t. Copy (np.array) what must outlive that. A view keeps the mapping alive, so a
stale view shows newer data but never faults.

Linux only (/dev/shm); Client uses it only for ipc:// and loopback tcp endpoints.
Not thread-safe: a segment belongs to its client's thread.
"""
from __future__ import annotations

import mmap
import os
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from .errors import TransportError

_INT32 = np.iinfo(np.int32)


def endpoint_is_local(address: str) -> bool:
    """True for endpoints that reach only this machine: ipc:// and tcp to a loopback address."""
    return (address.startswith("ipc://") or address.startswith("tcp://127.")
            or address.startswith("tcp://localhost:") or address.startswith("tcp://[::1]:"))


class Segment:
    """One session's mapped segment, as the make reply's "shm" value describes it."""

    def __init__(self, desc: Any, num_envs: int, slate: int):
        try:
            name, size, offs = desc["name"], desc["bytes"], desc["action"]
            ok = (isinstance(name, str) and name.startswith("/") and "/" not in name[1:]
                  and "\0" not in name and len(name) > 1 and type(size) is int and size > 0
                  and isinstance(offs, list) and len(offs) == 2
                  and all(type(o) is int and 0 <= o and o % 4 == 0 for o in offs))
        except (KeyError, TypeError):
            ok = False
        if not ok:
            raise TransportError(f"malformed 'shm' in the make reply: {desc!r}")
        self.num_envs, self.slate = int(num_envs), max(1, int(slate))
        abytes = self.num_envs * self.slate * 4
        if any(o + abytes > size for o in offs):
            raise TransportError("the make reply's shm action areas do not fit its segment")
        try:
            fd = os.open("/dev/shm" + name, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        except OSError as e:
            raise TransportError(f"cannot open shared-memory segment {name}: {e}") from None
        try:
            if os.fstat(fd).st_size < size:
                raise TransportError(f"shared-memory segment {name} is smaller than {size} bytes")
            self._mm: Optional[mmap.mmap] = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self.size = size
        self._view = memoryview(self._mm)
        self._ro = self._view.toreadonly()
        shape = (self.num_envs,) if self.slate == 1 else (self.num_envs, self.slate)
        self._actions = [np.frombuffer(self._view[o:o + abytes], dtype=np.int32).reshape(shape)
                         for o in offs]
        self._next = 0
        self._decoded: Dict[Any, Any] = {}

    def next_slot(self) -> int:
        """The slot the next request uses (0, 1, 0, ...)."""
        j = self._next
        self._next ^= 1
        return j

    def put_action(self, j: int, action: np.ndarray) -> bool:
        """Writes action into slot j as int32 when it is an integer array of the action shape
        with every value in int32 range; False otherwise (send it as a tensor then: the server
        answers it exactly as without the segment, errors included)."""
        dst = self._actions[j]
        if action.shape != dst.shape or action.dtype.kind not in "iu":
            return False
        if (action.dtype.itemsize >= 4 and action.dtype != np.int32 and action.size
                and (action.min() < _INT32.min or action.max() > _INT32.max)):
            return False
        np.copyto(dst, action, casting="unsafe")
        return True

    def frames(self, header: dict) -> List[Any]:
        """The reply's frames as read-only views on the segment (frames[0] stands for the header
        frame, as in wire.split_reply)."""
        table = header.get("shm")
        if not isinstance(table, list) or len(table) % 2:
            raise TransportError("reply has no 'shm' offset table")
        out: List[Any] = [None]
        ro = self._ro
        for i in range(0, len(table), 2):
            off, n = table[i], table[i + 1]
            if type(off) is not int or type(n) is not int or off < 0 or n < 0 or off + n > self.size:
                raise TransportError(f"reply's shm tensor {i // 2} lies outside the "
                                     f"{self.size}-byte segment")
            out.append(ro[off:off + n])
        return out

    def decode(self, kind: str, header: dict, decode: Callable[[dict, List[Any]], Any]) -> Any:
        """decode(header, frames) of a reply, reusing the arrays of an earlier reply of the same
        kind with the same offset table: those are views of the same bytes, which the server has
        just rewritten (a session's replies of one kind differ only in their data, and the
        table names the slot). Containers are fresh each time, so callers may change them."""
        table = header.get("shm")
        key = (kind, tuple(table)) if isinstance(table, list) else None
        tree = self._decoded.get(key) if key is not None else None
        if tree is None:
            tree = decode(header, self.frames(header))
            if key is not None and len(self._decoded) < 16:
                self._decoded[key] = tree
        return _fresh(tree)

    def close(self) -> None:
        """Unmaps the segment unless views on it are still alive (they keep it mapped until
        they go)."""
        mm, self._mm = self._mm, None
        if mm is None:
            return
        self._actions = []
        self._decoded = {}
        try:
            self._ro.release()
            self._view.release()
            mm.close()
        except BufferError:
            pass  # numpy views still use it: the mapping goes with the last of them


def detach(tree: Any) -> Any:
    """tree (an array, or dicts and lists of them) with every array copied off the segment."""
    if isinstance(tree, np.ndarray):
        return np.array(tree)
    if isinstance(tree, dict):
        return {k: detach(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [detach(v) for v in tree]
    return tree


def _fresh(tree: Any) -> Any:
    """tree with new tuples, lists and dicts around the same arrays."""
    if isinstance(tree, dict):
        return {k: _fresh(v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(_fresh(v) for v in tree)
    return tree
