#!/usr/bin/env bash
# Installs what is missing, builds corral into ./build (or $CORRAL_BUILD_DIR), the patched runsc it
# runs sandboxes with (cached; see deploy/build-runsc.sh), installed as <build>/bin/corral-runsc,
# and the patched nats-server whose JetStream can fsync every message before acknowledging it
# (cached; see deploy/build-nats-server.sh), installed as <build>/bin/corral-nats-server, and
# corral's bash completion (/etc/bash_completion.d/corral when run as root).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${CORRAL_BUILD_DIR:-$ROOT/build}
JOBS=${CORRAL_JOBS:-$(nproc)}

"$ROOT/deploy/install-deps.sh"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE="${CORRAL_BUILD_TYPE:-RelWithDebInfo}" ${CORRAL_CMAKE_ARGS:-} >&2
cmake --build "$BUILD" -j "$JOBS" >&2
RUNSC=$("$ROOT/deploy/build-runsc.sh" | tail -n 1)
install -m 0755 "$RUNSC" "$BUILD/bin/corral-runsc"
NATS_SERVER=$("$ROOT/deploy/build-nats-server.sh" | tail -n 1)
install -m 0755 "$NATS_SERVER" "$BUILD/bin/corral-nats-server"
# Bash completion of corral (docs/cli.md): beside the binaries, and for every shell when root.
install -D -m 0644 "$ROOT/cli/completion/corral.bash" "$BUILD/share/bash-completion/completions/corral"
if [[ $(id -u) == 0 && -d /etc/bash_completion.d ]]; then
  install -m 0644 "$ROOT/cli/completion/corral.bash" /etc/bash_completion.d/corral
fi
echo "$BUILD"
