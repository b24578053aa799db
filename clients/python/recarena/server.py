"""recarena.server - finding and running a local recarena-server.

LocalServer starts the binary on a private ipc:// endpoint (or a free loopback TCP port), waits for
its hello with a deadline, and stops it (SIGTERM, then SIGKILL after a grace period) on stop(), at
interpreter exit, or when garbage-collected. On Linux the child also gets PR_SET_PDEATHSIG so it
dies with the Python process even after a SIGKILL. stderr goes to a temp file so that a crash can
be reported with its last lines. The temp directory (socket, stderr.log, owner) is removed on stop;
one left by a Python process killed outright is removed by the next LocalServer of this user on
this host (sweep_stale_dirs).

default_server() is the shared embedded server that envs built without an address use: started on
first acquire, stopped when its last user releases it (or at exit). Thread-safe.
"""
from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import List, Optional, Sequence

from .errors import ServerDiedError, ServerNotFoundError

BINARY_NAME = "recarena-server"
ENV_VAR = "RECARENA_SERVER"
STOP_GRACE_S = 2.0
TMP_PREFIX = "recarena-"
OWNER_FILE = "owner"  # "<host> <pid>" of the Python process that made the directory
STALE_FILES = {"server.sock", "stderr.log", OWNER_FILE}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def sweep_stale_dirs(root: Optional[str] = None) -> List[str]:
    """Removes the temp directories of LocalServers whose Python process is gone (a SIGKILL skips
    every finaliser; PDEATHSIG stopped the server, but its directory stayed). Only this user's
    directories, recorded by a process on this host that no longer exists, holding nothing but the
    files a LocalServer makes. Returns the paths removed."""
    root = root or tempfile.gettempdir()
    host, removed = socket.gethostname(), []
    try:
        names = [n for n in os.listdir(root) if n.startswith(TMP_PREFIX)]
    except OSError:
        return removed
    for name in names:
        d = os.path.join(root, name)
        try:
            if os.lstat(d).st_uid != os.getuid() or not set(os.listdir(d)) <= STALE_FILES:
                continue
            with open(os.path.join(d, OWNER_FILE)) as f:
                owner_host, owner_pid = f.read().split()
            if owner_host != host or _pid_alive(int(owner_pid)):
                continue
        except (OSError, ValueError):  # not ours, not a directory, no or odd owner: leave it
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    return removed


def find_server_binary(explicit: Optional[str] = None) -> str:
    """Path of the recarena-server executable: (1) explicit, (2) $RECARENA_SERVER, (3) on PATH,
    (4) the development checkout's build/env/server/. ServerNotFoundError when (1) or (2) is
    given and wrong, or when neither is and (3) and (4) fail: it lists what was tried."""
    tried: List[str] = []

    def ok(p: Optional[str]) -> bool:
        return bool(p) and os.path.isfile(p) and os.access(p, os.X_OK)

    # A path the caller names (the argument, or the variable) that is wrong is an error, not a
    # reason to look elsewhere: a typo would otherwise run another build's binary, silently
    # (as recarena-tune treats --meta-bin and $RECARENA_META).
    if explicit is not None:
        if ok(explicit):
            return os.path.abspath(explicit)
        raise ServerNotFoundError(f"server_path={explicit!r} is not an executable file (an "
                                  "explicit path is not replaced by another binary)")
    env = os.environ.get(ENV_VAR)
    if env:
        if ok(env):
            return os.path.abspath(env)
        raise ServerNotFoundError(f"${ENV_VAR}={env!r} is not an executable file (unset it to "
                                  f"look on PATH and in the checkout's build)")
    else:
        tried.append(f"${ENV_VAR}: not set")
    on_path = shutil.which(BINARY_NAME)
    if on_path:
        return on_path
    tried.append(f"{BINARY_NAME!r} on PATH: not found")
    dev = _dev_binary()
    if ok(str(dev)):
        return str(dev)
    tried.append(f"development checkout {dev}: not found")
    raise ServerNotFoundError("cannot find the recarena-server binary; tried:\n  " +
                              "\n  ".join(tried) +
                              "\nBuild it (scripts/build.sh) or pass address= to use a running server.")


def _dev_binary() -> Path:
    """Where a development checkout builds the server (clients/python/recarena/ -> repo root)."""
    return Path(__file__).resolve().parents[3] / "build" / "env" / "server" / BINARY_NAME


