#!/usr/bin/env bash
# Installs what is missing, builds corral into ./build (or $CORRAL_BUILD_DIR) and the patched
# runsc it runs sandboxes with (cached; see deploy/build-runsc.sh), installed as
# <build>/bin/corral-runsc beside the other programs.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${CORRAL_BUILD_DIR:-$ROOT/build}
JOBS=${CORRAL_JOBS:-$(nproc)}

"$ROOT/deploy/install-deps.sh"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE="${CORRAL_BUILD_TYPE:-RelWithDebInfo}" ${CORRAL_CMAKE_ARGS:-} >&2
cmake --build "$BUILD" -j "$JOBS" >&2
RUNSC=$("$ROOT/deploy/build-runsc.sh" | tail -n 1)
install -m 0755 "$RUNSC" "$BUILD/bin/corral-runsc"
echo "$BUILD"
