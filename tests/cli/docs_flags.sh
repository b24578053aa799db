#!/usr/bin/env bash
# tests/cli/docs_flags.sh - docs that match the code: every --flag a command's --help prints must
# be named in its documentation.
#
#   usage: docs_flags.sh [--usage-only] DOC[#HEADING]... -- COMMAND [ARGS...]
#
# Runs COMMAND ARGS --help, takes each --flag token of what it prints (with --usage-only, of its
# first paragraph only: argparse's usage lists every option, and its help texts may name other
# commands' flags, as recarena-tune eval's names recarena-ab's), and looks for it as a whole
# word (--env does not count for --envs-per-task) in the docs: each DOC whole, or with #HEADING
# only the section under the heading that starts with HEADING, down to the next heading of the
# same or a higher level. Every flag missing from all of them is one FAIL line naming the flag and
# the docs; exit 1 if any. The C binaries are registered in tests/cli/CMakeLists.txt, the Python
# command lines by tests/python/test_docs_flags.py.
set -u
usage_only=0
if [ "${1:-}" = --usage-only ]; then
  usage_only=1
  shift
fi
docs=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  docs+=("$1")
  shift
done
if [ $# -lt 2 ] || [ ${#docs[@]} -eq 0 ]; then
  echo "usage: docs_flags.sh [--usage-only] DOC[#HEADING]... -- COMMAND [ARGS...]" >&2
  exit 2
fi
shift
name="$(basename "$1")${2:+ ${*:2}}"

# allowed FLAG: flags --help prints that the docs need not name, each with its reason.
allowed ()
{
  case "$1" in
    --help) return 0 ;;   # every command takes it (argparse adds it to every parser)
  esac
  case "$name $1" in
    "recarena-meta --flag") return 0 ;;   # the usage line's placeholder, "[--flag value ...]"
  esac
  return 1
}

# section DOC#HEADING: the text to search (a whole file without #HEADING). Lines inside ```
# fences are never headings (shell comments start with '#').
section ()
{
  local file="${1%%#*}" heading=""
  [ "$file" != "$1" ] && heading="${1#*#}"
  if [ ! -r "$file" ]; then
    echo "docs_flags.sh: cannot read $file" >&2
    return 1
  fi
  awk -v h="$heading" '
    h == ""     { print; next }
    /^```/      { fence = !fence }
    !fence && /^#+ / {
      lvl = match($0, /[^#]/) - 1
      if (on && lvl <= level) on = 0
      if (!on && index(substr($0, lvl + 2), h) == 1) { on = 1; level = lvl }
    }
    on          { print }' "$file"
}

help=$("$@" --help 2>&1)
rc=$?
if [ $rc -ne 0 ]; then
  echo "FAIL: $name --help: exit $rc: $(head -c 300 <<<"$help")"
  exit 1
fi
[ $usage_only = 1 ] && help=$(awk 'NF == 0 { exit } { print }' <<<"$help")
mapfile -t flags < <(grep -oE -- '(^|[^A-Za-z0-9_-])--[a-z0-9][a-z0-9-]*' <<<"$help" \
                     | sed 's/^[^-]*//' | sort -u)
if [ ${#flags[@]} -eq 0 ]; then
  echo "FAIL: $name --help printed no --flag"
  exit 1
fi

text=""
for d in "${docs[@]}"; do
  part=$(section "$d") || exit 1
  if [ -z "$part" ]; then
    echo "FAIL: $name: no heading starting '${d#*#}' in ${d%%#*}"
    exit 1
  fi
  text+="$part"$'\n'
done

where=""
for d in "${docs[@]}"; do
  where+="${where:+, }${d%%#*}"
  [ "${d%%#*}" != "$d" ] && where+=" (section '${d#*#}')"
done
missing=0
for f in "${flags[@]}"; do
  allowed "$f" && continue
  if ! grep -qE -- "(^|[^A-Za-z0-9_-])$f([^A-Za-z0-9_-]|\$)" <<<"$text"; then
    echo "FAIL: $name --help prints $f, which is not named in $where"
    missing=$((missing + 1))
  fi
done
echo "$name: ${#flags[@]} flags in --help, $missing missing from the docs"
[ $missing -eq 0 ]
