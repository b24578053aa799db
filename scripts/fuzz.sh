#!/usr/bin/env bash
# Builds the decoder's libFuzzer harness with clang (the protocol library instrumented too) and
# fuzzes it. Usage: scripts/fuzz.sh [runs] (default 200000; about a minute on one core).
# Needs clang (scripts/setup.sh installs it); without it this says so and exits 0.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs="${1:-200000}"
if ! command -v clang >/dev/null; then
  echo "fuzz: clang not found; skipping (apt-get install clang to fuzz)"
  exit 0
fi
dir="$root/build-fuzz"
mkdir -p "$dir"
cmake -S "$root" -B "$dir" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DRA_FUZZ=ON -DRA_WITH_CUDA=OFF >"$dir/configure.log" 2>&1 || { cat "$dir/configure.log" >&2; exit 1; }
cmake --build "$dir" --target fuzz_decode -j "$(nproc)"
corpus="$dir/corpus"
mkdir -p "$corpus"
# Seed with the golden messages, so the fuzzer starts from valid requests and replies.
for f in "$root"/tests/data/golden/*.frames; do
  [ -f "$f" ] && cp -n "$f" "$corpus/" || true
done
"$dir/tests/protocol/fuzz_decode" -runs="$runs" -max_len=65536 -rss_limit_mb=1024 "$corpus"
