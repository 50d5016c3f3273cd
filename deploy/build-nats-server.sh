#!/usr/bin/env bash
# Build a patched nats-server from Debian 12's own packages.
#
# Usage: deploy/build-nats-server.sh [OUT]
#
# OUT defaults to ${CORRAL_CACHE:-$HOME/.cache/corral}/nats-server-<hash>/nats-server,
# where <hash> covers the files in deploy/nats-server/ and the versions of the
# Debian packages used. If OUT already exists the build is skipped. The last
# line of stdout is always the path of the binary; progress goes to stderr.
#
# Why: Debian's nats-server 2.9.10 fsyncs a stream's message blocks only on a
# timer (every 2 minutes): an acknowledged publish survives a kill -9 of the
# server (the page cache does) but not a power loss of its machine, and the
# `jetstream { sync_interval }` setting that changes that exists only from
# nats-server 2.10 on (2.9.10 refuses the configuration: unknown field). No
# newer server is packaged for Debian 12, so configuration cannot give it.
#   0001: jetstream { sync_interval: <duration> | always }, with 2.10's meaning.
#         A duration replaces the 2-minute timer. `always`: every message is
#         written and fsynced to its block file before the store returns, so
#         before the publish is acknowledged; a new block file is fsynced into
#         its directory before its first message counts, a compacted block is
#         fsynced before it replaces the old one, the stream's metadata is
#         replaced atomically (temporary file, fsync, rename, fsync of the
#         directory) and the directories from the stream's up to store_dir are
#         fsynced when the stream is created or recovered. After a failed fsync
#         the stream stores nothing more (publishes get an error) until a
#         restart. The startup banner prints the setting ("Sync Interval:").
#   docs/jobs.md ("Durability of JetStream") says what it gives and costs.
#   0002: a request that crosses a service import into an account where
#         nothing subscribes gets the no-responders status (503) at once, as
#         from nats-server 2.10.26 on. 2.9.10 counts the import's internal
#         subscription as a delivery, so the requester waits out its timeout.
#         Each tenant reaches the executors through such imports, and "no such
#         sandbox" is exactly no subscriber: without the patch every request
#         about an unknown (or another tenant's) sandbox takes the client's
#         whole timeout. docs/security.md ("corral's nats-server") says more.
#
# How (mirrors Debian's dh-golang build of src:nats-server):
#   * the github.com/nats-io/nats-server tree from
#     golang-github-nats-io-nats-server-dev is copied into a temporary GOPATH
#     that precedes /usr/share/gocode, and the copy is patched (nothing under
#     /usr/share is modified); its /v2 import paths resolve there through Go's
#     GOPATH-mode module compatibility, as in Debian's build;
#   * GO111MODULE=off CGO_ENABLED=0 go build -trimpath, dependencies from
#     Debian golang-*-dev packages only (no network besides apt).
set -euo pipefail

# Bump when the build recipe changes in a way that should invalidate caches.
RECIPE_VERSION=1

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PATCH_DIR="$SCRIPT_DIR/nats-server"
IMPORT_PATH=github.com/nats-io/nats-server
NATS_SRC=/usr/share/gocode/src/$IMPORT_PATH
GO=/usr/lib/go/bin/go
CACHE_ROOT=${CORRAL_CACHE:-${HOME:-/root}/.cache/corral}

log() { echo "build-nats-server: $*" >&2; }
die() { log "error: $*"; exit 1; }

# Everything the build needs, all from Debian's archive. The golang-*-dev
# libraries are the Depends of golang-github-nats-io-nats-server-dev; they are
# listed so that a missing one is noticed here rather than as a Go import
# error, and so that their versions are part of the cache key (they are
# compiled into the binary).
PACKAGES=(
  golang-go
  golang-github-nats-io-nats-server-dev
  patch
  golang-github-klauspost-compress-dev
  golang-github-minio-highwayhash-dev
  golang-github-nats-io-jwt-dev
  golang-github-nats-io-go-nats-dev
  golang-github-nats-io-nkeys-dev
  golang-github-nats-io-nuid-dev
  golang-golang-x-crypto-dev
  golang-golang-x-sys-dev
  golang-golang-x-time-dev
  golang-uber-automaxprocs-dev
)

