#!/usr/bin/env bash
# README command 2: install, build, and run the whole test suite (ctest: unit and integration
# tests against the real nats-server, runsc and RocksDB).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$("$ROOT/deploy/build.sh" | tail -n 1)
cd "$BUILD"
exec ctest --output-on-failure --timeout 900 -j "${CORRAL_TEST_JOBS:-2}"
