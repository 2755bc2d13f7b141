# What the benchmark scripts in tests/bench/ share (sourced, not run).

# bench_write_section DOC TITLE FILE: FILE's text (a "## TITLE" section)
# replaces that section of DOC -- up to the next "## " heading -- or, when
# DOC has none, is appended; DOC is created with its heading if missing.
# Other sections are left as they are.
bench_write_section() {
  local doc=$1 title=$2 section=$3 tmp
  mkdir -p "$(dirname "$doc")"
  if [ ! -f "$doc" ]; then
    printf '# Benchmarks\n\nFigures measured by the scripts in tests/bench/;\neach section says how it was produced.\n' >"$doc"
  fi
  tmp=$(mktemp)
  awk -v sect="$section" -v title="## $title" '
    BEGIN { while ((getline l < sect) > 0) text = text l "\n" }
    { line = $0; sub(/[[:space:]]+$/, "", line) }
    line == title { printf "%s", text; skip = 1; done = 1; next }
    skip && /^## / { skip = 0; print "" }
    !skip { print }
    END { if (!done) printf "\n%s", text }
  ' "$doc" >"$tmp"
  cat "$tmp" >"$doc"
  rm -f "$tmp"
}

# The scripts' Python (their drivers and reports) imports benchlib.py from
# here.
BENCH_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PYTHONPATH="$BENCH_LIB_DIR${PYTHONPATH:+:$PYTHONPATH}"
