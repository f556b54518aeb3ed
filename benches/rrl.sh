#!/usr/bin/env bash
# An amplification flood: one source asks as fast as it can for a ~1.1 KB answer (a large
# TXT set) over UDP, first with response rate limiting off, then with the defaults
# ([rrl]: 200 answers/s per prefix and kind, slip 2). Prints answers/s and the bytes
# reflected per byte asked.
#
#   bash benches/rrl.sh [--seconds 10]
#
# Needs: dnsperf (apt-get install dnsperf). The server runs on core 1, dnsperf on core 0.
SECONDS_=10
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
source "$(dirname "$0")/attack_common.sh"

run() {
  local label=$1
  shift
  start_ipx env "$@"
  local txt=""
  for i in $(seq 17); do txt+="big 300 IN TXT \"$(printf '%02d' "$i")$(printf 'x%.0s' $(seq 50))\""$'\n'; done
  "$BIN" --data-dir "$DATA" zone import /dev/stdin --team bench >/dev/null <<ZONE
\$ORIGIN amp.test.
@ 300 IN SOA ns1.ipx.test. hostmaster.ipx.test. 1 7200 3600 1209600 300
@ 300 IN NS ns1.ipx.test.
$txt
ZONE
  echo "big.amp.test TXT" >"$WORK/q.txt"
  out=$(taskset -c 0 dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$WORK/q.txt" -l "$SECONDS_" -c 1 -q 20000 -t 1 -e 2>&1)
  python3 - "$label" "$SECONDS_" <<PY
import re, sys
out = """$out"""
num = lambda pat: float(re.search(pat, out).group(1))
sent, done = num(r"Queries sent:\s+(\d+)"), num(r"Queries completed:\s+(\d+)")
req, resp = num(r"Average packet size:\s+request (\d+)"), num(r"response (\d+)")
secs = float(sys.argv[2])
print(f"{sys.argv[1]}: {sent / secs:,.0f} queries/s from one source, {done / secs:,.0f} answers/s, "
      f"{resp:.0f}-byte answers to {req:.0f}-byte queries: {done * resp / (sent * req):.2f} bytes reflected per byte asked")
PY
  kill "$IPX_PID"
  wait "$IPX_PID" 2>/dev/null || true
  rm -rf "$DATA"
}

echo "ipx on core 1, dnsperf (1 source, up to 20,000 in flight, 1 s timeout) on core 0, ${SECONDS_} s each"
run "rrl off" IPX_RRL_ENABLED=false
run "rrl on (defaults)" IPX_RRL_ENABLED=true
