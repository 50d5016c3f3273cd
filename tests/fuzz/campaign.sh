#!/usr/bin/env bash
# Runs libFuzzer targets one after the other (never two at once), each for SECONDS, at the
# lowest CPU priority, and appends one summary line per run to OUT/summary.txt.
#   tests/fuzz/campaign.sh BUILD_DIR OUT SECONDS TARGET...
# BUILD_DIR is a CORRAL_FUZZ build; TARGET is a name under corpus/ (fuzz_<TARGET> is run with
# OUT/corpus/TARGET as its working corpus, then the committed seeds). New inputs go to OUT, never
# into the repository; crashes, timeouts and leaks go to OUT/artifacts/TARGET/.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=$1 OUT=$2 SECONDS_EACH=$3
shift 3
mkdir -p "$OUT/logs"
for t in "$@"; do
  bin=$BUILD/bin/fuzz_$t
  mkdir -p "$OUT/corpus/$t" "$OUT/artifacts/$t"
  start=$(date -u +%FT%TZ)
  nice -n 19 "$bin" -max_total_time="$SECONDS_EACH" -timeout=30 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$t/" \
    "$OUT/corpus/$t" "$HERE/corpus/$t" >"$OUT/logs/$t.log" 2>&1
  rc=$?
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$OUT/logs/$t.log" | tail -n 1)
  [ -n "$done_line" ] || done_line=$(grep -E '^#[0-9]+[[:space:]]' "$OUT/logs/$t.log" | tail -n 1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/logs/$t.log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$OUT/logs/$t.log")
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$OUT/logs/$t.log")
  crashes=$(find "$OUT/artifacts/$t" -type f | wc -l)
  echo "$t start=$start rc=$rc execs=${execs:-?} exec/s=${rate:-?} peak_rss_mb=${rss:-?} artifacts=$crashes | $done_line" >>"$OUT/summary.txt"
done
