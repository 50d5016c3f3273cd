#!/usr/bin/env bash
# Build a patched gVisor runsc from Debian 12's own packages.
#
# Usage: deploy/build-runsc.sh [OUT]
#
# OUT defaults to ${CORRAL_CACHE:-$HOME/.cache/corral}/runsc-<hash>/runsc,
# where <hash> covers the files in deploy/runsc/ and the versions of the
# Debian packages used. If OUT already exists the build is skipped. The last
# line of stdout is always the path of the binary; progress goes to stderr.
#
# Why: Debian's runsc 0.0~20221219.0 has two bugs that matter to corral:
#   0001: statx/newfstatat reject AT_NO_AUTOMOUNT with EINVAL, which breaks
#         coreutils `ls` and `stat` in every sandbox.
#   0002: --network=sandbox refuses to start ("cannot run with network
#         enabled in root network namespace") on Linux >= 6.x, because
#         /proc/sys/net/core/rmem_default is now per network namespace
#         (google/gvisor#10704).
#   0003: the memory file's reclaim returns every freed range to the host
#         (fallocate PUNCH_HOLE), so the next allocation there takes a host
#         page fault, a page allocation and a clear per 4 KiB page (~2.4 us
#         each on a VM; a 2 MiB copy-on-write break after fork took ~2.1 ms).
#         Small, fully resident ranges are zeroed in place instead and handed
#         out again: fork-per-job runners (corral's job runner) spend ~30%
#         less per fork.
#   On the ptrace platform (the one this machine has: no /dev/kvm) every
#   page fault of an application and every mapping the sentry makes for it
#   is a round trip to a stub process (two context switches, ~30 us on a
#   VM). A process forked from a warm interpreter took ~170 faults:
#   0004: fewer faults per copy-on-write write. ptrace does not say whether
#         a fault was a read or a write, so a write to a copy-on-write page
#         was first handled as a read (and mapped again, uselessly), then as
#         a write when it repeated. SEGV_ACCERR on a data address can only be
#         a write (everything the sentry maps is readable), so it is handled
#         as one at once. And breaking copy-on-write unmapped the whole 2 MiB
#         around the write, so every other pma there (heap arenas, library
#         data) faulted in again; it unmaps only the copied range now.
#   0005: batched mappings. A forked child maps every pma it inherited at
#         its first activation, in one round trip: the stub runs a table of
#         mmap calls (stubBatch) that the sentry writes into a page of a
#         memfd the stub maps read-only above the application's addresses.
#         Before, each inherited region the child read cost a fault.
#   0006: a copy-on-write break maps its copy over the old pages at once
#         (mmap MAP_FIXED replaces the mapping before the old pages' reference
#         goes), instead of an unmap and a later fault to map the copy.
#   0007: copy-on-write prefetch for processes that fork the same way again
#         and again: each mm keeps the ranges its last finished child broke
#         copy-on-write in, and Fork copies them for the next child before it
#         runs (mapped with the rest in 0005's batch). Hints age out unless a
#         child faults on them again; bounded to 256 ranges / 32 MiB a fork;
#         a child that execs publishes nothing. See mm/cow_hints.go.
#   0008: 0003 zeroed every kept range at reclaim, and most of them are
#         handed out again for copy-on-write copies, which overwrite them
#         whole (~5% of a sweep's CPU was that zeroing). Kept ranges are now
#         free but dirty (MemoryFile.dirty); Allocate zeroes what it hands
#         out of them, except to AllocateAndCopy (the copy-on-write break),
#         whose reader writes every byte it keeps.
#   0009: a stub thread runs on the CPU of the sentry thread that traces it.
#         Each application system call or fault is a round trip between the
#         two; on two CPUs it also cost a cross-CPU wake-up (an IPI, a halted
#         vCPU to wake) and the tracer spinning in wait_task_inactive until
#         the tracee was off the other CPU. The sentry's threads still move
#         freely; before resuming a stub thread, its tracer binds it to its
#         own CPU when that changed (getcpu, sched_setaffinity). New stub
#         threads were what made a sandbox's first ~50 jobs slow.
#   Together (sweep_bench, 2 cores): fresh-sandbox sweeps ~+50% (0004+0005
#   ~+25%, 0006 and 0007 ~+3-4% each) before 0009, which adds ~+8-10%.
#   0010: /proc/[pid]/fd links and /proc/[pid]/fdinfo need ptrace read access
#         to the process (Linux's proc_fd_access_allowed: the standard and
#         commoncap checks, not YAMA, which restricts attaching only). runsc
#         checked only the directory's mode, so root in a sandbox could reopen
#         any process's files: corral-init's FIFOs to the executor, and, in
#         the child init has vforked until it execs (it shares init's
#         non-dumpable memory and holds copies of init's fds, in the user
#         namespace where it is visible), the hidden exec cgroups. Now a
#         non-dumpable process, or one with capabilities the caller lacks, is
#         closed to it; processes of the same uid and capabilities still see
#         each other's fds (docs/protocol.md "corral-init's boundary";
#         tests/hostile/init_boundary_test.cpp).
#
# How (mirrors Debian's dh-golang build of src:golang-gvisor-gvisor):
#   * the gvisor.dev/gvisor tree from golang-gvisor-gvisor-dev is copied into
#     a temporary GOPATH that precedes /usr/share/gocode, and the copy is
#     patched (nothing under /usr/share is modified);
#   * golang-gvisor-gvisor-dev ships vdso.so and af_xdp_ebpf.o as 1-byte
#     placeholders; the real objects are recovered from Debian's runsc binary
#     of the same source version (they are go:embed []byte blobs in it) by
#     deploy/runsc/extract-blobs.go;
#   * GO111MODULE=off CGO_ENABLED=0 go build -trimpath, dependencies from
#     Debian golang-*-dev packages only (no network besides apt).
set -euo pipefail

