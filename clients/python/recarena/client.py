"""recarena.client - one connection to a recarena-server (protocol v1, docs/protocol.md).

A Client owns one DEALER socket (LINGER 0) and, if it was built without an address, a share of the
embedded local server. Every call has a deadline (timeout seconds): the wait polls in short slices
and, when the client started the server, checks that the process is still alive between slices, so
a dead server raises ServerDiedError at once and an unresponsive one DeadlineError at the deadline;
neither ever hangs. Replies whose id is not the awaited one (late answers to abandoned requests)
are dropped. Reply tensors are zero-copy read-only numpy views of the received frames.
A Client belongs to one thread.
"""
from __future__ import annotations

import functools
import itertools
import os
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import zmq
import zmq.utils.z85

from . import shm as _shm
from . import wire
from .errors import (BadRequestError, DeadlineError, ServerDiedError, TransportError,
                     VersionError, error_from_reply, refuse_copy)
from .server import LocalServer, default_server

DEFAULT_TIMEOUT_S = 10.0
STARTUP_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 1.0  # closing a handle is best effort: a dead server must not stall close()
_POLL_SLICE_MS = 100
CLIENT_NAME = "recarena-python/0.1"

_ids = itertools.count(1)


def _read_key_line(path: str, name: str) -> str:
    try:
        with open(path, "r", encoding="ascii") as f:
            for line in f:
                key, sep, value = line.strip().partition("=")
                if sep and key.strip() == name and len(value.strip()) == 40:
                    return value.strip()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path!r} is neither a 40-character Z85 key nor a readable key file: "
                         f"{e}") from None
    raise ValueError(f"{path} has no '{name} = <40 Z85 characters>' line "
                     f"(files written by recarena-server --gen-keys have one)")


def curve_keys(server_key: str, client_key: Union[str, Tuple[str, str]]) -> Tuple[str, str, str]:
    """(server public, client public, client secret) as Z85 strings, from what Client accepts:
    server_key a 40-character Z85 key or a .pub/.key file; client_key a key pair file written by
    recarena-server --gen-keys (PREFIX.key) or a (public, secret) pair of Z85 strings."""
    def _public(k: str) -> str:
        if len(k) == 40 and not os.path.exists(k):
            return k
        return _read_key_line(k, "public-key")
    if isinstance(client_key, (tuple, list)):
        pub, sec = client_key
    else:
        pub, sec = _read_key_line(client_key, "public-key"), _read_key_line(client_key, "secret-key")
    keys = (_public(server_key), pub, sec)
    for k in keys:
        if len(k) != 40:
            raise ValueError("CURVE keys are 40 Z85 characters")
        zmq.utils.z85.decode(k)
    return keys


def _one_thread(method: Any) -> Any:
    """Makes method refuse to run while another thread is inside a method of the same Client: a
    ZeroMQ socket belongs to one thread, and two threads sharing one would take each other's
    replies (each then waits out its deadline and blames the server) or break libzmq. The
    second thread gets a TransportError at once; the first one's call goes on unharmed. The lock
    is reentrant, so methods may call each other (reset -> call)."""
    @functools.wraps(method)
    def guarded(self: "Client", *args: Any, **kwargs: Any) -> Any:
        if os.getpid() != self._pid:
            # A ZeroMQ socket does not survive fork(): a child using its parent's env hung in
            # the send, past any deadline (and would share the parent's server session).
            raise TransportError(f"this Client was made in process {self._pid}, not in this "
                                 f"forked one ({os.getpid()}); make the env in the process "
                                 "that uses it (multiprocessing: in the worker, or the spawn "
                                 "start method)")
        if not self._busy.acquire(blocking=False):
            raise TransportError(f"{self.address}: this Client is in a call from another thread; a "
                                 "Client, and the env that uses it, belongs to one thread at a "
                                 "time (make one env per thread)")
        try:
            return method(self, *args, **kwargs)
        finally:
            self._busy.release()
    return guarded


