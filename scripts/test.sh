#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what is
# needed, then
#   1. checks formatting against .clang-format,
#   2. builds with -Werror and runs every test (ctest),
#   3. builds with AddressSanitizer + UndefinedBehaviorSanitizer and runs
#      every test again,
#   4. builds the libFuzzer targets with clang and runs each for
#      PARLEY_FUZZ_SECONDS (default 15) seconds.
# Exits non-zero on the first failure.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
FUZZ_SECONDS=${PARLEY_FUZZ_SECONDS:-15}
step() { printf '\n=== %s ===\n' "$*"; }

step "dependencies"
"$ROOT/scripts/deps.sh" >/dev/null

step "format check (clang-format)"
mapfile -t files < <(git ls-files '*.c' '*.h' '*.cpp' 2>/dev/null ||
  find src tools tests -name '*.[ch]' -o -name '*.cpp')
clang-format --dry-run --Werror "${files[@]}"

step "build (-Wall -Wextra -Werror)"
"$ROOT/scripts/build.sh" "$ROOT/build"
step "tests"
ctest --test-dir "$ROOT/build" --output-on-failure

step "build (ASan + UBSan)"
"$ROOT/scripts/build.sh" "$ROOT/build-asan" -DPARLEY_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
step "tests under ASan + UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir "$ROOT/build-asan" --output-on-failure

step "fuzz targets (${FUZZ_SECONDS}s each)"
"$ROOT/scripts/build.sh" "$ROOT/build-fuzz" -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DPARLEY_FUZZ=ON -DBUILD_TESTING=OFF
for f in "$ROOT"/build-fuzz/tests/fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f")
  corpus="$ROOT/build-fuzz/corpus/$name"
  mkdir -p "$corpus"
  # Seeds kept in the tree (tests/fuzz/seeds/<target>/) are read, never
  # written: new inputs go to the first directory, the build's corpus.
  seeds=()
  [ -d "$ROOT/tests/fuzz/seeds/$name" ] && seeds=("$ROOT/tests/fuzz/seeds/$name")
  echo "fuzz: $name"
  "$f" -max_total_time="$FUZZ_SECONDS" -print_final_stats=0 "$corpus" "${seeds[@]}" \
    2>"$ROOT/build-fuzz/$name.log" || { tail -40 "$ROOT/build-fuzz/$name.log"; exit 1; }
  grep -E "^#[0-9]+.*DONE" "$ROOT/build-fuzz/$name.log" | tail -1 || true
done

step "all tests passed"
