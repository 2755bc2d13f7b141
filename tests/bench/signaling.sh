#!/usr/bin/env bash
# Measures the call signaling round trip on loopback
# (tests/bench/bench_signaling.c: two real parleyd, an auto-answering
# client on the callee, start_call to call-answered) and rewrites the
# "## Signaling" section of docs/benchmarks.md; other sections are left
# alone.
#
#   tests/bench/signaling.sh [--calls N] [--warmup N] [--samples]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$ROOT/tests/bench/lib.sh"
BUILD=${PARLEY_BENCH_BUILD:-$ROOT/build-e2e-bench}
PREFIX=${PARLEY_DEPS_PREFIX:-$(ls -d "$ROOT"/.deps/prefix-* 2>/dev/null | head -n1)}
DOC=$ROOT/docs/benchmarks.md

echo "signaling.sh: building (Release) in $BUILD" >&2
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
  ${PREFIX:+-DPARLEY_DEPS_PREFIX="$PREFIX"} >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target parleyd bench_signaling >/dev/null

load=$(cut -d' ' -f1 /proc/loadavg)
echo "signaling.sh: running bench_signaling $*" >&2
table=$("$BUILD/tests/bench/bench_signaling" "$@")

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
cmdline="tests/bench/signaling.sh${*:+ $*}"
section=$(mktemp)
trap 'rm -f "$section"' EXIT
{
  echo "## Signaling"
  echo
  echo "Produced by \`$cmdline\` on $(date -u +%Y-%m-%d), Linux $(uname -r),"
  echo "$(nproc) cores ($cpu), Release build. Two parleyd on loopback, each"
  echo "with its own XDG home and \`offers_per_minute = 10000\` so the rate"
  echo "limit never applies; the Double Ratchet session and the DM"
  echo "connection are set up by warm-up calls that are not counted. A"
  echo "client subscribed to \`incoming-call\` on the callee sends"
  echo "\`answer_call\` as soon as each call rings; the caller's client times"
  echo "each \`start_call\` request until its \`call-answered\` event (Offer"
  echo "and Answer each sealed, sent on their own QUIC stream and"
  echo "acknowledged), then ends the call and waits for \`call-ended\` on"
  echo "both sides before the next one."
  echo
  echo "$table"
  echo
  cat <<'NOTES'
- The round trip includes both daemons' JSON-RPC handling, one LMDB
  write of the ratchet state per envelope sealed or opened, and the
  answering client's reaction; no network latency (loopback).
- "Whole call" adds end_call, the End signal, the media pipeline starting
  and stopping on both sides, and both CallRecord writes. Most of it is
  the hang-up: each side's media_stop joins the call's capture and
  playout threads on the event loop thread (src/call/media.c), which
  takes up to one 20 ms frame period on each side in turn.
- Figures on this shared 2-core machine vary with what else runs: with
  other builds and benchmarks running the median rose to 12-14 ms.
  Run with --samples to see every call.
NOTES
  echo "- Load average (1 min) when this run started: $load."
} >"$section"

bench_write_section "$DOC" "Signaling" "$section"
echo "signaling.sh: updated $DOC" >&2
echo "$table"
