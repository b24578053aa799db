"""recarena.shard - one vector env's batch spread over several recarena-servers (docs/scaling.md).

ShardGroup stands where RemoteVectorEnv keeps its Client: it answers the same calls (make, reset,
step, set_task, render, close_handle, close), but holds one connection per address and splits the
num_envs envs into contiguous shards, shard j owning envs [start_j, start_j + n_j). Every request
is sent to every shard before any reply is awaited, so N servers on N machines work at the same
time; the replies are then gathered in shard order and concatenated, so the caller sees exactly
what one server hosting all num_envs envs would answer:

- seeds: the protocol seeds env i with s + i for an int s ("Autoreset and seeding" in
  docs/protocol.md), so shard j is made and reset with s + start_j; a seed list is sliced;
- info: every "name" / "_name" pair is concatenated; a shard that did not send a name (same_step's
  final_obs / final_info appear only in a step where one of its envs ended) contributes rows with
  a False mask: final_obs None, final_info rows from that shard's info (the server's final_info
  refers to the same frames as its info), anything else zeros.

Failure: all waits share one deadline (the timeout from the moment the requests went out). A
shard that does not answer raises DeadlineError naming its index, env range and address; a shard
that answers with an error raises that error with the same prefix. The other shards may have
stepped (or reset) by then, so after a failed step or reset the group refuses step until a full
reset (no reset_mask) succeeds. A make that fails on one server closes the sessions the others
made.
Not thread-safe (one socket per shard, one caller).
"""
from __future__ import annotations

import re
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import zmq

from . import wire
from .client import (CLOSE_TIMEOUT_S, DEFAULT_TIMEOUT_S, Client, _ids, _one_thread, accept_reply,
                     check_timeout)
from .env import unbatch
from .errors import DeadlineError, RecarenaError, ServerDiedError, TransportError, refuse_copy

_POLL_SLICE_MS = 100


def shard_sizes(num_envs: int, shards: int) -> List[int]:
    """Near-equal contiguous shard sizes: the first num_envs % shards shards get one env more."""
    if shards < 1:
        raise ValueError("addresses must name at least one server")
    if num_envs < shards:
        raise ValueError(f"num_envs={num_envs} is smaller than the {shards} servers it is spread "
                         f"over; expected num_envs >= len(addresses)")
    base, extra = divmod(num_envs, shards)
    return [base + (1 if j < extra else 0) for j in range(shards)]


class _ShardClient(Client):
    """A Client whose round trip is split in two, send() then receive(), so that a caller can
    have requests in flight on several servers at once."""

    @_one_thread  # as Client's calls: one thread, and not in a forked child
    def send(self, op: str, fields: dict, out: Optional[wire.Outgoing] = None) -> int:
        if self._sock is None:
            raise TransportError("the client is closed")
        req_id = next(_ids)
        try:
            self._sock.send_multipart(wire.pack_request(req_id, op, fields, out), copy=False)
        except zmq.ZMQError as e:
            raise TransportError(f"send of '{op}' to {self.address} failed: {e}") from None
        return req_id

    @_one_thread
    def receive(self, req_id: int, op: str, deadline: float, timeout: float
                ) -> Tuple[dict, Sequence[Any]]:
        """The success reply to req_id, waiting until deadline (time.monotonic()); raises as
        Client.call does."""
        sock = self._sock
        if sock is None:
            raise TransportError("the client is closed")
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineError(f"no reply to '{op}' from {self.address} within {timeout:g} s")
            try:
                ready = sock.poll(min(_POLL_SLICE_MS, max(1, int(min(remaining, 1.0) * 1000) + 1)),
                                  zmq.POLLIN)  # min: remaining may be inf (no deadline)
            except zmq.ZMQError as e:
                raise TransportError(f"poll failed during '{op}': {e}") from None
            if not ready:
                continue
            header, frames = wire.split_reply(sock.recv_multipart(copy=False))
            if accept_reply(header, req_id, op):
                return header, frames


