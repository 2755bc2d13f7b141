#!/usr/bin/env bash
# Installs everything parley needs on Debian 12: Debian packages by apt, and
# wolfSSL (with its QUIC API) plus ngtcp2 (with its wolfSSL crypto helper)
# built from Debian's source packages into a cached, project-local prefix.
# See ../shared/design/DEPS.md for why. Idempotent: a second run is fast.
#
# Prints the prefix on its last line of stdout; everything else goes to stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEPS_DIR=${PARLEY_DEPS_DIR:-$ROOT/.deps}

WOLFSSL_VER=5.7.2
WOLFSSL_SHA=0f2ed82e345b833242705bbc4b08a2a2037a33f7bf9c610efae6464f6b10e305
NGTCP2_VER=1.11.0
NGTCP2_SHA=382c15bf66b630f26021631b25b7eb1feac42c67c1d6826189d61091dfaa4d09
WOLFSSL_FLAGS="-DWOLFSSL_QUIC=yes -DWOLFSSL_CURVE25519=yes -DWOLFSSL_ED25519=yes
 -DWOLFSSL_CERTGEN=yes -DWOLFSSL_KEYGEN=yes -DWOLFSSL_SESSION_TICKET=yes
 -DWOLFSSL_AESNI=yes -DWOLFSSL_EXAMPLES=no -DWOLFSSL_CRYPT_TESTS=no
 -DBUILD_SHARED_LIBS=yes"
# wolfSSL 5.7.2's CMake build takes -DWOLFSSL_AESNI=yes only as far as
# linking its AES-NI assembly; the C code uses it (AES and AES-GCM with
# AES-NI and PCLMULQDQ instead of portable C, chosen at run time by CPUID)
# only with WOLFSSL_AESNI defined, which its configure script would add
# with -maes. GCC 12 also stops it with a false -Werror=stringop-overflow
# in src/tls.c.
WOLFSSL_CFLAGS="-Wno-error=stringop-overflow -DWOLFSSL_AESNI -maes"
NGTCP2_FLAGS="-DENABLE_WOLFSSL=ON -DENABLE_OPENSSL=OFF -DENABLE_GNUTLS=OFF
 -DENABLE_LIB_ONLY=ON -DENABLE_STATIC_LIB=OFF"

# Everything the build, the tests and the demo use.
PACKAGES="build-essential cmake pkg-config dpkg-dev xz-utils ca-certificates
 libopus-dev libvpx-dev libsodium-dev portaudio19-dev liblmdb-dev libuv1-dev
 libjansson-dev libcmocka-dev libsamplerate0-dev libyuv-dev libv4l-dev
 libwebrtc-audio-processing-dev
 clang libclang-rt-14-dev clang-format socat hyperfine python3 python3-numpy
 espeak-ng sox ffmpeg pulseaudio pulseaudio-utils libasound2-plugins"

log() { printf 'deps: %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

install_packages() {
  local missing=()
  for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >&2
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# A deb-src entry for the archive, so apt-get source can fetch trixie's
# packages (bookworm has no wolfSSL built with QUIC, nor ngtcp2 1.11).
ensure_deb_src() {
  local f=/etc/apt/sources.list.d/parley-src.sources
  [ -f "$f" ] && return 0
  log "adding deb-src entry $f"
  $SUDO tee "$f" >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm trixie bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  $SUDO apt-get update -qq >&2 || true
}

sha_ok() { [ -f "$1" ] && echo "$2  $1" | sha256sum -c --status; }

# fetch PKG SUITE TARBALL SHA: downloads the source package and checks the
# upstream tarball by hash; apt's exit code is not trusted (ngtcp2's .dsc 404s).
fetch() {
  local pkg=$1 suite=$2 tarball=$3 sha=$4
  if sha_ok "$DEPS_DIR/src/$tarball" "$sha"; then return 0; fi
  ensure_deb_src
  mkdir -p "$DEPS_DIR/src"
  log "fetching $pkg/$suite"
  (cd "$DEPS_DIR/src" && apt-get source --download-only "$pkg/$suite" >&2) || true
  if ! sha_ok "$DEPS_DIR/src/$tarball" "$sha"; then
    log "ERROR: $tarball missing or its SHA-256 is not $sha"
    exit 1
  fi
}

build_prefix() {
  local key prefix
  key=$(printf '%s\n' "$WOLFSSL_VER $WOLFSSL_FLAGS $WOLFSSL_CFLAGS" "$NGTCP2_VER $NGTCP2_FLAGS" | sha256sum | cut -c1-12)
  prefix="$DEPS_DIR/prefix-$key"
  if [ -f "$prefix/.complete" ]; then echo "$prefix"; return 0; fi

  fetch wolfssl trixie "wolfssl_$WOLFSSL_VER.orig.tar.gz" "$WOLFSSL_SHA"
  fetch ngtcp2 trixie "ngtcp2_$NGTCP2_VER.orig.tar.xz" "$NGTCP2_SHA"

  local work="$DEPS_DIR/build"
  rm -rf "$work" "$prefix"
  mkdir -p "$work"
  tar -C "$work" -xzf "$DEPS_DIR/src/wolfssl_$WOLFSSL_VER.orig.tar.gz"
  tar -C "$work" -xJf "$DEPS_DIR/src/ngtcp2_$NGTCP2_VER.orig.tar.xz"

  log "building wolfSSL $WOLFSSL_VER"
  # shellcheck disable=SC2086
  cmake -S "$work"/wolfssl-$WOLFSSL_VER* -B "$work/wolfssl-build" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR=lib \
    -DCMAKE_C_FLAGS="$WOLFSSL_CFLAGS" $WOLFSSL_FLAGS >&2
  cmake --build "$work/wolfssl-build" -j"$(nproc)" >&2
  cmake --install "$work/wolfssl-build" >&2
  # The CMake options.h does not carry WOLFSSL_AESNI (it changes struct
  # layouts and alignment): add it, so that ngtcp2 and parley see the
  # library's configuration.
  sed -i 's|^#define WOLFSSL_OPTIONS_H$|&\n\n#undef WOLFSSL_AESNI\n#define WOLFSSL_AESNI|' \
    "$prefix/include/wolfssl/options.h"
  grep -q '^#define WOLFSSL_AESNI$' "$prefix/include/wolfssl/options.h" ||
    { log "ERROR: could not add WOLFSSL_AESNI to options.h"; exit 1; }

  log "building ngtcp2 $NGTCP2_VER"
  # shellcheck disable=SC2086
  cmake -S "$work/ngtcp2-$NGTCP2_VER" -B "$work/ngtcp2-build" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR=lib \
    -DCMAKE_PREFIX_PATH="$prefix" $NGTCP2_FLAGS >&2
  cmake --build "$work/ngtcp2-build" -j"$(nproc)" >&2
  cmake --install "$work/ngtcp2-build" >&2

  rm -rf "$work"
  touch "$prefix/.complete"
  echo "$prefix"
}

install_packages
build_prefix
