#!/usr/bin/env bash
# The one device script (docs/nn.md, "GPU check"): on a machine with an NVIDIA GPU, runs the cuda
# suite (every nn op against the double reference and the CPU backend, batched replicas against
# separate ones, graph replay against eager, a GPU checkpoint read on the CPU) and the CPU nn and
# target suites, compares the target policy's first updates on --device cuda with --device cpu on
# the same seeds and its checkpoint as a recarena-ab arm on both devices, then times training and
# the GPU benches with their budgets, and prints one summary table. Every log lands in one folder
# that can be copied back whole.
# Usage: bench/gpu_check.sh [--bundle DIR] [log-dir]   (log-dir: default $OUT, else build-gpu/logs)
#   --bundle DIR: run the binaries bench/gpu_bundle.sh packed on another machine (for a GPU
#   machine that cannot install this project's packages); without it, builds here with CUDA
#   (needs the packages of scripts/setup.sh). CUDA_ARCH overrides the architecture (90).
#   --list-binaries: print the binaries this script runs (for gpu_bundle.sh) and exit.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
binaries=(tests/nn/test_nn_cuda tests/nn/test_nn tests/nn/test_nn_ops tests/policies/test_target
          tests/policies/test_target_pop agents/recarena-target agents/recarena-meta
          agents/recarena-ab bench/bench_nn bench/bench_target)
bundle=""
case "${1:-}" in
  --list-binaries) printf '%s\n' "${binaries[@]}"; exit 0 ;;
  --bundle) bundle=$(cd "${2:?--bundle needs a folder}" && pwd) || exit 2; shift 2 ;;
esac
dir="$root/build-gpu"
logs="${1:-${OUT:-$dir/logs}}"
mkdir -p "$logs"
summary="$logs/summary.txt"
: >"$summary"
row () { printf '%-46s %-8s %s\n' "$1" "$2" "$3" | tee -a "$summary"; }
# tmo SECONDS CMD...: CMD under a time limit, so that one hang cannot eat the device session; the
# seconds each step took go to the log folder's times.txt
tmo () { local t0=$SECONDS lim=$1; shift; timeout --kill-after=5 "$lim" "$@"; local rc=$?
         echo "$(basename "$1") ${*:2:3}: $((SECONDS - t0)) s, exit $rc" >>"$logs/times.txt"; return $rc; }
# exe tests/nn/test_nn_cuda: that binary, from the bundle or the build folder
exe () { if [ -n "$bundle" ]; then echo "$bundle/bin/$(basename "$1")"; else echo "$dir/$1"; fi; }
status=0

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$logs/gpu.txt" 2>&1 || true
cat "$logs/gpu.txt"

if [ -n "$bundle" ]; then
  export LD_LIBRARY_PATH="$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  if "$(exe tests/nn/test_nn)" --list >/dev/null 2>"$logs/build.log"; then
    row "bundled binaries start" PASS "$bundle"
  else
    row "bundled binaries start" FAIL "see build.log; rerun without --bundle to build here"
    cat "$logs/build.log"
    exit 1
  fi
else
  echo "== build (CUDA on) -> $logs/build.log"
  if cmake -S "$root" -B "$dir" -DRA_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" \
       -DCMAKE_BUILD_TYPE=Release >"$logs/build.log" 2>&1 &&
     grep -q "CUDA backend ON" "$logs/build.log" &&
     cmake --build "$dir" -j "$(nproc)" >>"$logs/build.log" 2>&1; then
    row "build with CUDA" PASS ""
  else
    row "build with CUDA" FAIL "see build.log"
    tail -30 "$logs/build.log"
    exit 1
  fi
fi

echo "== suites: test_nn_cuda (GPU), then the CPU nn and target suites -> $logs/suite_*.log"
for t in tests/nn/test_nn_cuda tests/nn/test_nn tests/nn/test_nn_ops tests/policies/test_target \
         tests/policies/test_target_pop; do
  name=$(basename "$t")
  if tmo 150 "$(exe "$t")" --jobs 1 --verbose >"$logs/suite_$name.log" 2>&1; then
    row "$name" PASS "$(grep -E 'Synthesis' "$logs/suite_$name.log" | tail -1)"
  else
    row "$name" FAIL "$(grep -E 'Synthesis' "$logs/suite_$name.log" | tail -1); see suite_$name.log"
    status=1
  fi
done
grep -E "vs reference|vs cpu" "$logs/suite_test_nn_cuda.log" | tail -40