class ShardGroup:
    """Connections to the servers at addresses, standing in for RemoteVectorEnv's Client. Handles
    are tuples with one server handle per shard. timeout, server_key and client_key apply to every
    connection (see Client)."""

    __reduce_ex__ = refuse_copy  # as Client's

    def __init__(self, addresses: Sequence[str], timeout: float = DEFAULT_TIMEOUT_S,
                 server_key: Optional[str] = None, client_key: Any = None):
        addresses = [addresses] if isinstance(addresses, str) else list(addresses)
        if not addresses:
            raise ValueError("addresses must name at least one server")
        if any(not isinstance(a, str) or not a for a in addresses):
            raise ValueError(f"addresses must be ZeroMQ endpoints (strings), got {addresses!r}")
        if len(set(addresses)) != len(addresses):
            raise ValueError(f"addresses {addresses!r} repeat a server; name each one once")
        self.addresses = addresses
        self.timeout = check_timeout(timeout)
        self.sizes: List[int] = []
        self.starts: List[int] = []
        self._desync: Optional[str] = None
        self._clients: List[_ShardClient] = []
        try:
            for a in addresses:
                self._clients.append(_ShardClient(a, timeout=timeout, server_key=server_key,
                                                  client_key=client_key))
        except BaseException:
            self.close()
            raise

    # --------------------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return not self._clients

    def close(self) -> None:
        clients, self._clients = self._clients, []
        for c in clients:
            c.close()

    def _where(self, j: int) -> str:
        lo = self.starts[j] if self.starts else 0
        hi = lo + self.sizes[j] - 1 if self.sizes else lo
        return f"shard {j} of {len(self.addresses)} (envs {lo}..{hi}) at {self.addresses[j]}"

    def _start(self, j: int) -> int:
        return self.starts[j] if self.starts else 0

    def _fan_out(self, op: str, requests: List[Optional[Tuple[dict, Optional[wire.Outgoing]]]],
                 timeout: Optional[float] = None, collect: bool = False) -> List[Any]:
        """Sends requests[j] to shard j (None: nothing for that shard), all before any wait, then
        gathers the replies in shard order under one deadline. The first failure is raised, or,
        with collect, every shard is awaited and a failed shard's entry is its exception."""
        if not self._clients:
            raise TransportError("the sharded vector env is closed")
        t = self.timeout if timeout is None else float(timeout)
        ids: List[Any] = []
        for j, req in enumerate(requests):
            if req is None:
                ids.append(None)
                continue
            try:
                ids.append(self._clients[j].send(op, req[0], req[1]))
            except RecarenaError as e:
                if not collect:
                    raise _prefixed(e, self._where(j), self._start(j)) from None
                ids.append(_prefixed(e, self._where(j), self._start(j)))
        deadline = time.monotonic() + t
        replies: List[Any] = []
        for j, req_id in enumerate(ids):
            if req_id is None or isinstance(req_id, BaseException):
                replies.append(req_id)
                continue
            try:
                replies.append(self._clients[j].receive(req_id, op, deadline, t))
            except RecarenaError as e:
                if not collect:
                    raise _prefixed(e, self._where(j), self._start(j)) from None
                replies.append(_prefixed(e, self._where(j), self._start(j)))
        return replies

    # --------------------------------------------------------------------------------------------
    # Client's calls, as RemoteVectorEnv makes them.

    def make(self, env: str, num_envs: int, seed: Optional[int] = None,
             config: Optional[dict] = None, autoreset: Optional[str] = None,
             max_episode_steps: Optional[int] = None) -> Dict[str, Any]:
        self.sizes = shard_sizes(int(num_envs), len(self.addresses))
        self.starts = [int(x) for x in np.cumsum([0] + self.sizes[:-1])]
        reqs: List[Optional[Tuple[dict, Optional[wire.Outgoing]]]] = []
        for j, n in enumerate(self.sizes):
            fields: Dict[str, Any] = {"env": env, "num_envs": n}
            if seed is not None:
                fields["seed"] = int(seed) + self.starts[j]
            if config:
                fields["config"] = config
            if autoreset is not None:
                fields["autoreset"] = autoreset
            if max_episode_steps is not None:
                fields["max_episode_steps"] = int(max_episode_steps)
            reqs.append((fields, None))
        replies = self._fan_out("make", reqs, collect=True)
        failed = [r for r in replies if isinstance(r, BaseException)]
        if failed:
            # Free the sessions the other servers made: they would hold their budgets until
            # the idle timeout otherwise.
            self.close_handle(tuple(r[0].get("handle") if not isinstance(r, BaseException)
                                    else None for r in replies), timeout=CLOSE_TIMEOUT_S,
                              best_effort=True)
            raise failed[0]
        made: List[Dict[str, Any]] = []
        for j, (header, frames) in enumerate(replies):  # type: ignore[misc]
            if not isinstance(header.get("handle"), int):
                raise TransportError(f"{self._where(j)}: 'make' reply has no integer 'handle'")
            r = {k: v for k, v in header.items() if k not in ("v", "id", "ok")}
            r["observation_space"] = wire.decode_space(header.get("observation_space"), frames,
                                                       "observation_space")
            r["action_space"] = wire.decode_space(header.get("action_space"), frames,
                                                  "action_space")
            made.append(r)
        handles = tuple(m["handle"] for m in made)
        for j, m in enumerate(made[1:], 1):
            for key in ("observation_space", "action_space", "max_episode_steps"):
                if m.get(key) != made[0].get(key):
                    self.close_handle(handles, timeout=CLOSE_TIMEOUT_S)
                    raise TransportError(f"{self._where(j)} serves {env} with {key} "
                                         f"{m.get(key)!r}, but {self._where(0)} with "
                                         f"{made[0].get(key)!r}; the servers must run the "
                                         f"same build and config")
        out = dict(made[0])
        out["handle"] = handles
        out["num_envs"] = int(num_envs)
        return out

    def reset(self, handle: Tuple[int, ...], seed: Any = None, options: Optional[dict] = None
              ) -> Tuple[Any, Dict[str, Any]]:
        opts = dict(options) if options else {}
        mask = opts.pop("reset_mask", None)
        reqs: List[Optional[Tuple[dict, Optional[wire.Outgoing]]]] = []
        for j, (lo, n) in enumerate(zip(self.starts, self.sizes)):
            out = wire.Outgoing()
            fields: Dict[str, Any] = {"handle": handle[j]}
            if seed is not None:
                fields["seed"] = (int(seed) + lo if isinstance(seed, (int, np.integer))
                                  else [int(s) for s in list(seed)[lo:lo + n]])
            o = dict(opts)
            if mask is not None:
                o["reset_mask"] = out.tensor(np.asarray(mask, dtype=np.bool_)[lo:lo + n])
            if o:
                fields["options"] = o
            reqs.append((fields, out))
        try:
            replies = self._fan_out("reset", reqs)
        except RecarenaError as e:
            self._desync = f"a reset failed ({e})"
            raise
        parts = [wire.decode_reset_reply(h, f) for h, f in replies]  # type: ignore[misc]
        if mask is None:
            self._desync = None
        return (_concat([p[0] for p in parts]),
                _merge_info([p[1] for p in parts], [p[1] for p in parts], self.sizes))

    def step(self, handle: Tuple[int, ...], action: np.ndarray
             ) -> Tuple[Any, np.ndarray, np.ndarray, np.ndarray, Dict[str, Any]]:
        if self._desync is not None:
            raise TransportError(f"the sharded vector env is out of step since {self._desync}; "
                                 f"reset() it (without reset_mask) to continue")
        reqs: List[Optional[Tuple[dict, Optional[wire.Outgoing]]]] = []
        for j, (lo, n) in enumerate(zip(self.starts, self.sizes)):
            out = wire.Outgoing()
            reqs.append(({"handle": handle[j], "action": out.tensor(action[lo:lo + n])}, out))
        try:
            replies = self._fan_out("step", reqs)
        except RecarenaError as e:
            self._desync = f"a step failed ({e})"
            raise
        parts = [wire.decode_step_reply(h, f) for h, f in replies]  # type: ignore[misc]
        infos = [p[4] for p in parts]
        return (_concat([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts]),
                _merge_info(infos, infos, self.sizes))

    def set_task(self, handle: Tuple[int, ...], task: dict, mask: Any = None) -> Dict[str, Any]:
        reqs: List[Optional[Tuple[dict, Optional[wire.Outgoing]]]] = []
        m = None if mask is None else np.asarray(mask, dtype=np.bool_)
        for j, (lo, n) in enumerate(zip(self.starts, self.sizes)):
            if m is not None and not m[lo:lo + n].any():
                reqs.append(None)  # no env of this shard changes task
                continue
            out = wire.Outgoing()
            fields: Dict[str, Any] = {"handle": handle[j], "task": task}
            if m is not None:
                fields["mask"] = out.tensor(m[lo:lo + n])
            reqs.append((fields, out))
        replies = self._fan_out("set_task", reqs)
        for r in replies:
            if r is not None:
                return r[0].get("task") or {}
        return {}

    def render(self, handle: Tuple[int, ...], index: int = 0) -> str:
        i = int(index)
        for j, (lo, n) in enumerate(zip(self.starts, self.sizes)):
            if lo <= i < lo + n:
                header, _ = self._fan_out("render", [({"handle": handle[j], "index": i - lo},
                                                      None) if k == j else None
                                                     for k in range(len(self.sizes))])[j]
                text = header.get("text")
                if not isinstance(text, str):
                    raise TransportError(f"{self._where(j)}: 'render' reply has no 'text' string")
                # The server names the env by its index in its own batch; say the global one.
                return re.sub(rf"^(\S+ env ){i - lo}\b", rf"\g<1>{i}", text, count=1)
        raise IndexError(f"env index {i} is outside 0..{sum(self.sizes) - 1}")

    def close_handle(self, handle: Tuple[Optional[int], ...], timeout: Optional[float] = None,
                     best_effort: bool = False) -> None:
        """Closes every shard's handle (None: that shard has none) in one fan-out, so a dead
        server costs one deadline, not one per shard; raises the first failure after all were
        tried, unless best_effort."""
        replies = self._fan_out("close", [None if h is None or not isinstance(h, int)
                                          else ({"handle": h}, None) for h in handle],
                                timeout=timeout, collect=True)
        failed = [r for r in replies if isinstance(r, BaseException)]
        if failed and not best_effort:
            raise failed[0]


