#!/usr/bin/env bash
# Prepares a GPU check for a machine that cannot install this project's packages (the lent GPU
# machines reach no package registry): builds the CUDA binaries here and packs them, with the
# shared libraries they load except glibc, the C++ runtime and CUDA's own (the GPU machine has
# those), into .gpu-bundle/ (git-ignored through .git/info/exclude). Then, on the GPU machine:
#   bench/gpu_check.sh --bundle .gpu-bundle      (carry .gpu-bundle with the working tree)
# If the bundled binaries do not start there (another glibc), gpu_check.sh without --bundle
# builds on that machine instead, which needs the packages of scripts/setup.sh.
# Usage: bench/gpu_bundle.sh   (CUDA_ARCH overrides the architecture, 90: H100/H200)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/build-gpu"
out="$root/.gpu-bundle"
mkdir -p "$dir"
cmake -S "$root" -B "$dir" -DRA_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" \
  -DCMAKE_BUILD_TYPE=Release >"$dir/configure.log" 2>&1 || { cat "$dir/configure.log"; exit 1; }
grep -q "CUDA backend ON" "$dir/configure.log" || { echo "gpu_bundle: no CUDA compiler found" >&2; exit 1; }
cmake --build "$dir" -j "$(nproc)"
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib"
for b in $(bash "$root/bench/gpu_check.sh" --list-binaries); do
  [ -x "$dir/$b" ] && cp "$dir/$b" "$out/bin/"
done
ldd "$out"/bin/* | awk '/=> \// { print $3 }' | sort -u |
  grep -v -E '/(libc|libm|libpthread|libdl|librt|libresolv|libstdc\+\+|libgcc_s|libcublas|libcublasLt|libcudart)\.so' |
  while read -r lib; do cp -L "$lib" "$out/lib/"; done
exclude=$(git -C "$root" rev-parse --git-path info/exclude)
grep -qx '/.gpu-bundle/' "$exclude" 2>/dev/null || echo '/.gpu-bundle/' >>"$exclude"
echo "gpu_bundle: $(ls "$out/bin" | wc -l) binaries, $(ls "$out/lib" | wc -l) libraries, $(du -sh "$out" | cut -f1) in $out"
