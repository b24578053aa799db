"""recarena - Gymnasium environments over the recarena simulators: in-process (librecarena_local.so,
docs/local.md) or served by recarena-server (ZeroMQ + msgpack, protocol v1).

    import gymnasium as gym, recarena
    env = gym.make("recarena/ECommerce-v1")                  # in-process when no address is given
    envs = gym.make_vec("recarena/ECommerce-v1", num_envs=256)  # one batch
    env = gym.make("recarena/ECommerce-v1", backend="server")   # a local server started on demand
    env = gym.make("recarena/ECommerce-v1", address="tcp://127.0.0.1:5555")  # a running server

Importing registers the known simulators as recarena/<Name> without contacting any server;
register_envs(address) registers whatever a given server serves.
"""
from __future__ import annotations

from typing import List, Optional

import gymnasium as gym

from .client import Client
from .env import RemoteEnv
from .errors import (BadActionError, BadConfigError, BadRequestError, DeadlineError,
                     InternalError, LimitError, NeedsResetError, NoSuchHandleError,
                     RecarenaError, ServerDiedError, ServerError, ServerNotFoundError,
                     TransportError, UnknownEnvError, UnknownOpError, VersionError)
from .server import LocalServer, find_server_binary
from .vector import RemoteVectorEnv

__version__ = "0.1.0"

#: Simulators registered at import (docs/architecture.md section 5); extend as the server gains them.
KNOWN_ENVS = ("ECommerce-v1", "Ads-v1", "News-v1", "Content-v1")
NAMESPACE = "recarena"


def _make_vector(num_envs: int = 1, **kwargs) -> RemoteVectorEnv:
    return RemoteVectorEnv(num_envs=num_envs, **kwargs)


def register(name: str, address: Optional[str] = None) -> str:
    """Registers recarena/<name> (idempotent); address becomes a default kwarg. Returns the id."""
    env_id = f"{NAMESPACE}/{name}"
    kwargs = {"env_id": name}
    if address is not None:
        kwargs["address"] = address
    if env_id in gym.registry:
        del gym.registry[env_id]
    gym.register(id=env_id, entry_point="recarena.env:RemoteEnv",
                 vector_entry_point="recarena:_make_vector",
                 kwargs=kwargs, max_episode_steps=None, disable_env_checker=False)
    return env_id


def register_envs(address: Optional[str] = None, timeout: float = 10.0) -> List[str]:
    """Asks a server (address, or the embedded local one) for its simulators ('list' op) and
    registers each as recarena/<Name> bound to that address. Returns the registered ids."""
    with Client(address, timeout=timeout) as c:
        envs = c.list()
    return [register(e["id"], address) for e in envs if isinstance(e, dict) and "id" in e]


for _name in KNOWN_ENVS:
    register(_name)

__all__ = [
    "Client", "RemoteEnv", "RemoteVectorEnv", "LocalServer", "find_server_binary", "register",
    "register_envs", "KNOWN_ENVS", "RecarenaError", "ServerError", "BadRequestError",
    "UnknownOpError", "VersionError", "UnknownEnvError", "BadConfigError", "BadActionError",
    "NoSuchHandleError", "NeedsResetError", "LimitError", "InternalError", "DeadlineError",
    "TransportError", "ServerDiedError", "ServerNotFoundError",
]
