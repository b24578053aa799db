#!/usr/bin/env bash
# Configures and builds recarena. Usage: scripts/build.sh [build-dir] [extra cmake args...]
# Default build dir: build. Example: scripts/build.sh build-asan -DRA_SANITIZE=ON
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="${1:-$root/build}"
shift || true
cmake -S "$root" -B "$dir" "$@" >/dev/null
cmake --build "$dir" -j "$(nproc)"
