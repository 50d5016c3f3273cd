#!/usr/bin/env bash
# Installs, with apt-get, every Debian package corral needs to build, test and run. Idempotent:
# only missing packages are installed (apt-get update runs only then). Needs root.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git ca-certificates python3
  python3-dev  # Python.h: the job runner's native module (executor/jobs/guest_native_unsafe.cpp)
  libcaf-dev
  libnats-dev nats-server
  librocksdb-dev
  libflatbuffers-dev flatbuffers-compiler
  libboost-dev nlohmann-json3-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  runsc bubblewrap
  golang-go golang-github-nats-io-nats-server-dev patch  # corral-nats-server (deploy/build-nats-server.sh)
  strace  # tests/hostile/jetstream_sync_test.cpp watches the server's fsyncs
  openssl  # tests/hostile/nats_tls_test.cpp makes its certificates
  iproute2 procps e2fsprogs util-linux bash
  nodejs ruby php-cli
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
