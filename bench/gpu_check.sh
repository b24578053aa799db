#!/usr/bin/env bash
# One-shot GPU check for agents/nn, for a session with a lent GPU: configure and build with CUDA,
# run the cuda-labelled suites (cuda vs reference and vs cpu: 1e-5 relative on random inputs;
# graph replay == eager), the CPU nn suite, then bench_nn with its budgets. Prints everything.
# Usage: bench/gpu_check.sh [build-dir]   (default build-gpu; CUDA_ARCH overrides the arch, 90)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="${1:-$root/build-gpu}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || echo "nvidia-smi unavailable"
cmake -S "$root" -B "$dir" -DRA_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" \
  -DCMAKE_BUILD_TYPE=Release | grep -E "recarena|Error" || true
cmake --build "$dir" -j "$(nproc)" --target ra_nn test_nn test_nn_cuda bench_nn nn_checkpoint_demo || exit 1
status=0
echo "== ctest (label cuda, plus the cpu nn suite)"
(cd "$dir" && ctest --output-on-failure -R '^test_nn' ) || status=1
echo "== test_nn_cuda --verbose (per-op errors)"
"$dir/tests/nn/test_nn_cuda" --jobs 1 --verbose 2>&1 | grep -E "vs reference|vs cpu|Synthesis" || status=1
echo "== bench_nn"
"$dir/bench/bench_nn" --repeats 11 --check || status=1
echo "gpu_check: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
exit $status