ensure_packages() {
  local installed missing=() p
  # One dpkg-query call for all packages (unknown ones only print to stderr).
  installed=" $(dpkg-query -W -f='${Package}=${db:Status-Status} ' "${PACKAGES[@]}" 2>/dev/null || true) "
  for p in "${PACKAGES[@]}"; do
    [[ "$installed" == *" $p=installed "* ]] || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  [[ $(id -u) == 0 ]] || die "missing packages (need root to install): ${missing[*]}"
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

ensure_packages

# Versions of every package the binary is made from (one dpkg-query call),
# and the upstream version of the server's source.
VERSIONS=$(dpkg-query -W -f='${Package}=${Version}\n' "${PACKAGES[@]}" | sort)
UPSTREAM_VERSION=$(dpkg-query -W -f='${source:Upstream-Version}' golang-github-nats-io-nats-server-dev)
[[ -n "$UPSTREAM_VERSION" && -n "$VERSIONS" ]] || die "could not read package versions with dpkg-query"
[[ -d "$NATS_SRC/server" ]] || die "nats-server source not found in $NATS_SRC"

shopt -s nullglob
PATCHES=("$PATCH_DIR"/*.patch)
shopt -u nullglob
((${#PATCHES[@]} > 0)) || die "no patches found in $PATCH_DIR"

HASH=$(
  {
    echo "recipe=$RECIPE_VERSION"
    echo "$VERSIONS"
    for f in "${PATCHES[@]}"; do
      echo "== ${f##*/}"
      cat "$f"
    done
  } | sha256sum | cut -c1-16
)

OUT=${1:-$CACHE_ROOT/nats-server-$HASH/nats-server}
[[ "$OUT" == /* ]] || OUT="$PWD/$OUT"
STAMP="$OUT.stamp"

is_cached() {
  [[ -x "$OUT" ]] || return 1
  # A stamp written by this script must match; a binary without one is
  # taken as is.
  [[ ! -e "$STAMP" ]] || [[ "$(cat "$STAMP")" == "$HASH" ]]
}

if is_cached; then
  echo "$OUT"
  exit 0
fi

OUT_DIR=$(dirname "$OUT")
mkdir -p "$OUT_DIR"
# Serialize concurrent builds of the same output.
exec 9>"$OUT_DIR/.build-nats-server.lock"
flock 9
if is_cached; then
  echo "$OUT"
  exit 0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/build-nats-server.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

log "building nats-server $UPSTREAM_VERSION (+corral patches, hash $HASH) in $WORK"
START=$(date +%s)

export GO111MODULE=off GOFLAGS='' GOPROXY=off GOWORK=off CGO_ENABLED=0
export GOPATH="$WORK/gopath:/usr/share/gocode"
export GOCACHE=${GOCACHE:-$CACHE_ROOT/go-build}
unset GOROOT GOOS GOARCH GOBIN

# 1. Writable copy of the nats-server tree, first in GOPATH.
SRC="$WORK/gopath/src/$IMPORT_PATH"
mkdir -p "$(dirname "$SRC")"
cp -a "$NATS_SRC" "$SRC"
chmod -R u+w "$SRC"

# 2. Patches.
for p in "${PATCHES[@]}"; do
  log "applying $(basename "$p")"
  patch -d "$SRC" -p1 --forward --batch --no-backup-if-mismatch -s <"$p" >&2 ||
    die "patch $(basename "$p") does not apply to golang-github-nats-io-nats-server-dev $UPSTREAM_VERSION"
done

# 3. Build (static, trimmed paths). The commit field (server log, /varz)
#    names the build.
(
  cd "$WORK"
  "$GO" build -trimpath \
    -ldflags "-s -w -X $IMPORT_PATH/server.gitCommit=corral.${HASH}" \
    -o "$WORK/nats-server" "$IMPORT_PATH"
) >&2

# 4. Sanity checks: the binary runs, and it accepts what the patches add.
"$WORK/nats-server" --version >&2
printf 'jetstream {\n  store_dir: "%s"\n  sync_interval: always\n}\n' "$WORK/check-store" >"$WORK/check.conf"
"$WORK/nats-server" -t -c "$WORK/check.conf" >&2 ||
  die "the built nats-server does not accept jetstream { sync_interval: always }"

chmod 0755 "$WORK/nats-server"
mv -f "$WORK/nats-server" "$OUT.tmp.$$"
echo "$HASH" >"$STAMP"
mv -f "$OUT.tmp.$$" "$OUT"
log "built in $(($(date +%s) - START)) s"
echo "$OUT"
