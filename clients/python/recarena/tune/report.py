"""What a study leaves in --out (docs/tune.md section 6): a table of the best trials, a JSON
summary, PNG plots (matplotlib Agg) and the best configuration as `key = value` lines that
`recarena-meta --config` accepts.

Pure functions of a study (or the PBT state) and the paths given; no threads.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, Iterator, List, Optional, Tuple

import optuna

from .space import Space, write_config

BEST_CONFIG = "best.cfg"


def _finite(x: Any) -> Optional[float]:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def trial_rows(study: optuna.Study) -> List[Dict[str, Any]]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        iv = t.intermediate_values
        rows.append({
            "number": t.number, "state": t.state.name, "value": _finite(t.value),
            "params": dict(t.params), "best_val": _finite(t.user_attrs.get("best_val")),
            "intermediate": [[int(k), _finite(v)] for k, v in sorted(iv.items())],
            "last_step": max(iv) if iv else None,
            "env_steps": t.user_attrs.get("env_steps"), "wall_s": t.user_attrs.get("wall_s"),
            "stopped": t.user_attrs.get("stopped"), "fail_reason": t.user_attrs.get("fail_reason"),
            "stderr_tail": t.user_attrs.get("stderr_tail"),
            "interrupted": bool(t.user_attrs.get("interrupted")),
            "retry_of": t.user_attrs.get("retry_of"),
            "checkpoint": (os.path.join(t.user_attrs["workdir"], "checkpoint.safetensors")
                           if t.user_attrs.get("workdir") else None),
            "finished": t.datetime_complete.isoformat() if t.datetime_complete else None,
        })
    return rows


def incumbents(rows: List[Dict[str, Any]], maximize: bool) -> Iterator[Tuple[int, Optional[Dict[str, Any]]]]:
    """(cumulative env steps, the best completed trial so far or None) after each trial, in the
    order trials finished: how a study's budget buys its incumbent."""
    done = sorted((r for r in rows if r["finished"] and r["env_steps"] is not None),
                  key=lambda r: (r["finished"], r["number"]))
    total, best = 0, None
    for r in done:
        total += int(r["env_steps"])
        v = r["value"] if r["state"] == "COMPLETE" else None
        if v is not None and (best is None or (v > best["value"] if maximize else v < best["value"])):
            best = r
        yield total, best


def best_so_far(rows: List[Dict[str, Any]], maximize: bool) -> List[List[float]]:
    """[cumulative env steps, best completed value so far] in the order trials finished."""
    return [[steps, best["value"] if best else None] for steps, best in incumbents(rows, maximize)]


