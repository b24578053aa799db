"""A scripted protocol-v1 server on a thread, for client tests that the real server cannot stage:
every error code on demand, a server that never answers, stale replies. Not a simulator.

make with env "ERR_<CODE>" answers that error code; op "mute" makes every later request go
unanswered; hello/list/make/ping answer like the real server (with a tiny Dict/Discrete env).
"""
from __future__ import annotations

import threading

import msgpack
import numpy as np
import zmq
from gymnasium import spaces

from recarena import wire


class FakeServer:
    def __init__(self) -> None:
        self._ctx = zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        port = self._sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.muted = False
        self.stale_first = False  # send a reply with a wrong id before each real one
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close(0)

    def _reply(self, ident, header, frames=()):
        self._sock.send_multipart([ident, msgpack.packb(header, use_bin_type=True), *frames])

    def _run(self) -> None:
        obs_space = spaces.Dict({"user": spaces.Box(-1, 1, (3,), np.float32),
                                 "candidates": spaces.Box(0, 255, (4, 2), np.uint8)})
        while not self._stop.is_set():
            if not self._sock.poll(50):
                continue
            ident, head, *frames = self._sock.recv_multipart()
            req = msgpack.unpackb(head, raw=False)
            op, rid = req.get("op"), req.get("id")
            if op == "mute":
                self.muted = True
            if self.muted:
                continue
            if self.stale_first:
                self._reply(ident, {"v": 1, "id": rid + 1000, "ok": False,
                                    "error": {"code": "INTERNAL", "message": "stale"}})
            base = {"v": 1, "id": rid, "ok": True}
            if op == "hello":
                self._reply(ident, {**base, "server": "fake", "version": 1, "build": "test",
                                    "capabilities": [], "envs": ["Fake-v1"],
                                    "limits": {"max_envs": 4096, "max_sessions": 64,
                                               "max_message_bytes": 1 << 26}})
            elif op == "list":
                self._reply(ident, {**base, "envs": [{"id": "Fake-v1", "description": "fake",
                                                      "config": {}}]})
            elif op == "make":
                env = req.get("env", "")
                if env.startswith("ERR_"):
                    self._reply(ident, {"v": 1, "id": rid, "ok": False,
                                        "error": {"code": env[4:], "message": f"staged {env[4:]}",
                                                  "env_index": 3}})
                    continue
                out = wire.Outgoing()
                o = wire.encode_space(obs_space, out)
                a = wire.encode_space(spaces.Discrete(4), out)
                self._reply(ident, {**base, "handle": 1, "observation_space": o,
                                    "action_space": a, "reward_range": [0, 1],
                                    "max_episode_steps": 10, "autoreset": "disabled",
                                    "task": {}, "metadata": {}},
                            [bytes(f) for f in out.frames])
            elif op in ("ping", "close"):
                self._reply(ident, base)
            else:
                self._reply(ident, {"v": 1, "id": rid, "ok": False,
                                    "error": {"code": "UNKNOWN_OP", "message": f"op {op!r}"}})