def check_timeout(timeout: Any) -> float:
    """timeout as seconds: a number > 0, inf for no deadline. ValueError otherwise: 0 or less
    failed every call at once and blamed the server (DeadlineError), NaN and inf raised from
    the poll loop's arithmetic, a string from float() without saying which argument."""
    if isinstance(timeout, (bool, np.bool_)) or not isinstance(timeout, (int, float, np.integer,
                                                                         np.floating)):
        raise ValueError(f"timeout must be a number of seconds > 0 (inf: no deadline), got "
                         f"{timeout!r}")
    t = float(timeout)
    if not t > 0:  # NaN too
        raise ValueError(f"timeout must be a number of seconds > 0 (inf: no deadline), got {t}")
    return t


def _seed(seed: Any, i: Optional[int] = None) -> int:
    """A seed as sent: an integer in [0, 2**64) (TypeError / BadRequestError otherwise, as the
    in-process backend raises them), checked here because msgpack cannot even pack the ints
    beyond 64 bits. i: its env's index in a per-env seed list."""
    s = wire.check_int("seed" if i is None else f"seed {i}", seed)
    if not 0 <= s < 2 ** 64:
        if i is None:
            raise BadRequestError(f"field 'seed' must be a non-negative integer below 2**64, "
                                  f"got {s}")
        raise BadRequestError(f"seed {i} is {s}, expected a non-negative integer below 2**64",
                              env_index=i)
    return s


def accept_reply(header: dict, req_id: int, op: str) -> bool:
    """Whether header is the success reply to request req_id: False for a late reply to an
    abandoned request (skip it); raises VersionError, the error's ServerError subclass, or
    TransportError for a reply without a boolean 'ok'."""
    if header.get("id") != req_id:
        return False
    if header.get("v") != wire.PROTOCOL_VERSION:
        raise VersionError(f"reply has protocol version {header.get('v')!r}, expected "
                           f"{wire.PROTOCOL_VERSION}")
    if header.get("ok") is True:
        return True
    if header.get("ok") is False:
        raise error_from_reply(header.get("error"))
    raise TransportError(f"reply to '{op}' has no boolean 'ok'")


def _spin_us(spin_us: Optional[int]) -> int:
    """spin_us, or $RECARENA_SPIN_US when None; checked against [0, SPIN_MAX_US]."""
    if spin_us is None:
        v = os.environ.get("RECARENA_SPIN_US", "")
        try:
            spin_us = int(v) if v else 0
        except ValueError:
            raise ValueError(f"$RECARENA_SPIN_US is {v!r}, expected microseconds in "
                             f"[0, {_shm.SPIN_MAX_US}]") from None
    if type(spin_us) is not int and not isinstance(spin_us, np.integer):
        raise TypeError(f"spin_us must be an int, got {type(spin_us).__name__}")
    if not 0 <= spin_us <= _shm.SPIN_MAX_US:
        raise ValueError(f"spin_us is {spin_us}, expected microseconds in [0, {_shm.SPIN_MAX_US}]")
    return int(spin_us)


