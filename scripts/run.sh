#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: installs what is needed,
# builds parley, then runs parleyd in the foreground with the default
# configuration (or the parleyd options given), printing its peer ID,
# ticket and socket path. Stop it with Ctrl-C.
#   scripts/run.sh [parleyd options]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/scripts/build.sh" "$ROOT/build"
echo "parleyctl: $ROOT/build/parleyctl   (try: $ROOT/build/parleyctl status)" >&2
exec "$ROOT/build/parleyd" "$@"
