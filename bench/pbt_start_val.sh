#!/usr/bin/env bash
# What skipping a continued run's first val point saves PBT (docs/tune.md 5): the same small ES PBT
# (4 members x 500k env steps on ECommerce-v1, ES's space of docs/tune.md 8.7, generations of 125k
# env steps, val:0-15) twice, once with recarena-tune's default (a member continuing its checkpoint
# runs with --val-at-start false) and once with the space fixing val-at-start = true. Validation
# changes no training state, so both must give the same scores; the table shows the member-seconds
# of each (the sum of every run's wall time; medians over REPEATS pairs, run alternately).
# Usage: bench/pbt_start_val.sh [OUT=out/pbt-start-val] [REPEATS=3]
set -euo pipefail
. "$(dirname "$0")/tune_lib.sh"
out="${1:-$root/out/pbt-start-val}"
repeats="${2:-3}"
mkdir -p "$out"
space () {  # $1: extra fixed lines
  printf 'env = "ECommerce-v1"\nalgo = "es"\niters = 100000\nval-every = 5\nval-tasks = "val:0-15"\n%s\n\n%s\n' \
    "$1" "$(es_searched_keys)"
}
space "" > "$out/skip.toml"
space 'val-at-start = "true"' > "$out/every.toml"
for r in $(seq 1 "$repeats"); do
  for v in skip every; do
    rm -rf "$out/$v.$r"
    "${tune[@]}" pbt --space "$out/$v.toml" --meta-bin "$meta" --seed 1 --population 4 \
      --lineage-steps 500000 --ready-unit steps --ready 125000 --generations 1000 \
      --out "$out/$v.$r" > /dev/null
  done
done
python3 - "$out" "$repeats" <<'EOF'
import json, statistics, sys
out, repeats = sys.argv[1], int(sys.argv[2])
def load(v, r):
    h = json.load(open(f"{out}/{v}.{r}/pbt_state.json"))["history"]
    return [x["score"] for x in h], sum(x["wall_s"] for x in h)
rows = {v: [load(v, r) for r in range(1, repeats + 1)] for v in ("skip", "every")}
same = all(a[0] == b[0] for a, b in zip(rows["skip"], rows["every"]))
med = {v: statistics.median(w for _, w in rows[v]) for v in rows}
print(f"{'variant':<34}{'member-seconds (median)':>26}{'ratio':>8}")
print(f"{'val-at-start true (every run)':<34}{med['every']:>26.1f}{1.0:>8.2f}")
print(f"{'val-at-start false (continuing)':<34}{med['skip']:>26.1f}{med['skip'] / med['every']:>8.2f}")
print(f"scores identical in every pair: {'yes' if same else 'NO'}")
sys.exit(0 if same else 1)
EOF
