"""Search spaces for recarena-tune (docs/tune.md section 2).

A space file is TOML (read with tomllib) or JSON. Every top-level key is a recarena-meta flag name
(without the leading dashes). A scalar value is a fixed key, passed to every trial unchanged; a
table is a searched key:

    env = "ECommerce-v1"          # fixed
    iters = 60                    # fixed: the most a trial may run
    [inner-lr]                    # searched
    type = "log-uniform"          # uniform | log-uniform | int | choice
    low = 1e-4
    high = 1e-1
    [population]
    type = "int"
    low = 8
    high = 64
    step = 8                      # optional; int only
    log = false                   # optional; int only
    [adapt-params]
    type = "choice"
    values = ["all", "head"]

Owns nothing but the parsed description; no threads. Every error is a SpaceError whose message
names the file and the key, and says what was expected.
"""
from __future__ import annotations

import json
import math
import os
import random
from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence, Union

try:
    import tomllib  # Python >= 3.11
except ModuleNotFoundError:  # pragma: no cover - 3.9/3.10 have no tomllib
    tomllib = None  # type: ignore[assignment]

Scalar = Union[str, int, float]

# Flags the tuner sets itself on every trial: a space may not fix or search them.
RESERVED = ("metrics", "checkpoint-out", "checkpoint-last", "checkpoint-in", "quiet", "config", "address")
KINDS = ("uniform", "log-uniform", "int", "choice")


class SpaceError(ValueError):
    """A search space that cannot be used; the message names the key."""


