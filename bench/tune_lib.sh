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

# ES's searched keys (docs/tune.md 8.7): population size, sigma and Adam lr, with ranges wide
# enough that ES's defaults (32, 0.02, 1e-2) sit inside them.
es_searched_keys () {
  cat <<'EOS'
[population]
type = "choice"
values = [8, 16, 32, 64]
[sigma]
type = "log-uniform"
low = 0.005
high = 0.2
[outer-lr]
type = "log-uniform"
low = 1e-3
high = 0.2
EOS
}

# es_asha_flags TRIAL_STEPS: ASHA's rungs in env steps for ES (a meta-iteration costs P x 800 env
# steps, so iterations are not one resource across populations), the first at an eighth of a
# trial: in two 2M-step probes on ECommerce-v1's val the curves had not left the
# initialisation's noise before about 250k.
es_asha_flags () {
  echo "--resource steps --min-resource $(($1 / 8))"
}
