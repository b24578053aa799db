# Shared by the recarena-tune benches (bench/tune_compare.sh, bench/asha_vs_random.sh): where the
# binaries are, how recarena-tune is invoked, and one search study. Sourced, not run; it owns no
# state beyond the variables it sets (root, build, meta, tune).
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="${RECARENA_BUILD_DIR:-$root/build}"
meta="$build/agents/recarena-meta"
tune=("$root/.venv/bin/python" -m recarena.tune)
export PYTHONPATH="$root/clients/python${PYTHONPATH:+:$PYTHONPATH}"

tune_step () {  # a progress line on stderr, with the time of day
  echo "== $1 ($(date +%H:%M:%S))" >&2
}

# tune_search SPACE OUT SEED BUDGET SAMPLER PRUNER [more recarena-tune search flags]
# One study, trials one at a time (the same seed then gives the same sequence of trials), as many
# as BUDGET env steps allow; its table goes to OUT.txt. Resumable: rerunning it continues the study.
tune_search () {
  local space="$1" out="$2" seed="$3" budget="$4" sampler="$5" pruner="$6"
  shift 6
  "${tune[@]}" search --space "$space" --budget "$budget" --meta-bin "$meta" --seed "$seed" \
    --parallel 1 --sampler "$sampler" --pruner "$pruner" --trials 1000 --out "$out" "$@" > "$out.txt"
}
