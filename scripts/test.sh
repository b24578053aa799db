#!/usr/bin/env bash
# Sets up, builds and runs every test: the Criterion suites through ctest, then the pytest suite.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" "$root/build"
(cd "$root/build" && ctest --output-on-failure -j 2 -LE cuda)
if [ -d "$root/tests/python" ]; then
  RECARENA_SERVER="$root/build/env/server/recarena-server" \
    "$root/.venv/bin/python" -m pytest -q "$root/tests/python"
fi
