#!/usr/bin/env bash
# Every performance script in its short mode, against one binary: proves they work (CI runs
# this; the figures mean nothing at this size and on a debug build).
#
#   IPX_BIN=target/debug/ipx bash benches/smoke.sh
#
# Needs what the scripts need: dnsperf, nsd, knot, wrk, valgrind, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${IPX_BIN:?IPX_BIN=path/to/ipx}"
export IPX_BIN
for run in "dnsperf.sh --smoke" "million.sh --smoke" "api_load.sh --smoke" "edits_under_load.sh --smoke" \
  "callgrind.sh --names 200 --queries 300 --top 3" "metrics_overhead.sh --names 200 --queries 300"; do
  echo "== benches/$run"
  started=$SECONDS
  # shellcheck disable=SC2086 # the options are words
  bash benches/$run 2>&1 | tail -n 4
  echo "   ($((SECONDS - started)) s)"
done