def _prefixed(e: RecarenaError, where: str, start: int) -> RecarenaError:
    """e, same class and code, with where in front of its message and its env_index (if any)
    counted in the whole vector env rather than in the shard."""
    if isinstance(e, ServerDiedError):
        return ServerDiedError(f"{where}: {e.message}", e.returncode, e.stderr_tail)
    idx = e.env_index
    return type(e)(f"{where}: {e.message}", code=e.code,
                   env_index=None if idx is None else idx + start)


def _concat(parts: List[Any]) -> Any:
    """The shards' batched observations (dicts of arrays or arrays) as one batch."""
    if isinstance(parts[0], dict):
        return {k: _concat([p[k] for p in parts]) for k in parts[0]}
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts)


def _object_rows(batched: Any, mask: Optional[np.ndarray], n: int) -> np.ndarray:
    """Gymnasium's final_obs form for one shard: row i's observation where mask[i], else None."""
    out = np.full(n, None, dtype=object)
    if batched is None:
        return out
    for i in (range(n) if mask is None else np.flatnonzero(mask)):
        out[i] = unbatch(batched, int(i))
    return out


def _filler(like: Any, n: int) -> Any:
    """n rows of zeros shaped like another shard's rows (arrays or dicts of them)."""
    if isinstance(like, dict):
        return {k: _filler(v, n) for k, v in like.items()}
    a = np.asarray(like)
    return np.zeros((n,) + a.shape[1:], a.dtype)