echo "== recarena-target: first updates on cuda vs cpu, same seeds -> $logs/target_*.jsonl"
# Tolerance: the first update sees identical slates (same counter-based draws, scores equal to
# ~1e-6), so its mean reward and entropy must agree to 1e-3 relative and its value loss and
# gradient norm to 1e-2 (the policy loss of normalised advantages is ~0, so no relative test
# fits it); later updates may pick
# other slates where two scores tie to float precision, so they are printed, not asserted.
targs=(--env ECommerce-v1 --num-envs 64 --rollout 16 --updates 5 --seed 7 --progress 1000)
ok=1
for dev in cpu cuda; do
  tmo 90 "$(exe agents/recarena-target)" "${targs[@]}" --device "$dev" --metrics "$logs/target_$dev.jsonl" \
    --checkpoint-out "$logs/target_$dev.safetensors" >"$logs/target_$dev.log" 2>&1 || ok=0
done
if [ $ok = 1 ]; then
  paste -d'\n' "$logs/target_cpu.jsonl" "$logs/target_cuda.jsonl" | awk '
    function num(line, key,   m) { if (match(line, "\"" key "\": -?[0-9.e+-]+")) { m = substr(line, RSTART, RLENGTH); sub(/.*: /, "", m); return m + 0 } return "nan" }
    function rel(a, b) { d = a - b; if (d < 0) d = -d; s = (a < 0 ? -a : a) + (b < 0 ? -b : b); return s > 0 ? 2 * d / s : 0 }
    NR % 2 == 1 { c = $0; next }
    { u++; r = rel(num(c, "mean_reward"), num($0, "mean_reward")); e = rel(num(c, "entropy"), num($0, "entropy"))
      v = rel(num(c, "value_loss"), num($0, "value_loss")); g = rel(num(c, "grad_norm"), num($0, "grad_norm"))
      printf "update %d: relative differences mean_reward %.2e, entropy %.2e, value_loss %.2e, grad_norm %.2e\n", u, r, e, v, g
      if (u == 1 && (r > 1e-3 || e > 1e-3 || v > 1e-2 || g > 1e-2)) bad = 1 }
    END { exit bad }' | tee "$logs/target_compare.txt"
  if [ "${PIPESTATUS[1]}" = 0 ]; then
    row "recarena-target cuda vs cpu (update 1)" PASS "$(head -1 "$logs/target_compare.txt")"
  else
    row "recarena-target cuda vs cpu (update 1)" FAIL "see target_compare.txt"
    status=1
  fi
else
  row "recarena-target cuda vs cpu" FAIL "a run failed; see target_*.log"
  status=1
fi

echo "== recarena-ab: the cpu run's checkpoint as an arm on cuda beside the same arm on cpu"
# The arms play the same users (common random numbers) from the same parameters. Frozen (lr=0)
# they sample the same slates but where two scores tie to float precision, so R@0, R@1 and R@5
# must agree to 1e-3 relative. Adapting, the first update's float differences pick other slates
# at near-ties and the runs drift apart like two seeds: printed with the paired auc difference,
# failed only if auc differs by more than 10%.
ckpt="$logs/target_cpu.safetensors"
ab_vs () {  # ab_vs NAME EXTRA-ARM-KEYS: both arms on test:0-7; prints "R@K rows|auc diff row|rel R@K|rel auc"
  local arms="target:checkpoint=$ckpt:device=cpu$2:name=cpu,target:checkpoint=$ckpt:device=cuda$2:name=cuda"
  [ -f "$ckpt" ] && tmo 120 "$(exe agents/recarena-ab)" --env ECommerce-v1 --task-ids test:0-7 --num-envs 32 \
    --episodes 6 --curve-episodes 0,1,5 --arms "$arms" --control cpu --json "$logs/ab_$1.json" \
    >"$logs/ab_$1.txt" 2>"$logs/ab_$1.log" &&
  awk '/^learning curve R@K/ { on = 1; next } on && NF == 0 { on = 0 }
    on && ($1 == "cpu" || $1 == "cuda") { for (i = 2; i <= NF; i++) v[$1, i] = $i; n = NF; line = line $1 " " $2 " " $3 " " $4 "; " }
    /^auc/ { a["cpu"] = $4 } $1 == "cuda" && a["cpu"] != "" && !("cuda" in a) { a["cuda"] = $2; diff = $5 " " $6 " " $7 }
    function rel(x, y) { return (x > y ? x - y : y - x) / (x > 0 ? x : -x) }
    END { m = 0; for (i = 2; i <= n; i++) if (rel(v["cpu", i], v["cuda", i]) > m) m = rel(v["cpu", i], v["cuda", i])
          printf "%s|auc cuda - cpu %s|%.2e|%.2e\n", line, diff, m, rel(a["cpu"], a["cuda"]) }' "$logs/ab_$1.txt"
}
if frozen=$(ab_vs cuda_frozen ":lr=0") && [ -n "$frozen" ]; then
  verdict=$(echo "$frozen" | awk -F'|' '{ print ($3 <= 1e-3 ? "PASS" : "FAIL") }')
  row "recarena-ab frozen arm cuda vs cpu (R@0,1,5)" "$verdict" "$(echo "$frozen" | awk -F'|' '{ print $1 "max rel " $3 }')"
  [ "$verdict" = PASS ] || status=1