# Bump when the build recipe changes in a way that should invalidate caches.
RECIPE_VERSION=1

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PATCH_DIR="$SCRIPT_DIR/runsc"
GVISOR_SRC=/usr/share/gocode/src/gvisor.dev/gvisor
GO=/usr/lib/go/bin/go
CACHE_ROOT=${CORRAL_CACHE:-${HOME:-/root}/.cache/corral}

log() { echo "build-runsc: $*" >&2; }
die() { log "error: $*"; exit 1; }

# Everything the build needs, all from Debian's archive. The golang-*-dev
# libraries are also Depends of golang-gvisor-gvisor-dev; they are listed so
# that a missing one is noticed here rather than as a Go import error.
PACKAGES=(
  golang-go
  golang-gvisor-gvisor-dev
  runsc
  patch
  golang-github-bits-and-blooms-bitset-dev
  golang-github-cenkalti-backoff-dev
  golang-github-cilium-ebpf-dev
  golang-github-coreos-go-systemd-dev
  golang-dbus-dev
  golang-github-gofrs-flock-dev
  golang-github-google-btree-dev
  golang-github-google-subcommands-dev
  golang-github-kr-pty-dev
  golang-github-mohae-deepcopy-dev
  golang-github-opencontainers-specs-dev
  golang-github-vishvananda-netlink-dev
  golang-github-vishvananda-netns-dev
  golang-gocapability-dev
  golang-golang-x-mod-dev
  golang-golang-x-sync-dev
  golang-golang-x-sys-dev
  golang-golang-x-time-dev
  golang-google-protobuf-dev
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

# Versions of the packages the binary is made from (one dpkg-query call).
read -r DEV_VERSION DEV_SOURCE UPSTREAM_VERSION RUNSC_VERSION RUNSC_SOURCE GO_VERSION < <(
  dpkg-query -W -f='${Package} ${Version} ${source:Version} ${source:Upstream-Version}\n' \
    golang-gvisor-gvisor-dev runsc golang-go |
    awk '{v[$1] = $2; s[$1] = $3; u[$1] = $4}
         END {print v["golang-gvisor-gvisor-dev"], s["golang-gvisor-gvisor-dev"], u["golang-gvisor-gvisor-dev"],
                    v["runsc"], s["runsc"], v["golang-go"]}'
)
[[ -n "${GO_VERSION:-}" ]] || die "could not read package versions with dpkg-query"
[[ "$DEV_SOURCE" == "$RUNSC_SOURCE" ]] ||
  die "golang-gvisor-gvisor-dev ($DEV_SOURCE) and runsc ($RUNSC_SOURCE) come from different source versions; the embedded vdso/BPF objects would not match"

shopt -s nullglob
INPUTS=("$PATCH_DIR"/*.patch "$PATCH_DIR"/extract-blobs.go)
PATCHES=("$PATCH_DIR"/*.patch)
shopt -u nullglob
((${#PATCHES[@]} > 0)) || die "no patches found in $PATCH_DIR"

HASH=$(
  {
    echo "recipe=$RECIPE_VERSION"
    echo "golang-gvisor-gvisor-dev=$DEV_VERSION runsc=$RUNSC_VERSION golang-go=$GO_VERSION"
    for f in "${INPUTS[@]}"; do
      echo "== ${f##*/}"
      cat "$f"
    done
  } | sha256sum | cut -c1-16
)