def format_table(rows: List[Dict[str, Any]], names: List[str], metric: str, maximize: bool,
                 top: int = 10) -> str:
    ok = [r for r in rows if r["state"] == "COMPLETE" and r["value"] is not None]
    ok.sort(key=lambda r: -r["value"] if maximize else r["value"])
    head = ["trial", metric, "steps"] + names
    lines = [head]
    for r in ok[:top]:
        lines.append([str(r["number"]), f"{r['value']:.4g}", str(r["env_steps"])]
                     + [f"{r['params'].get(n):.4g}" if isinstance(r["params"].get(n), float)
                        else str(r["params"].get(n)) for n in names])
    w = [max(len(l[i]) for l in lines) for i in range(len(head))]
    out = ["| " + " | ".join(c.ljust(w[i]) for i, c in enumerate(l)) + " |" for l in lines]
    out.insert(1, "|" + "|".join("-" * (x + 2) for x in w) + "|")
    states: Dict[str, int] = {}
    for r in rows:
        states[r["state"]] = states.get(r["state"], 0) + 1
    out.append(", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items())))
    return "\n".join(out)


def write_search_outputs(study: optuna.Study, space: Space, out_dir: str, metric: str,
                         resource: str, eta: int, min_resource: Optional[int]) -> Dict[str, Any]:
    """Writes summary.json, best.cfg (when a trial completed) and the plots; returns the summary."""
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    rows = trial_rows(study)
    complete = [r for r in rows if r["state"] == "COMPLETE" and r["value"] is not None]
    best = None
    if complete:
        best = (max if maximize else min)(complete, key=lambda r: r["value"])
    summary = {"schema": "recarena-tune/1", "mode": "search", "study": study.study_name,
               "metric": metric, "resource": resource, "direction": study.direction.name.lower(),
               "fixed": space.fixed, "searched": space.names(),
               "env_steps_total": sum(int(r["env_steps"] or 0) for r in rows),
               "best": best, "best_so_far": best_so_far(rows, maximize), "trials": rows}
    if best is not None:
        cfg = dict(space.fixed)
        cfg.update(best["params"])
        write_config(os.path.join(out_dir, BEST_CONFIG), cfg)
        summary["best_config"] = os.path.join(out_dir, BEST_CONFIG)
    with open(os.path.join(out_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    summary["plots"] = plot_search(summary, out_dir, eta, min_resource)
    return summary


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_search(summary: Dict[str, Any], out_dir: str, eta: int,
                min_resource: Optional[int]) -> List[str]:
    plt = _plt()
    paths = []
    bsf = [p for p in summary["best_so_far"] if p[1] is not None]
    fig, ax = plt.subplots(figsize=(6, 4))
    if bsf:
        ax.step([p[0] for p in bsf], [p[1] for p in bsf], where="post")
    ax.set_xlabel("env steps used by the study")
    ax.set_ylabel(f"best val {summary['metric']} so far")
    ax.set_title(f"{summary['study']}: best so far against budget")
    fig.tight_layout()
    paths.append(os.path.join(out_dir, "best_so_far.png"))
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    colors = {"COMPLETE": "tab:green", "PRUNED": "tab:orange", "FAIL": "tab:red",
              "RUNNING": "tab:gray"}
    fig, ax = plt.subplots(figsize=(6, 4))
    top = 0
    for r in summary["trials"]:
        pts = [p for p in r["intermediate"] if p[1] is not None]
        if pts:
            top = max(top, pts[-1][0])
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "-o", ms=2, lw=0.8,
                    color=colors.get(r["state"], "k"), alpha=0.7)
    # The rungs of successive halving: min_resource * eta^k (docs/tune.md section 4).
    if min_resource and top:
        k, r = 0, min_resource
        while r <= top:
            ax.axvline(r, color="k", lw=0.5, ls=":")
            k, r = k + 1, min_resource * eta ** (k + 1)
    for s, c in colors.items():
        ax.plot([], [], color=c, label=s.lower())
    ax.legend(fontsize=8)
    ax.set_xlabel("iterations" if summary["resource"] == "iters" else "env steps")
    ax.set_ylabel(f"val {summary['metric']}")
    ax.set_title("trials at each validation point (dotted: rungs)")
    fig.tight_layout()
    paths.append(os.path.join(out_dir, "rungs.png"))
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths


def write_pbt_outputs(state: Dict[str, Any], space: Space, out_dir: str, metric: str,
                      maximize: bool) -> Dict[str, Any]:
    ok = [m for m in state["members"] if m["score"] is not None]
    best = (max if maximize else min)(ok, key=lambda m: m["score"]) if ok else None
    summary = {"schema": "recarena-tune/1", "mode": "pbt", "metric": metric,
               "direction": "maximize" if maximize else "minimize",
               "fixed": space.fixed, "searched": space.names(),
               "generations": state["generation"], "env_steps_total": state["steps_done"],
               "best": best, "best_so_far": pbt_best_so_far(state["history"], maximize),
               "schedule": state["schedule"], "history": state["history"]}
    if best is not None:
        # PBT's result is a schedule; the config is the best member's final hyperparameters,
        # trained for as many iterations as the population was, and no more env steps than a
        # lineage had under --lineage-steps (its checkpoint is in the JSON).
        cfg = dict(space.fixed)
        cfg.update(best["params"])
        sig = state["signature"]
        if sig.get("ready_unit", "iters") == "steps":
            cfg["budget-steps"] = state["generation"] * sig["ready"]
        else:
            cfg["iters"] = state["generation"] * sig["ready"]
        if sig.get("lineage_steps") is not None:
            cfg["budget-steps"] = sig["lineage_steps"]
        write_config(os.path.join(out_dir, BEST_CONFIG), cfg)
        summary["best_config"] = os.path.join(out_dir, BEST_CONFIG)
    with open(os.path.join(out_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    summary["plots"] = [plot_pbt(state, space, out_dir, metric)]
    return summary


def pbt_best_so_far(history: List[Dict[str, Any]], maximize: bool) -> List[List[float]]:
    """[cumulative env steps, best member score so far] after each generation."""
    out, total, best = [], 0, None
    for g in sorted({h["generation"] for h in history}):
        for h in history:
            if h["generation"] != g:
                continue
            total += int(h["env_steps"])
            v = h["score"]
            if v is not None and (best is None or (v > best if maximize else v < best)):
                best = v
        out.append([total, best])
    return out


def steps_to_reach(curve: List[List[float]], target: float, maximize: bool) -> Optional[int]:
    """The env steps at which a best-so-far curve first reaches target; None if it never does."""
    for steps, v in curve:
        if v is not None and (v >= target if maximize else v <= target):
            return int(steps)
    return None


def _best_of(s: Dict[str, Any], maximize: bool) -> Optional[float]:
    pts = [v for _, v in s["best_so_far"] if v is not None]
    return ((max if maximize else min)(pts)) if pts else None


def compare_rows(summaries: List[Tuple[str, Dict[str, Any]]]) -> List[Dict[str, Any]]:
    """Per study (docs/tune.md section 8): env steps used, best val value, the env steps its
    best-so-far curve needed to reach the FIRST study's best val value (None: never), and that
    as a fraction of the first study's steps to its own best (to_ref_best) and of the first
    study's whole budget, the env steps it used (of_ref_budget)."""
    ref = summaries[0][1]
    maximize = ref.get("direction", "maximize") == "maximize"
    target = _best_of(ref, maximize)
    ref_steps = steps_to_reach(ref["best_so_far"], target, maximize) if target is not None else None
    ref_budget = int(ref.get("env_steps_total") or 0)
    rows = []
    for name, s in summaries:
        reach = steps_to_reach(s["best_so_far"], target, maximize) if target is not None else None
        rows.append({"name": name, "mode": s["mode"], "env_steps": int(s["env_steps_total"]),
                     "best": _best_of(s, maximize), "target": target, "reach": reach,
                     "to_ref_best": reach / ref_steps if reach is not None and ref_steps else None,
                     "of_ref_budget": reach / ref_budget if reach is not None and ref_budget
                     else None})
    return rows


def _table(rows: List[List[str]]) -> str:
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = ["| " + " | ".join(c.ljust(w[i]) for i, c in enumerate(r)) + " |" for r in rows]
    out.insert(1, "|" + "|".join("-" * (x + 2) for x in w) + "|")
    return "\n".join(out)


def _frac(x: Optional[float]) -> str:
    return "-" if x is None else ("not reached" if math.isinf(x) else f"{x:.2f}")


def compare(summaries: List[Tuple[str, Dict[str, Any]]]) -> str:
    """A table of studies run under one budget (docs/tune.md section 8): env steps used, best val
    value, and the env steps each needed to reach the first study's best val value, as a fraction
    of what the first study needed for it and of the first study's budget."""
    ref_name, ref = summaries[0]
    rows = [["study", "mode", "env steps", f"best val {ref['metric']}",
             f"steps to reach {ref_name}'s best", f"/ {ref_name}'s steps to it",
             f"/ {ref_name}'s budget"]]
    for r in compare_rows(summaries):
        rows.append([r["name"], r["mode"], str(r["env_steps"]),
                     "-" if r["best"] is None else f"{r['best']:.4g}",
                     "not reached" if r["reach"] is None else str(r["reach"]),
                     _frac(r["to_ref_best"]), _frac(r["of_ref_budget"])])
    return _table(rows)


def _median(xs: List[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    if n % 2:
        return xs[n // 2]
    lo, hi = xs[n // 2 - 1], xs[n // 2]
    return math.inf if math.isinf(hi) else (lo + hi) / 2


def compare_seeds(groups: List[Tuple[str, List[Dict[str, Any]]]], labels: List[str],
                  rungs: Optional[List[int]] = None) -> str:
    """The same comparison repeated over study seeds (docs/tune.md section 8.2): groups are
    (name, one summary per seed), seed i of every group compared with seed i of the first. Prints
    each seed's table, then per study the median over seeds of both fractions (a seed where the
    study never reached the reference's best counts as an infinite fraction, so the median is
    "not reached" when half or more never did) and the number of seeds with at most half of the
    reference's budget. With rungs (steps of the resource, e.g. ASHA's), also the first study's
    rung_correlation at each, per seed and the median."""
    n = len(groups[0][1])
    parts, fracs = [], {name: [] for name, _ in groups}
    for i in range(n):
        rows = compare_rows([(name, sums[i]) for name, sums in groups])
        target = rows[0]["target"]
        parts.append(f"seed {labels[i]}: {groups[0][0]}'s best val "
                     f"{'none (no completed trial)' if target is None else f'{target:.4g}'}\n"
                     + compare([(name, sums[i]) for name, sums in groups]))
        for r in rows:
            fracs[r["name"]].append((math.inf if r["to_ref_best"] is None else r["to_ref_best"],
                                     math.inf if r["of_ref_budget"] is None
                                     else r["of_ref_budget"]))
    ref = groups[0][0]
    table = [["study", "seeds", f"median / {ref}'s steps to its best",
              f"median / {ref}'s budget", f"seeds at <= 0.50 of {ref}'s budget"]]
    for name, _ in groups:
        fs = fracs[name]
        table.append([name, str(n), _frac(_median([a for a, _ in fs])),
                      _frac(_median([b for _, b in fs])),
                      f"{sum(b <= 0.5 for _, b in fs)} of {n}"])
    parts.append(f"median over {n} seeds\n" + _table(table))
    if rungs:
        # Does an early val point rank the first study's trials as their values do? (With random
        # search and no pruner every trial runs to its end, so this is measured without bias.)
        rows = [["seed", "trials"] + [f"rho(step {r}, value)" for r in rungs]]
        per = {r: [] for r in rungs}
        for i in range(n):
            cells, trials = [labels[i]], 0
            for r in rungs:
                rho, k = rung_correlation(groups[0][1][i], r)
                trials = max(trials, k)  # a rung past every val point correlates none of them
                if rho is not None:
                    per[r].append(rho)
                cells.append("-" if rho is None else f"{rho:.2f}")
            cells.insert(1, str(trials))
            rows.append(cells)
        rows.append(["median", "-"] + ["-" if not per[r] else f"{_median(per[r]):.2f}"
                                       for r in rungs])
        parts.append(f"{ref}: Spearman rank correlation of the val {groups[0][1][0]['metric']} "
                     "at the first val point at or after each step with the trial's value\n"
                     + _table(rows))
    return "\n\n".join(parts)


def _ranks(xs: List[float]) -> List[float]:
    """1-based ranks, ties given their mean rank."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    r = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return r


def spearman(xs: List[float], ys: List[float]) -> Optional[float]:
    """Spearman's rank correlation (Pearson's on tie-averaged ranks); None when undefined."""
    if len(xs) != len(ys) or len(xs) < 3:
        return None
    rx, ry = _ranks(xs), _ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else None


def first_val_at(intermediate: List[Any], step: int) -> Optional[float]:
    """The val metric at a trial's first val point at or after `step` (its [step, value] pairs,
    in step order), or None when it has none there."""
    return next((v for k, v in intermediate if k >= step and v is not None), None)


def rung_correlation(summary: Dict[str, Any], step: int) -> Tuple[Optional[float], int]:
    """What successive halving relies on (docs/tune.md 8.2): over a search's COMPLETE trials, the
    rank correlation between the val metric at the first val point at or after `step` and the
    trial's value (its best val metric); returns it and the number of trials."""
    xs, ys = [], []
    for t in summary.get("trials", []):
        if t["state"] != "COMPLETE" or t["value"] is None:
            continue
        at = first_val_at(t["intermediate"], step)
        if at is not None:
            xs.append(at)
            ys.append(t["value"])
    return spearman(xs, ys), len(xs)


def plot_pbt(state: Dict[str, Any], space: Space, out_dir: str, metric: str) -> str:
    """One panel per numeric searched key and one for the score: each member's value at the end
    of every generation, with exploits drawn as jumps."""
    plt = _plt()
    keys = [d.name for d in space.dims if d.kind != "choice"]
    fig, axes = plt.subplots(len(keys) + 1, 1, figsize=(7, 2.2 * (len(keys) + 1)), sharex=True)
    axes = list(axes) if len(keys) else [axes]
    members = sorted({h["member"] for h in state["history"]})
    ready = state["signature"]["ready"]  # iterations (records before iter_start was kept)
    cmap = plt.get_cmap("tab10")
    for i, mid in enumerate(members):
        hs = [h for h in state["history"] if h["member"] == mid]
        x = [h["iter_end"] for h in hs]
        # each run as a flat segment over the iterations it trained with those values
        xs = [h.get("iter_start", h["iter_end"] - ready) for h in hs] + [x[-1]]
        for ax, k in zip(axes, keys):
            ys = [h["params"][k] for h in hs]
            ax.step(xs, ys + ys[-1:], where="post", color=cmap(i % 10), lw=1)
        axes[-1].plot(x, [h["score"] if h["score"] is not None else float("nan") for h in hs],
                      "-o", ms=2, color=cmap(i % 10), lw=1)
    for ax, k in zip(axes, keys):
        d = next(d for d in space.dims if d.name == k)
        if d.kind == "log-uniform" or d.log:
            ax.set_yscale("log")
        ax.set_ylabel(k, fontsize=8)
    axes[-1].set_ylabel(f"val {metric}", fontsize=8)
    axes[-1].set_xlabel("meta-iterations")
    axes[0].set_title("PBT schedule: hyperparameters per member")
    fig.tight_layout()
    path = os.path.join(out_dir, "pbt_schedule.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
