#!/bin/sh
# bench/meta_bar.sh on all four sims at a smoke size: every sim's recipe (its recarena-meta flags and
# arm keys) still runs against today's binaries, and each sim's bar.txt holds the line-2 table
# (R@0, R@1, R@5 against multitask_ctx), the four line-3 comparisons, the three verdicts and the
# difference along the curve, and the plots (meta-training, learning curves, that difference) exist;
# the settings grids play CHOOSE_VAL's tasks.
# The figures at this size are noise; docs/meta.md 6.63 has a full read.
# usage: meta_bar.sh BUILD_DIR SOURCE_DIR      (skipped, 77, without the virtual environment)
set -eu
build=$1 src=$2
[ -x "$src/.venv/bin/python" ] || { echo "skipped: no $src/.venv (scripts/setup.sh)"; exit 77; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
BUILD=$build BUDGET=20000 TEST=test:0-3 VAL=val:0-1 CHOOSE_VAL=val:2-3 EPISODES=8 NUM_ENVS=4 TEMPS="1 0.05" ROLLOUTS="16 4" LRS="1e-2 0" \
  "$src/bench/meta_bar.sh" "$out" >"$out/log" 2>&1 || { tail -20 "$out/log"; echo "FAIL: meta_bar.sh exited non-zero"; exit 1; }
for sim in ECommerce-v1 Ads-v1 News-v1 Content-v1; do
  bar=$out/$sim/bar.txt
  [ -f "$bar" ] || { echo "FAIL: no $bar"; exit 1; }
  for m in R@0 R@1 R@5; do
    grep -q "^reptile  *$m  " "$bar" || { cat "$bar"; echo "FAIL: $sim: no reptile row at $m"; exit 1; }
  done
  for base in multitask_ctx scratch_ctx scratch linucb metats; do
    grep -q "diff vs $base " "$bar" || { cat "$bar"; echo "FAIL: $sim: no comparison against $base"; exit 1; }
  done
  for png in meta_training.png plots_test/learning_curves.png ab_test_curve_multitask_ctx.png; do
    head -c 8 "$out/$sim/$png" 2>/dev/null | grep -q PNG || { echo "FAIL: $sim: no plot $png"; exit 1; }
  done
  grids=$("$src/.venv/bin/python" -c 'import json, sys; print(sorted({t for f in sys.argv[1:] for t in json.load(open(f))["task_ids"]}))' \
    "$out/$sim"/ab_val_*.json)
  [ "$grids" = "[2, 3]" ] || { echo "FAIL: $sim: the grids played val tasks $grids, not CHOOSE_VAL's [2, 3]"; exit 1; }
  grep -q "^along the curve" "$bar" || { cat "$bar"; echo "FAIL: $sim: no curve of reptile - multitask_ctx"; exit 1; }
  for line in "line 2 " "line 3 " "no R@K below R@0 "; do
    grep -Eq "^$line.*: (met|not met)$" "$bar" || { cat "$bar"; echo "FAIL: $sim: no verdict for '$line'"; exit 1; }
  done
done
echo "PASS: bench/meta_bar.sh ran every sim's recipe"