@dataclass(frozen=True)
class Dim:
    """One searched key: its kind and range (or choices)."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    step: int = 1
    log: bool = False
    values: Sequence[Scalar] = ()

    def clip(self, x: float) -> Scalar:
        """x brought inside [low, high] (ints also onto the step grid)."""
        x = min(max(x, self.low), self.high)
        if self.kind == "int":
            k = round((x - self.low) / self.step)
            v = int(self.low) + int(k) * self.step
            while v > self.high:
                v -= self.step
            return v
        return float(x)

    def sample(self, rng: random.Random) -> Scalar:
        """A draw from the prior: log-uniform in log space, ints uniform on the grid."""
        if self.kind == "choice":
            return self.values[rng.randrange(len(self.values))]
        if self.kind == "int":
            if self.log:
                return self.clip(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
            n = (int(self.high) - int(self.low)) // self.step
            return int(self.low) + rng.randint(0, n) * self.step
        if self.kind == "log-uniform":
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)


@dataclass
class Space:
    """A parsed space: fixed keys (passed through) and searched dimensions, in file order."""

    fixed: Dict[str, Scalar] = field(default_factory=dict)
    dims: List[Dim] = field(default_factory=list)
    source: str = "<space>"

    def names(self) -> List[str]:
        return [d.name for d in self.dims]

    def suggest(self, trial: Any) -> Dict[str, Scalar]:
        """Asks an Optuna trial for one value per searched key (its sampler decides)."""
        out: Dict[str, Scalar] = {}
        for d in self.dims:
            if d.kind == "choice":
                out[d.name] = trial.suggest_categorical(d.name, list(d.values))
            elif d.kind == "int":
                out[d.name] = trial.suggest_int(d.name, int(d.low), int(d.high), step=d.step,
                                                log=d.log)
            else:
                out[d.name] = trial.suggest_float(d.name, d.low, d.high,
                                                  log=d.kind == "log-uniform")
        return out

    def sample(self, rng: random.Random) -> Dict[str, Scalar]:
        return {d.name: d.sample(rng) for d in self.dims}


def _num(path: str, key: str, spec: Dict[str, Any], what: str) -> float:
    if what not in spec:
        raise SpaceError(f"{path}: key '{key}': {spec.get('type')} needs '{what}'")
    v = spec[what]
    if isinstance(v, int) and not isinstance(v, bool) and not -1e308 < v < 1e308:
        # a JSON int past any double: math.isfinite itself would raise OverflowError on it
        raise SpaceError(f"{path}: key '{key}': '{what}' must be a finite number, got an "
                         f"integer of {len(str(abs(v)))} digits")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise SpaceError(f"{path}: key '{key}': '{what}' must be a finite number, got {v!r}")
    return float(v)


def _dim(path: str, key: str, spec: Dict[str, Any]) -> Dim:
    kind = spec.get("type")
    if kind not in KINDS:
        raise SpaceError(f"{path}: key '{key}': 'type' must be one of {', '.join(KINDS)}, "
                         f"got {kind!r}")
    allowed = {"uniform": {"type", "low", "high"}, "log-uniform": {"type", "low", "high"},
               "int": {"type", "low", "high", "step", "log"}, "choice": {"type", "values"}}[kind]
    extra = sorted(set(spec) - allowed)
    if extra:
        raise SpaceError(f"{path}: key '{key}': unknown field(s) {', '.join(extra)} for type "
                         f"{kind} (allowed: {', '.join(sorted(allowed))})")
    if kind == "choice":
        vals = spec.get("values")
        if not isinstance(vals, list) or not vals:
            raise SpaceError(f"{path}: key '{key}': choice needs a non-empty list 'values'")
        for v in vals:
            if (isinstance(v, bool) or not isinstance(v, (str, int, float))
                    or isinstance(v, float) and not math.isfinite(v)):  # JSON takes NaN
                raise SpaceError(f"{path}: key '{key}': choice values must be strings or finite "
                                 f"numbers, got {v!r}")
        # by value, not repr: 1 and 1.0 are one setting for recarena-meta (and one choice
        # drawn twice as often); "1" and 1 stay apart, as a string and a number
        if len({(isinstance(v, str), v) for v in vals}) != len(vals):
            raise SpaceError(f"{path}: key '{key}': choice values repeat")
        return Dim(key, kind, values=tuple(vals))
    low, high = _num(path, key, spec, "low"), _num(path, key, spec, "high")
    if not low < high:
        raise SpaceError(f"{path}: key '{key}': needs low < high, got low={low:g} high={high:g}")
    if kind == "log-uniform" and low <= 0:
        raise SpaceError(f"{path}: key '{key}': log-uniform needs low > 0, got {low:g}")
    if kind == "int":
        step = spec.get("step", 1)
        log = spec.get("log", False)
        if low != int(low) or high != int(high):
            raise SpaceError(f"{path}: key '{key}': int needs integer low and high, "
                             f"got {low:g} and {high:g}")
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise SpaceError(f"{path}: key '{key}': 'step' must be a positive integer, "
                             f"got {step!r}")
        if not isinstance(log, bool):
            raise SpaceError(f"{path}: key '{key}': 'log' must be true or false, got {log!r}")
        if log and (low < 1 or step != 1):
            raise SpaceError(f"{path}: key '{key}': log int needs low >= 1 and step = 1")
        if (int(high) - int(low)) % step:
            raise SpaceError(f"{path}: key '{key}': high - low ({int(high - low)}) is not a "
                             f"multiple of step {step}")
        return Dim(key, kind, low=low, high=high, step=step, log=log)
    return Dim(key, kind, low=low, high=high)


def parse_space(data: Dict[str, Any], source: str = "<space>") -> Space:
    """Builds a Space from the decoded file (a mapping); SpaceError on anything unusable."""
    if not isinstance(data, dict):
        raise SpaceError(f"{source}: a search space is a table of keys, got {type(data).__name__}")
    space = Space(source=source)
    for key, val in data.items():
        if (not isinstance(key, str) or not key or key.startswith("-")
                or any(c.isspace() for c in key)):
            raise SpaceError(f"{source}: key {key!r}: expected a recarena-meta flag name without "
                             "dashes, such as inner-lr")
        if key in RESERVED:
            raise SpaceError(f"{source}: key '{key}': set by recarena-tune for every trial; remove "
                             f"it (reserved: {', '.join(RESERVED)})")
        if isinstance(val, dict):
            space.dims.append(_dim(source, key, val))
        elif isinstance(val, bool) or not isinstance(val, (str, int, float)):
            raise SpaceError(f"{source}: key '{key}': a fixed key takes a string or a number, "
                             f"got {val!r}; a searched key takes a table with 'type'")
        elif isinstance(val, float) and not math.isfinite(val):
            raise SpaceError(f"{source}: key '{key}': fixed value must be finite, got {val!r}")
        else:
            space.fixed[key] = val
    if not space.dims:
        raise SpaceError(f"{source}: no searched key (a table with 'type'); nothing to tune")
    return space


def _no_repeats(pairs: List[Any], path: str) -> Dict[str, Any]:
    """A JSON object, refused when a key repeats: json keeps the last one silently, so a key
    pasted twice would tune a range other than the one the reader sees first (TOML refuses it)."""
    out: Dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise SpaceError(f"{path}: key '{k}' appears twice in one object")
        out[k] = v
    return out


def load_space(path: str) -> Space:
    """Reads a .toml or .json space file; SpaceError (naming the file) when it cannot."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".toml", ".json"):
        raise SpaceError(f"{path}: a search space ends in .toml or .json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise SpaceError(f"{path}: cannot read the search space: {e.strerror}") from None
    try:
        if ext == ".json":
            data = json.loads(raw.decode("utf-8"),
                              object_pairs_hook=lambda pairs: _no_repeats(pairs, path))
        elif ext == ".toml":
            if tomllib is None:
                raise SpaceError(f"{path}: TOML needs Python >= 3.11; use a .json space")
            data = tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        if isinstance(e, SpaceError):
            raise
        raise SpaceError(f"{path}: not valid {ext[1:].upper()}: {e}") from None
    return parse_space(data, path)


def format_value(v: Scalar) -> str:
    """A value as recarena-meta reads it: repr for floats (round-trips exactly)."""
    if isinstance(v, float):
        return repr(v)
    return str(v)


def write_config(path: str, values: Dict[str, Scalar]) -> None:
    """Writes `key = value` lines that `recarena-meta --config` accepts (no comments: the contract
    defines none, so provenance goes into the JSON beside it)."""
    lines = []
    for k, v in values.items():
        lines.append(f"{k} = {format_value(v)}")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