else
  row "recarena-ab frozen arm cuda vs cpu" FAIL "no checkpoint or the run failed; see ab_cuda_frozen.log"
  status=1
fi
if adapt=$(ab_vs cuda_adapt "") && [ -n "$adapt" ]; then
  verdict=$(echo "$adapt" | awk -F'|' '{ print ($4 <= 0.1 ? "PASS" : "FAIL") }')
  row "recarena-ab adapting arm cuda vs cpu (R@0,1,5)" "$verdict" "$(echo "$adapt" | awk -F'|' '{ print $1 $2 }')"
  [ "$verdict" = PASS ] || status=1
else
  row "recarena-ab adapting arm cuda vs cpu" FAIL "the run failed; see ab_cuda_adapt.log"
  status=1
fi

echo "== recarena-target training: samples/s on cuda vs cpu (256 envs, 100 updates)"
for dev in cpu cuda; do
  tmo 120 "$(exe agents/recarena-target)" --env ECommerce-v1 --num-envs 256 --rollout 16 --updates 100 --seed 7 \
    --progress 1000 --device "$dev" --metrics "$logs/target_speed_$dev.jsonl" >"$logs/target_speed_$dev.log" 2>&1 ||
    status=1
done
# samples_per_s of the last update is the run's mean (env steps / elapsed)
last_sps () { tail -1 "$1" 2>/dev/null | sed -n 's/.*"samples_per_s": \([0-9.e+]*\).*/\1/p'; }
c=$(last_sps "$logs/target_speed_cpu.jsonl"); g=$(last_sps "$logs/target_speed_cuda.jsonl")
row "recarena-target 256 envs cuda/cpu samples/s" "" \
  "$( [ -n "$c" ] && [ -n "$g" ] && awk -v c="$c" -v g="$g" 'BEGIN { printf "%.2f x (cpu %s, cuda %s)", g / c, c, g }' ||
      echo "no metrics; see target_speed_*.log")"

echo "== bench_nn (budgets: population >= 0.40 of cuBLAS, graph >= 1.5x eager, scorer graph <= 150 us)"
tmo 150 "$(exe bench/bench_nn)" --repeats 11 --check >"$logs/bench_nn.log" 2>&1
rc=$?
cat "$logs/bench_nn.log"
grep -E "budget|\(TF32\)" "$logs/bench_nn.log" | sed 's/  */ /g' | while read -r line; do row "bench_nn" "" "$line"; done
[ $rc = 0 ] || status=1
# Nsight Compute, where installed (it is on the lent H200 machines; nsys is not):
# kernel_times NAME NCU-ARGS -- CMD...: per-kernel GPU time of CMD's profiled launches, summed by
# kernel name, into NAME.csv (raw) and NAME.txt (the summary, also printed). The profiler runs each
# kernel alone at base clock with cold caches, so its times exceed a timed run's.
ncu=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
kernel_times () {
  local name=$1; shift
  tmo 150 "$ncu" --metrics gpu__time_duration.sum --csv --print-units base --print-kernel-base function "$@" \
    >"$logs/$name.csv" 2>&1
  awk -F'","' '/gpu__time_duration/ { gsub(/"/, "", $NF); gsub(/,/, "", $NF); t[$5] += $NF; c[$5]++ }
    END { for (k in t) printf "%10.1f us %4d x  %s\n", t[k] / 1e3, c[k], k }' "$logs/$name.csv" |
    sort -rn | tee "$logs/$name.txt" | head -20
}
if [ -n "$ncu" ]; then  # the scorer update's kernels (its first eager steps), for the budget above
  kernel_times ncu_scorer --launch-count 80 "$(exe bench/bench_nn)" --gpu-scorer --repeats 1
fi

