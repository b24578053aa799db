#!/usr/bin/env bash
# Installs everything recarena needs on a fresh Debian machine, idempotently: the apt packages,
# then the Python virtual environment in .venv. Quick (a few seconds) when already done.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

apt_packages=(build-essential cmake pkg-config git
              libzmq3-dev libmsgpack-dev libopenblas-dev libcriterion-dev libcjson-dev
              clang libclang-rt-dev                 # the decoder's fuzz run in CI
              python3 python3-venv python3-pip
              libopenmpi-dev openmpi-bin)           # MPI: optional at build time, used by agents/dist
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Python side: one virtual environment for the client package and its tests.
venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv"
  python3 -m venv "$venv"
fi
req="$root/scripts/requirements.txt"
stamp="$venv/.requirements.stamp"
if [ -f "$req" ] && { [ ! -f "$stamp" ] || ! cmp -s "$req" "$stamp"; }; then
  echo "setup: installing Python packages"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -r "$req"
  cp "$req" "$stamp"
fi
if [ -f "$root/clients/python/pyproject.toml" ]; then
  # Editable install: cheap to repeat, and picks up new modules without reinstalling. Its
  # setuptools warnings are noise on every run; on failure, run it again to show why.
  pip_editable=("$venv/bin/python" -m pip install -q --no-deps --no-build-isolation -e "$root/clients/python")
  "${pip_editable[@]}" >/dev/null 2>&1 || "${pip_editable[@]}"
fi
echo "setup: ok"