class Client:
    """A connection. address: a ZeroMQ endpoint ("tcp://127.0.0.1:5555", "ipc://..."), or None to
    use the embedded local server (started on demand, found as find_server_binary describes).
    server_key and client_key turn on CURVE (see curve_keys for their forms): traffic is encrypted
    and the server knows this client by its public key; sessions made here belong to that key,
    so a new Client with the same key pair can carry on with them and no other key can. A server
    that refuses the key never answers: the hello raises DeadlineError.
    shm: use the server's shared-memory data plane when the endpoint is local (ipc://, loopback
    tcp) and the server offers it (recarena.shm; arrays a step returns are then views valid until
    that session's next step or reset). The results are the same either way.
    spin_us: with shm, ask a server started with --spin-us for a doorbell (docs/local.md section
    4): resets and steps then skip ZeroMQ while the server polls, and this client spins up to
    spin_us microseconds (a busy core) for each reply before it falls back to ZeroMQ. None takes
    $RECARENA_SPIN_US (unset: 0, off). Needs librecarena_spin.so (recarena.shm); without it, or
    from a server without --spin-us, nothing changes. The results are the same either way."""

    __reduce_ex__ = refuse_copy  # a copy would close this one's socket when collected

    def __init__(self, address: Optional[str] = None, timeout: float = DEFAULT_TIMEOUT_S,
                 server_path: Optional[str] = None, hello: bool = True,
                 server_key: Optional[str] = None,
                 client_key: Union[str, Tuple[str, str], None] = None,
                 shm: bool = True, spin_us: Optional[int] = None):
        if (server_key is None) != (client_key is None):
            raise ValueError("CURVE needs both server_key and client_key")
        keys = curve_keys(server_key, client_key) if server_key is not None else None
        self.timeout = check_timeout(timeout)
        self._server: Optional[LocalServer] = None
        self._sock = None
        self._segments: Dict[int, _shm.Segment] = {}
        self.shm = False
        self.spin = False
        self.spin_us = _spin_us(spin_us)
        self._pid = os.getpid()
        self._busy = threading.RLock()  # see _one_thread
        if address is None:
            self._server = default_server().acquire(server_path)
            address = self._server.endpoint
        self.address = address
        try:
            self._sock = zmq.Context.instance().socket(zmq.DEALER)
            self._sock.setsockopt(zmq.LINGER, 0)
            if keys is not None:
                self._sock.curve_serverkey = keys[0].encode("ascii")
                self._sock.curve_publickey = keys[1].encode("ascii")
                self._sock.curve_secretkey = keys[2].encode("ascii")
            try:
                self._sock.connect(address)
            except (zmq.ZMQError, TypeError) as e:  # "bogus://x", "tcp://", a non-string
                raise TransportError(f"cannot connect to {address!r}: {e}; expected a ZeroMQ "
                                     "endpoint such as tcp://127.0.0.1:5555 or ipc:///path") \
                    from None
            self.server_info: Dict[str, Any] = {}
            if hello:
                startup = max(self.timeout, STARTUP_TIMEOUT_S) if self._server else self.timeout
                self.server_info = self.hello(timeout=startup)
            # Shared memory (docs/protocol.md, "Shared memory"): only on this machine, and only
            # when the server offers it; the results are the same either way.
            caps = self.server_info.get("capabilities") or ()
            self.shm = bool(shm and _shm.endpoint_is_local(address) and "shm" in caps)
            self.spin = bool(self.shm and self.spin_us > 0 and "spin" in caps
                             and _shm.spin_library() is not None)
        except BaseException:
            self.close()
            raise

    # --------------------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._sock is None

    @property
    def local_server(self) -> Optional[LocalServer]:
        """The local server process this client started (shared), or None."""
        return self._server

    def close(self) -> None:
        """Closes the socket and releases the local server. Idempotent. Waits for a call another
        thread has in flight (it ends by its deadline): libzmq must not close a socket in use."""
        busy = getattr(self, "_busy", None)  # None: __init__ failed before making it
        held = busy is not None and busy.acquire(timeout=min(self.timeout + 1.0, 60.0))
        try:
            self._close()
        finally:
            if held:
                busy.release()

    def _close(self) -> None:
        if os.getpid() != self._pid:  # a forked child's copy: the socket, segments and server
            self._sock, self._server = None, None  # are the parent's, closed by the parent
            self._segments = {}
            return
        for seg in self._segments.values():
            seg.close()
        self._segments.clear()
        if self._sock is not None:
            try:
                self._sock.close(linger=0)
            except Exception:
                pass
            self._sock = None
        if self._server is not None:
            server, self._server = self._server, None
            default_server().release(server)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if os.getpid() == self._pid:
                self.close()
        except Exception:
            pass

    # --------------------------------------------------------------------------------------------
    @_one_thread
    def call(self, op: str, fields: Optional[dict] = None, out: Optional[wire.Outgoing] = None,
             timeout: Optional[float] = None) -> Tuple[dict, Sequence[Any]]:
        """One round trip: sends {v, id, op, **fields} with out's frames, waits for the reply with
        the same id. Returns (header, frames) of a success reply; raises the ServerError of an
        error reply, DeadlineError / ServerDiedError / TransportError otherwise."""
        sock = self._sock
        if sock is None:
            raise TransportError("the client is closed")
        req_id = next(_ids)
        parts = wire.pack_request(req_id, op, fields or {}, out)
        try:
            sock.send_multipart(parts, copy=False)
        except zmq.ZMQError as e:
            raise TransportError(f"send of '{op}' failed: {e}") from None
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._raise_deadline(op, timeout)
            wait_ms = min(_POLL_SLICE_MS, max(1, int(min(remaining, 1.0) * 1000) + 1))  # inf
            try:
                ready = sock.poll(wait_ms, zmq.POLLIN)
            except zmq.ZMQError as e:
                raise TransportError(f"poll failed during '{op}': {e}") from None
            if not ready:
                if self._server is not None:
                    self._server.check_alive()
                continue
            header, frames = wire.split_reply(sock.recv_multipart(copy=False))
            if accept_reply(header, req_id, op):
                return header, frames

    def _call_seg(self, seg: Optional[_shm.Segment], op: str, fields: dict,
                  out: wire.Outgoing) -> Tuple[dict, Sequence[Any]]:
        """call(op, fields, out), through seg's doorbell when it has one and the request has no
        frames (docs/local.md section 4): post; spin for the reply if the server polls; else, or
        when the spin runs out, "ring" over ZeroMQ, answered once the reply is in the doorbell."""
        if seg is None or not self.spin_us or not seg.has_doorbell or out.frames:
            return self.call(op, fields, out)
        req_id = next(_ids)
        head = wire.pack_request(req_id, op, fields)[0]
        if len(head) > _shm.SPIN_REQ_BYTES:
            return self.call(op, fields, out)
        seq, polled = seg.post(head)
        n = seg.wait(seq, self.spin_us) if polled else 0
        if not n:
            self.call("ring", {"handle": fields["handle"], "seq": seq})
            n = seg.reply(seq)
            if not n:
                raise TransportError(f"the server answered ring {seq} without that request's reply")
        header = wire.unpack_header(seg.reply_header(n))
        if not accept_reply(header, req_id, op):
            raise TransportError(f"the doorbell's reply answers request {header.get('id')!r}, "
                                 f"not {req_id}")
        return header, ()

    def _raise_deadline(self, op: str, timeout: Optional[float]) -> None:
        if self._server is not None:
            self._server.check_alive()
        t = self.timeout if timeout is None else timeout
        raise DeadlineError(f"no reply to '{op}' from {self.address} within {t:g} s")

    # --------------------------------------------------------------------------------------------
    # The ops of docs/protocol.md, "Operations".

    def hello(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        header, _ = self.call("hello", {"client": CLIENT_NAME, "versions": [wire.PROTOCOL_VERSION]},
                              timeout=timeout)
        if header.get("version") != wire.PROTOCOL_VERSION:
            raise VersionError(f"server speaks protocol {header.get('version')!r}, this client "
                               f"{wire.PROTOCOL_VERSION}")
        return {k: v for k, v in header.items() if k not in ("v", "id", "ok")}

    def list(self) -> List[Dict[str, Any]]:
        header, _ = self.call("list")
        envs = header.get("envs")
        if not isinstance(envs, list):
            raise TransportError("'list' reply has no 'envs' list")
        return envs

    def ping(self) -> None:
        self.call("ping")

    def stats(self) -> Dict[str, Any]:
        header, _ = self.call("stats")
        return {k: v for k, v in header.items() if k not in ("v", "id", "ok")}

    @_one_thread
    def make(self, env: str, num_envs: int, seed: Optional[int] = None,
             config: Optional[dict] = None, autoreset: Optional[str] = None,
             max_episode_steps: Optional[int] = None) -> Dict[str, Any]:
        """The make reply with observation_space and action_space rebuilt as Gymnasium spaces."""
        fields: Dict[str, Any] = {"env": env, "num_envs": wire.check_int("num_envs", num_envs)}
        if seed is not None:
            fields["seed"] = _seed(seed)
        if config:
            fields["config"] = config
        if autoreset is not None:
            fields["autoreset"] = autoreset
        if max_episode_steps is not None:
            fields["max_episode_steps"] = wire.check_int("max_episode_steps", max_episode_steps)
        if self.shm:
            fields["shm"] = True
            fields["shm_lock"] = True  # shm.Segment holds a shared lock while it has it mapped
        if self.spin:
            fields["spin"] = True
        header, frames = self.call("make", fields)
        if not isinstance(header.get("handle"), int):
            raise TransportError("'make' reply has no integer 'handle'")
        result = {k: v for k, v in header.items() if k not in ("v", "id", "ok")}
        result["observation_space"] = wire.decode_space(header.get("observation_space"), frames,
                                                        "observation_space")
        result["action_space"] = wire.decode_space(header.get("action_space"), frames,
                                                   "action_space")
        desc = result.pop("shm", None)
        if desc is not None:
            act = result["action_space"]
            slate = int(act.shape[0]) if len(getattr(act, "shape", ()) or ()) == 1 else 1
            try:
                self._segments[header["handle"]] = _shm.Segment(desc, int(num_envs), slate)
            except TransportError:
                pass  # not mappable here: the session still answers over frames
        return result

    @_one_thread
    def reset(self, handle: int, seed: Any = None, options: Optional[dict] = None
              ) -> Tuple[Any, Dict[str, Any]]:
        """(obs, info) of the whole batch; seed None, an int, or a list of ints (one per env);
        options may hold reset_mask (bool array of num_envs)."""
        out = wire.Outgoing()
        fields: Dict[str, Any] = {"handle": handle}
        if isinstance(seed, (int, np.integer)):
            fields["seed"] = _seed(seed)
        elif isinstance(seed, (list, tuple, np.ndarray)):
            fields["seed"] = [_seed(s, i) for i, s in enumerate(seed)]
        elif seed is not None:
            raise BadRequestError(f"field 'seed' must be a non-negative integer or a list of "
                                  f"them (one per env), got {type(seed).__name__}")
        if options:
            opts = dict(options)
            if opts.get("reset_mask") is not None:
                opts["reset_mask"] = out.tensor(np.asarray(opts["reset_mask"], dtype=np.bool_))
            fields["options"] = opts
        seg = self._segments.get(handle)
        if seg is not None:
            fields["shm"] = seg.next_slot()
        header, frames = self._call_seg(seg, "reset", fields, out)
        if seg is not None:
            return seg.decode("reset", header, wire.decode_reset_reply)
        return wire.decode_reset_reply(header, frames)

    @_one_thread
    def step(self, handle: int, action: np.ndarray) -> Tuple[Any, np.ndarray, np.ndarray,
                                                             np.ndarray, Dict[str, Any]]:
        """(obs, reward f32[N], terminated bool[N], truncated bool[N], info) of the batch. Over
        shared memory the arrays are views valid until this session's next step or reset."""
        out = wire.Outgoing()
        seg = self._segments.get(handle)
        if seg is None:
            header, frames = self.call("step", {"handle": handle, "action": out.tensor(action)}, out)
            return wire.decode_step_reply(header, frames)
        j = seg.next_slot()
        a = np.asarray(action)
        fields: Dict[str, Any] = {"handle": handle, "shm": j}
        if not seg.put_action(j, a):
            fields["action"] = out.tensor(a)  # answered as over frames, errors included
        header, _ = self._call_seg(seg, "step", fields, out)
        return seg.decode("step", header, wire.decode_step_reply)

    def set_task(self, handle: int, task: dict, mask: Any = None) -> Dict[str, Any]:
        out = wire.Outgoing()
        fields: Dict[str, Any] = {"handle": handle, "task": task}
        if mask is not None:
            fields["mask"] = out.tensor(np.asarray(mask, dtype=np.bool_))
        header, _ = self.call("set_task", fields, out)
        return header.get("task") or {}

    def render(self, handle: int, index: int = 0) -> str:
        header, _ = self.call("render", {"handle": handle, "index": int(index)})
        text = header.get("text")
        if not isinstance(text, str):
            raise TransportError("'render' reply has no 'text' string")
        return text

    def uses_shm(self, handle: int) -> bool:
        """True when handle's results are views on a shared-memory segment (see recarena.shm)."""
        return handle in self._segments

    @_one_thread
    def close_handle(self, handle: int, timeout: Optional[float] = None) -> None:
        seg = self._segments.pop(handle, None)
        if seg is not None:
            seg.close()
        self.call("close", {"handle": handle}, timeout=timeout)
