#!/usr/bin/env bash
# Measures the QUIC transport (tests/bench/bench_quic.c, plus the lossy
# relay run of tests/net/test_quic_relay.c) and rewrites the
# "## QUIC transport" section of docs/benchmarks.md; other sections are
# left alone.
#
#   tests/bench/quic.sh [--no-relay] [bench_quic options, e.g. --quick]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$ROOT/tests/bench/lib.sh"
BUILD=${PARLEY_BENCH_BUILD:-$ROOT/build-net-bench}
PREFIX=${PARLEY_DEPS_PREFIX:-$(ls -d "$ROOT"/.deps/prefix-* 2>/dev/null | head -n1)}
DOC=$ROOT/docs/benchmarks.md

relay=1
args=()
for a in "$@"; do
  if [ "$a" = "--no-relay" ]; then relay=0; else args+=("$a"); fi
done

echo "quic.sh: building (Release) in $BUILD" >&2
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
  ${PREFIX:+-DPARLEY_DEPS_PREFIX="$PREFIX"} >/dev/null
targets=(bench_quic)
[ "$relay" = 1 ] && targets+=(test_net_quic_relay)
cmake --build "$BUILD" -j"$(nproc)" --target "${targets[@]}" >/dev/null

echo "quic.sh: running bench_quic ${args[*]:-}" >&2
table=$("$BUILD/tests/bench/bench_quic" "${args[@]}")

relay_line=""
if [ "$relay" = 1 ]; then
  echo "quic.sh: running the lossy relay test" >&2
  relay_line=$(PARLEY_QUIC_RELAY_PAYLOAD=1452 \
    "$BUILD/tests/net/test_net_quic_relay" 2>&1 |
    sed -n 's/^through relay: //p' || true)
fi

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
cmdline="tests/bench/quic.sh${*:+ $*}"
section=$(mktemp)
trap 'rm -f "$section"' EXIT
{
  echo "## QUIC transport"
  echo
  echo "Produced by \`$cmdline\` on $(date -u +%Y-%m-%d), Linux $(uname -r),"
  echo "$(nproc) cores ($cpu), Release build. Two endpoints on loopback; the"
  echo "acceptor runs in a forked child, so each side has its own loop and"
  echo "core, as between two daemons. Handshakes are sequential, each a full"
  echo "TLS 1.3 handshake with mutual Ed25519 certificate authentication."
  echo
  echo "$table"
  if [ -n "$relay_line" ]; then
    echo "| 10 MiB through parley-relay, 10% loss and 40 +- 10 ms delay each way, BBR | $relay_line |"
  fi
  echo
  cat <<'NOTES'
- Batching: "GSO + sendmmsg" hands the kernel trains of up to 64
  equal-size packets per UDP_SEGMENT message, and the receiver asks for
  UDP GRO, so on loopback a train stays one buffer end to end.
  "sendmmsg" sends the same bursts as one message per packet; "sendmsg
  per packet" is the unbatched baseline. Compare sender CPU per GiB and
  throughput between these rows; loopback figures on a shared 2-core
  machine are noisy, hence medians and ranges.
- Sender CPU is dominated by AES-128-GCM: this wolfSSL build (CMake,
  5.7.2) has no AES-NI for GCM, so AES and GHASH run in portable C
  (about 70% of cycles in a profile). ChaCha20-Poly1305 would be faster
  in C but is disabled: wolfSSL 5.7.2's EVP decryption of it skips the
  tag check (CVE-2026-5479).
- "loss counting off" shows the cost of counting lost packets from
  ngtcp2's qlog events (quic_endpoint_opts.count_lost_packets): a few
  percent of cycles in a profile, within noise here.
- CUBIC vs BBR: on a clean path they are close. At 10% random loss both
  end up at a few packets per round trip, CUBIC sooner and lower (about
  50 KB/s in the relay setup above, over three minutes for 10 MiB),
  while BBR moves much of the transfer in start-up; hence BBR is the
  default.
- The relay row uses 1452-byte packets as on a real path; the ctest
  version of that test sends 8 KiB packets to stay fast.
NOTES
} >"$section"

bench_write_section "$DOC" "QUIC transport" "$section"
echo "quic.sh: updated $DOC" >&2
echo "$table"
[ -n "$relay_line" ] && echo "relay: $relay_line"
exit 0