def _merge_info(infos: List[Dict[str, Any]], fallbacks: List[Dict[str, Any]],
                sizes: List[int]) -> Dict[str, Any]:
    """One vector info from the shards' infos. A name a shard lacks gets rows from that shard's
    fallback dict when it has the name (final_info falls back to the shard's info), else zeros;
    its "_name" mask is False there."""
    names: List[str] = []
    for info in infos:
        for k in info:
            if not k.startswith("_") and k not in names:
                names.append(k)
    out: Dict[str, Any] = {}
    for k in names:
        if k == "final_obs":
            out[k] = np.concatenate([_object_rows(info.get(k), info.get("_" + k), n)
                                     for info, n in zip(infos, sizes)])
        elif any(isinstance(info.get(k), dict) for info in infos):
            out[k] = _merge_info([info.get(k) or {} for info in infos], fallbacks, sizes)
        else:
            like = next(info[k] for info in infos if k in info)
            rows = []
            for info, fb, n in zip(infos, fallbacks, sizes):
                if k in info:
                    rows.append(np.asarray(info[k]))
                elif k in fb and not isinstance(fb[k], dict):
                    rows.append(np.asarray(fb[k]))
                else:
                    rows.append(_filler(like, n))
            out[k] = np.concatenate(rows)
        if any("_" + k in info for info in infos):
            out["_" + k] = np.concatenate([np.asarray(info["_" + k], np.bool_) if "_" + k in info
                                           else np.zeros(n, np.bool_)
                                           for info, n in zip(infos, sizes)])
    return out
