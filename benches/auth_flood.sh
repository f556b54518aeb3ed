#!/usr/bin/env bash
# An attacker who knows a live token id (every tenant knows its own) hammers the API with
# well-formed secrets for it that are wrong, over 128 connections, while a legitimate client
# uses the API and DNS. Prints the legitimate client's latencies before and during the
# flood, what the flood got back, and the server's memory.
#
#   bash benches/auth_flood.sh [--seconds 20] [--connections 128]
#
# Needs: wrk (apt-get install wrk). The server runs on core 1, everything else on core 0.
SECONDS_=20 CONNS=128
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
source "$(dirname "$0")/attack_common.sh"
start_ipx env

# The same id as the legitimate token, another random part, a valid checksum.
WRONG=$(python3 - "$TOKEN" <<'PY'
import sys, zlib
A = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
def b62(n, l):
    s = ""
    for _ in range(l): s = A[n % 62] + s; n //= 62
    return s
body = sys.argv[1][:7 + 22] + "W" * 32
print(body + b62(zlib.crc32(body.encode()), 6))
PY
)

echo "ipx on core 1; ${CONNS} attacking connections and the legitimate client (at nice -10, so the attacker does not slow it on its own core) on core 0; ${SECONDS_} s per phase"
echo "legitimate client alone:"
taskset -c 0 nice -n -10 bash -c "$(declare -f legit); API=$API DNS_PORT=$DNS_PORT TOKEN=$TOKEN legit $SECONDS_"
echo "legitimate client during the flood:"
CPU0=$(awk '{print $14 + $15}' "/proc/$IPX_PID/stat")
taskset -c 0 wrk -t1 -c"$CONNS" -d"${SECONDS_}s" -H "Authorization: Bearer $WRONG" \
  "http://$API/v1/zones" >"$WORK/wrk.txt" 2>&1 &
WRK=$!
PIDS+=("$WRK")
sleep 1
taskset -c 0 nice -n -10 bash -c "$(declare -f legit); API=$API DNS_PORT=$DNS_PORT TOKEN=$TOKEN legit $((SECONDS_ - 3))"
wait "$WRK" || true
CPU1=$(awk '{print $14 + $15}' "/proc/$IPX_PID/stat")
grep -E "requests in|Requests/sec|Non-2xx|Socket errors" "$WORK/wrk.txt" | sed 's/^ */  flood: /'
echo "  server CPU during the flood: $(( (CPU1 - CPU0) * 100 / $(getconf CLK_TCK) / SECONDS_ ))% of a core"
echo "server memory: RSS $(rss_mib "$IPX_PID") MiB now, peak $(hwm_mib "$IPX_PID") MiB"
