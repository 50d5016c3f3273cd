#!/usr/bin/env bash
# README command 2: install, build, and run the whole test suite (ctest: unit and integration
# tests against the real nats-server, runsc and RocksDB).
#
# CORRAL_SANITIZE=1 builds with ASan+UBSan into ./build-sanitize instead and runs the same suite
# with every sanitizer report fatal.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ "${CORRAL_SANITIZE:-0}" == 1 ]]; then
  export CORRAL_BUILD_DIR=${CORRAL_BUILD_DIR:-$ROOT/build-sanitize}
  export CORRAL_BUILD_TYPE=Debug
  export CORRAL_CMAKE_ARGS="-DCORRAL_SANITIZE=ON ${CORRAL_CMAKE_ARGS:-}"
  # Leak checking is off: CAF 0.17 keeps its global state until exit.
  export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
fi
BUILD=$("$ROOT/deploy/build.sh" | tail -n 1)
cd "$BUILD"
exec ctest --output-on-failure --timeout 900 -j "${CORRAL_TEST_JOBS:-2}"
