#!/usr/bin/env bash
# tests/cli/docs_flags.sh - docs that match the code, both ways: every --flag a command's --help
# prints must be named in its documentation, and every --flag its documentation's flag tables list
# must be one the command's --help prints.
#
#   usage: docs_flags.sh [--usage-only] DOC[#HEADING]... -- COMMAND [ARGS...] [-- COMMAND [ARGS...]]...
#
# Runs each COMMAND ARGS --help, takes each --flag token of what it prints (with --usage-only, of
# its first paragraph only: argparse's usage lists every option, and its help texts may name other
# commands' flags, as recarena-tune eval's names recarena-ab's), and looks for it as a whole word
# (--env does not count for --envs-per-task) in the docs: each DOC whole, or with #HEADING only
# the section under the heading that starts with HEADING, down to the next heading of the same or
# a higher level. Every flag missing from all of them is one FAIL line naming the command, the
# flag and the docs.
#
# The other way only the first cells of table rows count (lines starting with '|'): a flag table's
# first column is the documentation's list of the command's flags, while prose and the other cells
# legitimately name other commands' flags (the A/B harness's section names recarena.compare's
# --against, the target's table recarena-meta's --adapt-params). Every --flag of a first cell that
# no COMMAND's --help prints is one FAIL line naming the doc, the section and the flag. Several
# COMMANDs are the subcommands that one section documents in one table (recarena-tune's), where a
# row need only be some subcommand's: its label says whose in words ("search: --study ...").
#
# Exit 1 if any FAIL. The C binaries are registered in tests/cli/CMakeLists.txt, the Python
# command lines by tests/python/test_docs_flags.py.
set -u
usage="usage: docs_flags.sh [--usage-only] DOC[#HEADING]... -- COMMAND [ARGS...] [-- COMMAND [ARGS...]]..."
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
  echo "$usage" >&2
  exit 2
fi
shift

# allowed NAME FLAG: flags NAME's --help prints that the docs need not name, each with its reason.
allowed ()
{
  case "$2" in
    --help) return 0 ;;   # every command takes it (argparse adds it to every parser)
  esac
  case "$1 $2" in
    "recarena-meta --flag") return 0 ;;   # the usage line's placeholder, "[--flag value ...]"
  esac
  return 1
}

# flags_in: the --flag tokens of stdin, each once, sorted.
flags_in ()
{
  grep -oE -- '(^|[^A-Za-z0-9_-])--[a-z0-9][a-z0-9-]*' | sed 's/^[^-]*//' | sort -u
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

# first_cells: the first cell of every table row of stdin. '\|' is a '|' inside a cell
# ("--sampler tpe\|random"); lines inside ``` fences are code, never a table.
first_cells ()
{
  awk '/^```/          { fence = !fence; next }
       !fence && /^\|/ { gsub(/\\\|/, ""); split($0, cell, "|"); print cell[2] }'
}

# where DOC#HEADING: the doc as a FAIL line names it.
where ()
{
  if [ "${1%%#*}" = "$1" ]; then echo "$1"; else echo "${1%%#*} (section '${1#*#}')"; fi
}

text=""
docs_named=""
for d in "${docs[@]}"; do
  part=$(section "$d") || exit 1
  if [ -z "$part" ]; then
    echo "FAIL: no heading starting '${d#*#}' in ${d%%#*}"
    exit 1
  fi
  text+="$part"$'\n'
  docs_named+="${docs_named:+, }$(where "$d")"
done

# check COMMAND [ARGS...]: each flag its --help prints must be named in the docs; the flags are
# added to printed, what the table rows are checked against.
fails=0
printed=""
check ()
{
  local name help rc f flags missing=0
  name="$(basename "$1")${2:+ ${*:2}}"
  help=$("$@" --help 2>&1)
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "FAIL: $name --help: exit $rc: $(head -c 300 <<<"$help")"
    fails=$((fails + 1))
    return
  fi
  [ $usage_only = 1 ] && help=$(awk 'NF == 0 { exit } { print }' <<<"$help")
  mapfile -t flags < <(flags_in <<<"$help")
  if [ ${#flags[@]} -eq 0 ]; then
    echo "FAIL: $name --help printed no --flag"
    fails=$((fails + 1))
    return
  fi
  for f in "${flags[@]}"; do
    printed+="$f"$'\n'
    allowed "$name" "$f" && continue
    if ! grep -qE -- "(^|[^A-Za-z0-9_-])$f([^A-Za-z0-9_-]|\$)" <<<"$text"; then
      echo "FAIL: $name --help prints $f, which is not named in $docs_named"
      missing=$((missing + 1))
    fi
  done
  echo "$name: ${#flags[@]} flags in --help, $missing missing from the docs"
  fails=$((fails + missing))
}

cmd=()
for a in "$@" --; do
  if [ "$a" != -- ]; then
    cmd+=("$a")
  elif [ ${#cmd[@]} -eq 0 ]; then
    echo "$usage" >&2
    exit 2
  else
    check "${cmd[@]}"
    cmd=()
  fi
done

# The other way, section by section, so that a FAIL line names where the row is.
for d in "${docs[@]}"; do
  mapfile -t rows < <(section "$d" | first_cells | flags_in)
  unknown=0
  for f in "${rows[@]}"; do
    if ! grep -qxF -- "$f" <<<"$printed"; then
      echo "FAIL: $(where "$d") has a table row for $f, which no --help prints"
      unknown=$((unknown + 1))
    fi
  done
  echo "$(where "$d"): ${#rows[@]} flags in its tables' first cells, $unknown not printed"
  fails=$((fails + unknown))
done
[ $fails -eq 0 ]
