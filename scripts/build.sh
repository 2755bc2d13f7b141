#!/usr/bin/env bash
# Installs the dependencies (scripts/deps.sh) and builds parley into DIR
# (default build/) with any extra CMake arguments. Prints nothing but
# progress on stderr; safe to run again (incremental).
#   scripts/build.sh [DIR] [cmake args...]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${1:-$ROOT/build}
shift || true
PREFIX=$("$ROOT/scripts/deps.sh" | tail -n 1)
cmake -S "$ROOT" -B "$DIR" -DPARLEY_DEPS_PREFIX="$PREFIX" "$@" >&2
cmake --build "$DIR" -j"$(nproc)" >&2