OUT=${1:-$CACHE_ROOT/runsc-$HASH/runsc}
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
exec 9>"$OUT_DIR/.build-runsc.lock"
flock 9
if is_cached; then
  echo "$OUT"
  exit 0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/build-runsc.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

log "building runsc $UPSTREAM_VERSION (+corral patches, hash $HASH) in $WORK"
START=$(date +%s)

export GO111MODULE=off GOFLAGS='' GOPROXY=off GOWORK=off CGO_ENABLED=0
export GOPATH="$WORK/gopath:/usr/share/gocode"
export GOCACHE=${GOCACHE:-$CACHE_ROOT/go-build}
unset GOROOT GOOS GOARCH GOBIN

# 1. Writable copy of the gvisor tree, first in GOPATH.
SRC="$WORK/gopath/src/gvisor.dev/gvisor"
mkdir -p "$(dirname "$SRC")"
cp -a "$GVISOR_SRC" "$SRC"
chmod -R u+w "$SRC"

# 2. Patches.
for p in "${PATCHES[@]}"; do
  log "applying $(basename "$p")"
  patch -d "$SRC" -p1 --forward --batch --no-backup-if-mismatch -s <"$p" >&2 ||
    die "patch $(basename "$p") does not apply to golang-gvisor-gvisor-dev $DEV_VERSION"
done

# 3. Real vdso.so and af_xdp_ebpf.o, recovered from Debian's runsc binary.
(cd "$WORK" && "$GO" build -o "$WORK/extract-blobs" "$PATCH_DIR/extract-blobs.go")
RUNSC_DEB_BIN=$(dpkg -L runsc | grep -E '/s?bin/runsc$' | head -n1)
[[ -n "$RUNSC_DEB_BIN" && -x "$RUNSC_DEB_BIN" ]] || die "runsc binary of package runsc not found"
VDSO="$SRC/pkg/sentry/loader/vdsodata/vdso.so"
XDP="$SRC/runsc/sandbox/bpf/af_xdp_ebpf.o"
[[ -f "$VDSO" && -f "$XDP" ]] || die "embed targets not found in $GVISOR_SRC"
"$WORK/extract-blobs" "$RUNSC_DEB_BIN" "$VDSO" "$XDP"

# 4. Build (static, trimmed paths, like Debian's runsc).
(
  cd "$WORK"
  "$GO" build -trimpath \
    -ldflags "-s -w -X main.version=${UPSTREAM_VERSION}+corral.${HASH}" \
    -o "$WORK/runsc" gvisor.dev/gvisor/runsc
) >&2

# 5. Sanity checks: the binary runs, and it embeds the real objects.
"$WORK/runsc" --version >&2
mkdir -p "$WORK/check"
"$WORK/extract-blobs" "$WORK/runsc" "$WORK/check/vdso.so" "$WORK/check/af_xdp_ebpf.o" 2>/dev/null ||
  die "built binary does not embed valid vdso/BPF objects"
if ! cmp -s "$WORK/check/vdso.so" "$VDSO" || ! cmp -s "$WORK/check/af_xdp_ebpf.o" "$XDP"; then
  die "embedded objects of the built binary differ from the extracted ones"
fi

chmod 0755 "$WORK/runsc"
mv -f "$WORK/runsc" "$OUT.tmp.$$"
echo "$HASH" >"$STAMP"
mv -f "$OUT.tmp.$$" "$OUT"
log "built in $(($(date +%s) - START)) s"
echo "$OUT"