def free_tcp_endpoint() -> str:
    """tcp://127.0.0.1:<port> with a port free at the time of the call."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def _pdeathsig() -> None:  # runs in the child between fork and exec
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _terminate(proc: subprocess.Popen, tmpdir: Optional[str], grace: float, owner: int) -> None:
    """Stops proc (SIGTERM, then SIGKILL after grace seconds) and removes tmpdir. Idempotent.
    Does nothing in a forked child: the process belongs to the parent (owner pid)."""
    if os.getpid() != owner:
        return
    try:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(grace)
    except Exception:
        pass
    if tmpdir:
        shutil.rmtree(tmpdir, ignore_errors=True)


class LocalServer:
    """One recarena-server child process. Not thread-safe except through default_server()."""

    def __init__(self, server_path: Optional[str] = None, endpoint: Optional[str] = None,
                 transport: str = "ipc", extra_args: Sequence[str] = ()):
        self.binary = find_server_binary(server_path)
        sweep_stale_dirs()
        self._tmpdir = tempfile.mkdtemp(prefix=TMP_PREFIX)
        with open(os.path.join(self._tmpdir, OWNER_FILE), "w") as f:
            f.write(f"{socket.gethostname()} {os.getpid()}\n")
        if endpoint is None:
            if transport == "ipc" and sys.platform != "win32":
                endpoint = f"ipc://{self._tmpdir}/server.sock"
            else:
                endpoint = free_tcp_endpoint()
        self.endpoint = endpoint
        self._stderr_path = os.path.join(self._tmpdir, "stderr.log")
        self._stderr = open(self._stderr_path, "wb")
        args = [self.binary, "--bind", endpoint, *extra_args]
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr,
            # PDEATHSIG fires when the spawning THREAD exits, so only the main thread asks for it.
            preexec_fn=_pdeathsig if sys.platform.startswith("linux")
            and threading.current_thread() is threading.main_thread() else None,
            close_fds=True)
        self._stderr.close()
        # Stops the child at exit or collection even if stop() is never called. The finalizer
        # holds the process, not self.
        self._finalizer = weakref.finalize(self, _terminate, self.proc, self._tmpdir, STOP_GRACE_S,
                                           os.getpid())
        self._finalizer.atexit = True

    @property
    def pid(self) -> int:
        return self.proc.pid

    def returncode(self) -> Optional[int]:
        """None while running, else the exit status (negative: killed by that signal)."""
        return self.proc.poll()

    def stderr_tail(self, lines: int = 20) -> str:
        try:
            with open(self._stderr_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 8192))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        """Raises ServerDiedError (exit code and last stderr lines) if the process has exited."""
        rc = self.proc.poll()
        if rc is not None:
            tail = self.stderr_tail()
            how = f"killed by signal {-rc}" if rc < 0 else f"exit code {rc}"
            raise ServerDiedError(
                f"the local recarena-server (pid {self.proc.pid}, {self.endpoint}) died: {how}"
                + (f"; last stderr lines:\n{tail}" if tail else "; no stderr output"),
                returncode=rc, stderr_tail=tail)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period. Idempotent."""
        self._finalizer()

    def __repr__(self) -> str:
        return f"LocalServer(pid={self.proc.pid}, endpoint={self.endpoint!r})"


class _SharedServer:
    """The process-wide embedded server, reference-counted by the envs that use it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._server: Optional[LocalServer] = None
        self._users = 0
        self._pid = os.getpid()

    def _after_fork(self) -> None:
        """A forked child (AsyncVectorEnv workers) starts its own server, never the parent's."""
        if self._pid != os.getpid():
            self._lock = threading.Lock()
            self._server, self._users, self._pid = None, 0, os.getpid()

    def acquire(self, server_path: Optional[str] = None) -> LocalServer:
        self._after_fork()
        with self._lock:
            if self._server is not None and self._server.returncode() is not None:
                self._server.stop()  # died; start afresh (users of the dead one see their errors)
                self._server = None
                self._users = 0
            if self._server is None:
                self._server = LocalServer(server_path)
            self._users += 1
            return self._server

    def release(self, server: LocalServer) -> None:
        self._after_fork()
        with self._lock:
            if server is not self._server:
                server.stop()
                return
            self._users -= 1
            if self._users <= 0:
                self._server.stop()
                self._server = None
                self._users = 0

    def stop(self) -> None:
        self._after_fork()
        with self._lock:
            if self._server is not None:
                self._server.stop()
            self._server = None
            self._users = 0


_shared = _SharedServer()
atexit.register(_shared.stop)


def default_server() -> _SharedServer:
    return _shared
