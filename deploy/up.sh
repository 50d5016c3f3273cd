#!/usr/bin/env bash
# README command 1: install, build, and start `corral up` (nats-server child + executor, data
# under ./var) in the foreground. Ctrl-C stops it; sandboxes are adopted again at the next start.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$("$ROOT/deploy/build.sh" | tail -n 1)
cd "$ROOT"
exec "$BUILD/bin/corral" up --data "$ROOT/var" "$@"