echo "== bench_target: P = 64 replicas batched vs 64 separate policies, on the GPU and the CPU"
for dev in cuda cpu; do
  tmo 120 "$(exe bench/bench_target)" --parts 3 --repeats 5 --device "$dev" >"$logs/bench_target_$dev.log" 2>&1 || status=1
  cat "$logs/bench_target_$dev.log"
  line=$(grep "ratio batched" "$logs/bench_target_$dev.log" | sed 's/  */ /g')
  row "bench_target P=64 batched/separate ($dev)" "" "${line:-no result; see bench_target_$dev.log}"
done

meta="$(exe agents/recarena-meta)"
if [ -x "$meta" ]; then
  echo "== recarena-meta --algo es, P = 64: cuda vs cpu samples/s on this machine"
  for dev in cpu cuda; do
    tmo 150 "$meta" --env ECommerce-v1 --algo es --population 64 --iters 9 --val-every 1000 --seed 3 \
      --device "$dev" --metrics "$logs/meta_es_$dev.jsonl" --quiet >"$logs/meta_es_$dev.log" 2>&1 || status=1
  done
  # the median samples/s over the iterations after the first (which pays for warm-up)
  # iter_shares JSONL LABEL: where each iteration's time goes: env_s (stepping the envs) and act_s
  # (the policy's act: scoring, sampling, uploads, device waits) of iter_s
  iter_shares () {
    local share
    share=$(grep '"kind":"train"' "$1" 2>/dev/null | tail -4 |
      sed 's/.*"iter_s":\([0-9.e+-]*\),"env_s":\([0-9.e+-]*\),"act_s":\([0-9.e+-]*\).*/\1 \2 \3/' |
      awk '{ printf "iter %.3f s: env %.0f%%, act %.0f%%; ", $1, 100 * $2 / $1, 100 * $3 / $1 }')
    row "$2" "" "${share:-no iter_s in the metrics}"
  }
  sps () { grep '"kind":"train"' "$1" 2>/dev/null | tail -n +2 | sed 's/.*"samples_per_s":\([0-9.e+]*\).*/\1/' |
           sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
  c=$(sps "$logs/meta_es_cpu.jsonl"); g=$(sps "$logs/meta_es_cuda.jsonl")
  if [ -n "$c" ] && [ -n "$g" ]; then
    ratio=$(awk -v c="$c" -v g="$g" 'BEGIN { printf "%.2f", g / c }')
    verdict=$(awk -v r="$ratio" 'BEGIN { print (r >= 3 ? "PASS" : "FAIL") }')
    row "recarena-meta es P=64 cuda/cpu samples/s" "$verdict" "$ratio x (cpu $c, cuda $g; budget >= 3x)"
    for dev in cpu cuda; do iter_shares "$logs/meta_es_$dev.jsonl" "recarena-meta es P=64 ($dev) per iteration"; done
  else
    row "recarena-meta es P=64 cuda/cpu samples/s" FAIL "no train metrics; see meta_es_*.log"
    status=1
  fi
  # env stepping is most of a cuda iteration: the same run with more threads stepping the sims
  # (--workers; results do not depend on it, docs/meta.md 4)
  for w in 4 8; do
    tmo 150 "$meta" --env ECommerce-v1 --algo es --population 64 --iters 9 --val-every 1000 --seed 3 \
      --device cuda --workers "$w" --metrics "$logs/meta_es_cuda_w$w.jsonl" --quiet >"$logs/meta_es_cuda_w$w.log" 2>&1 ||
      status=1
    gw=$(sps "$logs/meta_es_cuda_w$w.jsonl")
    row "recarena-meta es P=64 cuda --workers $w" "" \
      "$( [ -n "$gw" ] && [ -n "$g" ] && awk -v w="$gw" -v g="$g" 'BEGIN { printf "%s samples/s, %.2f x --workers 1", w, w / g }' ||
          echo "no metrics; see meta_es_cuda_w$w.log")"
    iter_shares "$logs/meta_es_cuda_w$w.jsonl" "recarena-meta es P=64 (cuda, --workers $w) per iteration"
  done
  if [ -n "$ncu" ]; then  # kernel times inside an ES iteration (300 kernels after the first 3000)
    kernel_times ncu_es --launch-skip 3000 --launch-count 300 "$meta" --env ECommerce-v1 --algo es \
      --population 64 --iters 2 --val-every 1000 --seed 3 --device cuda --quiet
  fi
else
  row "recarena-meta es P=64 cuda/cpu" SKIP "recarena-meta is not built in this tree"
fi

echo
cat "$logs/times.txt"
echo "== summary ($summary)"
cat "$summary"
echo "gpu_check: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
exit $status
