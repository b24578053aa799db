"""One recarena-meta run as a subprocess (docs/tune.md section 3).

Builds the command line from a flag mapping, starts the binary with its stderr in a file, follows
the JSONL metrics file as lines arrive (the contract flushes after every line) and hands each line
to a callback that may stop the run (pruning, a spent budget). Owns the child process and closes
it on every path: a stopped run gets SIGTERM, then SIGKILL after a grace period.

Threading: run_meta blocks its caller; several threads may each run one (the search driver runs
--parallel of them). Callbacks are called on the calling thread.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from .space import Scalar, format_value

STDERR_TAIL = 2000  # characters of a failed run's stderr kept in the study
GRACE_S = 5.0       # SIGTERM to SIGKILL


class MetaNotFoundError(FileNotFoundError):
    """No recarena-meta binary where it was looked for."""


def find_meta_binary(explicit: Optional[str] = None, root: Optional[str] = None) -> str:
    """--meta-bin, else $RECARENA_META, else build/agents/recarena-meta under the checkout."""
    if root is None:
        root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
    tried = []
    for cand, how in ((explicit, "--meta-bin"), (os.environ.get("RECARENA_META"), "$RECARENA_META"),
                      (os.path.join(root, "build", "agents", "recarena-meta"), "the build dir")):
        if not cand:
            continue
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return os.path.abspath(cand)
        tried.append(f"{cand} ({how})")
        if how != "the build dir":
            break  # an explicit choice that is wrong is an error, not a reason to look elsewhere
    raise MetaNotFoundError("recarena-meta not found or not executable: " + "; ".join(tried)
                            + ". Build it (scripts/build.sh build) or pass --meta-bin PATH")


def meta_argv(meta_bin: str, flags: Dict[str, Scalar]) -> List[str]:
    argv = [meta_bin]
    for k, v in flags.items():
        argv += [f"--{k}", format_value(v)]
    argv.append("--quiet")
    return argv


@dataclass
class RunResult:
    """What a run left: status is 'ok', 'failed' or 'stopped' (by the callback or stop event)."""

    status: str
    returncode: Optional[int]
    lines: List[Dict[str, Any]] = field(default_factory=list)
    env_steps: int = 0
    wall_s: float = 0.0
    stderr_tail: str = ""
    reason: str = ""
    argv: List[str] = field(default_factory=list)

    def vals(self) -> List[Dict[str, Any]]:
        return [x for x in self.lines if x.get("kind") == "val"]

    def done(self) -> Optional[Dict[str, Any]]:
        d = [x for x in self.lines if x.get("kind") == "done"]
        return d[-1] if d else None


class _Tail:
    """Reads complete lines appended to a file since the last call."""

    def __init__(self, path: str):
        self.path, self.pos, self.buf = path, 0, b""

    def read(self) -> List[str]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                chunk = f.read()
        except FileNotFoundError:
            return []
        self.pos += len(chunk)
        self.buf += chunk
        *done, self.buf = self.buf.split(b"\n")
        return [d.decode("utf-8", "replace") for d in done if d.strip()]


def _tail_text(path: str) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - STDERR_TAIL))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_meta(meta_bin: str, flags: Dict[str, Scalar], workdir: str, metric: str,
             on_line: Optional[Callable[[Dict[str, Any]], Optional[str]]] = None,
             stop_event: Optional[threading.Event] = None, poll_s: float = 0.05) -> RunResult:
    """Runs recarena-meta with flags plus --metrics (and --quiet) in workdir.

    on_line(line) is called for every metrics line as it arrives; a non-empty string return stops
    the run with that reason. A val line whose `metric` is missing or not finite, an exit status
    other than 0, or a line that is not JSON makes the run 'failed' with the reason and the tail of
    its stderr; the study goes on.
    """
    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    metrics = os.path.join(workdir, "metrics.jsonl")
    if os.path.exists(metrics):
        os.remove(metrics)  # the contract appends; a run starts from an empty file
    flags = dict(flags)
    flags["metrics"] = metrics
    argv = meta_argv(meta_bin, flags)
    err_path = os.path.join(workdir, "stderr.txt")
    res = RunResult(status="ok", returncode=None, argv=argv)
    t0 = time.monotonic()
    with open(err_path, "wb") as err:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                    cwd=workdir)
        except OSError as e:
            res.status, res.reason = "failed", f"cannot start {meta_bin}: {e.strerror}"
            return res
        tail = _Tail(metrics)
        try:
            while True:
                exited = proc.poll() is not None
                for text in tail.read():
                    why = _take(res, text, metric, on_line)
                    if why:
                        res.status, res.reason = ("failed" if why.startswith("!") else "stopped",
                                                  why.lstrip("!"))
                        break
                if res.status != "ok" or exited:
                    break
                if stop_event is not None and stop_event.is_set():
                    res.status, res.reason = "stopped", "stop requested"
                    break
                time.sleep(poll_s)
        finally:
            _stop(proc)
    res.returncode = proc.returncode
    res.wall_s = time.monotonic() - t0
    if res.status == "ok" and proc.returncode != 0:
        res.status, res.reason = "failed", f"recarena-meta exited with status {proc.returncode}"
    if res.status == "ok" and not res.vals():
        res.status, res.reason = "failed", "recarena-meta wrote no val line (is --val-every set?)"
    if res.status == "failed":
        res.stderr_tail = _tail_text(err_path)
    return res


def _take(res: RunResult, text: str, metric: str,
          on_line: Optional[Callable[[Dict[str, Any]], Optional[str]]]) -> Optional[str]:
    """Records one metrics line; returns '!reason' for a failure, a reason to stop, or None."""
    try:
        line = json.loads(text)
    except ValueError:
        return f"!metrics line {len(res.lines) + 1} is not JSON: {text[:120]!r}"
    if not isinstance(line, dict):
        return f"!metrics line {len(res.lines) + 1} is not an object: {text[:120]!r}"
    steps = line.get("env_steps")
    if isinstance(steps, (int, float)) and math.isfinite(steps):
        res.env_steps = max(res.env_steps, int(steps))
    if line.get("kind") == "val":  # kept only when it has the metric: vals() are all usable
        if metric not in line:
            return (f"!val line at iter {line.get('iter')} has no key {metric!r} (it has "
                    f"{', '.join(sorted(line))}; see --metric)")
        v = line[metric]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return (f"!val line at iter {line.get('iter')} has {metric!r} = {v!r} "
                    "(not a finite number)")
    res.lines.append(line)
    if on_line is not None:
        return on_line(line) or None
    return None


def wait_threads(threads: List[threading.Thread], poll_s: float = 0.05) -> None:
    """Waits for threads without Thread.join: a KeyboardInterrupt (Ctrl-C, or SIGTERM turned into
    one) that lands inside a blocking join makes CPython 3.11 mark the still-running thread as
    stopped, so the interpreter would exit under it and leave its recarena-meta orphaned.
    Sleeping between is_alive() checks is safe to interrupt."""
    while any(t.is_alive() for t in threads):
        time.sleep(poll_s)

