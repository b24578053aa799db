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

A segment may also hold a doorbell (docs/local.md section 4): Client(spin_us=N) then posts a
reset or step's request header in the segment and spins up to N microseconds for the reply
instead of going through ZeroMQ, ringing over ZeroMQ when the server is not polling. The atomic
steps are those of protocol/spin.c, loaded from librecarena_spin.so with ctypes (Python has no
C11 atomics); without that library a doorbell is simply not asked for.

Linux only (/dev/shm); Client uses it only for ipc:// and loopback tcp endpoints.
Not thread-safe: a segment belongs to its client's thread.
"""
from __future__ import annotations

import ctypes as C
import fcntl
import mmap
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from .errors import TransportError

_INT32 = np.iinfo(np.int32)

# protocol/spin.h: the doorbell area's layout (a make reply naming other sizes gets no doorbell).
SPIN_HDR_BYTES, SPIN_REQ_BYTES, SPIN_REP_BYTES = 4096, 16384, 65536
SPIN_MAX_US = 1000000
SPIN_LIB_NAME = "librecarena_spin.so"
SPIN_ENV_VAR = "RECARENA_SPIN_LIB"
_spin_lib: Any = None


def find_spin_library() -> Optional[str]:
    """Path of librecarena_spin.so: $RECARENA_SPIN_LIB, next to the recarena-server binary
    $RECARENA_SERVER points at (build/env/server -> build/protocol), or the development
    checkout's build/protocol/; None when none of them is a file."""
    cands = [os.environ.get(SPIN_ENV_VAR)]
    srv = os.environ.get("RECARENA_SERVER")
    if srv:
        cands.append(str(Path(srv).resolve().parent.parent.parent / "protocol" / SPIN_LIB_NAME))
    cands.append(str(Path(__file__).resolve().parents[3] / "build" / "protocol" / SPIN_LIB_NAME))
    for p in cands:
        if p and os.path.isfile(p):
            return os.path.abspath(p)
    return None


def spin_library() -> Any:
    """The loaded doorbell library (ctypes), or None when it cannot be found or loaded."""
    global _spin_lib
    if _spin_lib is None:
        path = find_spin_library()
        try:
            lib = C.CDLL(path) if path else False
        except OSError:
            lib = False
        if lib:
            lib.ra_spin_post.argtypes = [C.c_void_p, C.c_char_p, C.c_uint32, C.c_uint64]
            lib.ra_spin_post.restype = C.c_bool
            lib.ra_spin_wait.argtypes = [C.c_void_p, C.c_uint64, C.c_int]
            lib.ra_spin_wait.restype = C.c_uint32
            lib.ra_spin_reply.argtypes = [C.c_void_p, C.c_uint64]
            lib.ra_spin_reply.restype = C.c_uint32
        _spin_lib = lib
    return _spin_lib or None


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
        # The shared lock lives as long as this descriptor: the server closes the session once no
        # process holds it (docs/protocol.md, "Shared memory"; Client's make says shm_lock).
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            if os.fstat(fd).st_size < size:
                raise TransportError(f"shared-memory segment {name} is smaller than {size} bytes")
            self._mm: Optional[mmap.mmap] = mmap.mmap(fd, size)
        except OSError as e:
            os.close(fd)
            raise TransportError(f"cannot lock and map shared-memory segment {name}: {e}") from None
        except BaseException:
            os.close(fd)
            raise
        self._fd: Optional[int] = fd
        self.size = size
        self._view = memoryview(self._mm)
        self._ro = self._view.toreadonly()
        shape = (self.num_envs,) if self.slate == 1 else (self.num_envs, self.slate)
        self._actions = [np.frombuffer(self._view[o:o + abytes], dtype=np.int32).reshape(shape)
                         for o in offs]
        self._next = 0
        self._decoded: Dict[Any, Any] = {}
        self._spin_addr: Optional[int] = None
        self._spin_anchor: Any = None
        self._seq = 0
        spin = desc.get("spin") if isinstance(desc, dict) else None
        lib = spin_library() if spin is not None else None
        if lib is not None and isinstance(spin, dict):
            off = spin.get("offset")
            if (type(off) is int and off >= 0 and off % 64 == 0
                    and spin.get("request_bytes") == SPIN_REQ_BYTES
                    and spin.get("reply_bytes") == SPIN_REP_BYTES
                    and off + SPIN_HDR_BYTES + SPIN_REQ_BYTES + SPIN_REP_BYTES <= size):
                # A numpy view pins the address for ctypes; it is dropped before the unmap.
                self._spin_anchor = np.frombuffer(self._view[off:off + 64], dtype=np.uint8)
                self._spin_addr = self._spin_anchor.ctypes.data
                self._spin_off = off
                self._lib = lib

    @property
    def has_doorbell(self) -> bool:
        """True when requests may travel through the segment's doorbell (docs/local.md 4)."""
        return self._spin_addr is not None

    def post(self, request: bytes) -> "tuple[int, bool]":
        """Posts a request header in the doorbell: (its sequence number, whether the server
        polls the doorbell; when it does not, the caller must ring)."""
        self._seq += 1
        return self._seq, bool(self._lib.ra_spin_post(self._spin_addr, request, len(request), self._seq))

    def wait(self, seq: int, spin_us: int) -> int:
        """Spins up to spin_us (in C, without the GIL) for request seq's reply: its length, or 0."""
        return int(self._lib.ra_spin_wait(self._spin_addr, seq, int(spin_us)))

    def reply(self, seq: int) -> int:
        """The length of request seq's reply when it is in the doorbell, else 0."""
        return int(self._lib.ra_spin_reply(self._spin_addr, seq))

    def reply_header(self, length: int) -> bytes:
        """The reply header's bytes (copied: the next request's reply overwrites them)."""
        if not 0 < length <= SPIN_REP_BYTES:
            raise TransportError(f"doorbell reply of {length} bytes")
        o = self._spin_off + SPIN_HDR_BYTES + SPIN_REQ_BYTES
        return bytes(self._view[o:o + length])

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
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # releases the lock: the session is this client's no more
        self._actions = []
        self._decoded = {}
        self._spin_anchor = None
        self._spin_addr = None
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
