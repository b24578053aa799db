"""recarena.errors - one small exception hierarchy for everything the client can raise.

Server error replies (docs/protocol.md, "Error codes") become a ServerError subclass chosen by the stable wire
code; each carries .code, .message and .env_index (None unless the error concerns one env of a
batch). Local failures (no reply within the deadline, a dead server, a missing binary) have their
own classes under the same base, RecarenaError. Codes and their meanings mirror common/err.h.
"""
from __future__ import annotations

from typing import Optional


class RecarenaError(Exception):
    """Base of every recarena error. code is the stable wire string ("BAD_ACTION", "TIMEOUT")."""

    code = "INTERNAL"

    def __init__(self, message: str, code: Optional[str] = None,
                 env_index: Optional[int] = None):
        if code is not None:
            self.code = code
        self.message = message
        self.env_index = env_index
        where = f" (env {env_index})" if env_index is not None else ""
        super().__init__(f"{self.code}: {message}{where}")


class ServerError(RecarenaError):
    """The server answered with an error reply. Unknown codes map to this class itself."""


class BadRequestError(ServerError, ValueError):
    code = "BAD_REQUEST"


class UnknownOpError(ServerError):
    code = "UNKNOWN_OP"


class VersionError(ServerError):
    code = "VERSION"


class UnknownEnvError(ServerError, LookupError):
    code = "UNKNOWN_ENV"


class BadConfigError(ServerError, ValueError):
    code = "BAD_CONFIG"


class BadActionError(ServerError, ValueError):
    code = "BAD_ACTION"


class NoSuchHandleError(ServerError, LookupError):
    code = "NO_SUCH_HANDLE"


class NeedsResetError(ServerError):
    code = "NEEDS_RESET"


class LimitError(ServerError):
    code = "LIMIT"


class InternalError(ServerError):
    code = "INTERNAL"


class DeadlineError(RecarenaError, TimeoutError):
    """No reply within the deadline (the server is alive but slow, or unreachable)."""
    code = "TIMEOUT"


class TransportError(RecarenaError, ConnectionError):
    """The connection cannot be used: closed client, malformed reply, socket failure."""
    code = "TRANSPORT"


class ServerDiedError(TransportError):
    """The local server this client started has exited. Carries its exit code and last stderr lines."""

    def __init__(self, message: str, returncode: Optional[int] = None, stderr_tail: str = ""):
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        super().__init__(message)


class ServerNotFoundError(RecarenaError, FileNotFoundError):
    """No recarena-server binary was found; the message lists every place that was tried."""
    code = "IO"


#: wire code -> exception class for server error replies.
ERROR_CLASSES = {cls.code: cls for cls in (
    BadRequestError, UnknownOpError, VersionError, UnknownEnvError, BadConfigError,
    BadActionError, NoSuchHandleError, NeedsResetError, LimitError, InternalError)}


def error_from_reply(error: object) -> ServerError:
    """The exception for a reply's "error" map {code, message, env_index?} (untrusted input)."""
    if not isinstance(error, dict):
        return InternalError(f"malformed error reply: {error!r}")
    code = error.get("code")
    message = error.get("message")
    env_index = error.get("env_index")
    if not isinstance(code, str):
        code = "INTERNAL"
    if not isinstance(message, str):
        message = ""
    if not isinstance(env_index, int) or isinstance(env_index, bool) or env_index < 0:
        env_index = None
    cls = ERROR_CLASSES.get(code, ServerError)
    return cls(message, code=code, env_index=env_index)


def refuse_copy(self: object, protocol: int = 0) -> None:
    """__reduce_ex__ of the classes that own a simulator session (an env, a client): copy.copy,
    copy.deepcopy and pickle all go through it. A copy would share the session (a C pointer, a
    socket) and close it when either is collected, leaving the other to crash or to find its
    session gone; so each of them says so instead."""
    raise TypeError(f"a {type(self).__name__} cannot be copied or pickled: it owns a simulator "
                    "session that a copy would share and close. Make another one (gym.make, "
                    "gym.make_vec); to ship envs to worker processes, pickle the function that "
                    "makes them, as gymnasium's AsyncVectorEnv does")
