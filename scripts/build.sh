#!/usr/bin/env bash
# Configures and builds recarena. Usage: scripts/build.sh [build-dir] [extra cmake args...]
# Default build dir: build. Example: scripts/build.sh build-asan -DRA_SANITIZE=ON
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="${1:-$root/build}"
shift || true
log="$dir/configure.log"
mkdir -p "$dir"
if ! cmake -S "$root" -B "$dir" "$@" >"$log" 2>&1; then
  cat "$log" >&2
  exit 1
fi
grep -- "-- recarena:" "$log" || true
cmake --build "$dir" -j "$(nproc)"
