#!/usr/bin/env bash
# User-space instructions per UDP answer of `ipx serve`, counted by valgrind's callgrind: the
# same figure run after run whatever else the machine does (wall-clock benchmarks are not),
# so it shows what a change to the answer path costs. The kernel's share is not counted.
#
#   bash benches/callgrind.sh [--names 10000] [--queries 20000] [--top 25] [--dnssec]
#   IPX_BIN=/path/to/ipx bash benches/callgrind.sh    # that binary, no build
#
# --dnssec signs the zone (NSEC3) before the measured start and asks every query with the DO
# bit: the cost of a signed answer.
#
# Needs: valgrind, dnsperf. Collection is switched on only once the server answers, and off
# before it stops, so start-up and shutdown are not in the figure.
set -euo pipefail
cd "$(dirname "$0")/.."

NAMES=10000 QUERIES=20000 TOP=25 DNSSEC=
while [ $# -gt 0 ]; do
  case "$1" in
    --names) NAMES=$2; shift 2 ;;
    --dnssec) DNSSEC=1; shift ;;
    --queries) QUERIES=$2; shift 2 ;;
    --top) TOP=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

# IPX_BIN=path measures that binary instead of building this tree's (a before/after figure).
if [ -z "${IPX_BIN:-}" ]; then cargo build --release --quiet; fi
BIN=${IPX_BIN:-$PWD/target/release/ipx}
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; sleep 0.3; if [ -n "${KEEP:-}" ]; then cp "$WORK"/callgrind.out* "$KEEP"/; fi; rm -rf "$WORK"; }
trap cleanup EXIT

. benches/zone_mix.sh
ZONE=bench.test
gen_zone "$ZONE" "$NAMES" "$WORK/zone"
gen_queries "$ZONE" "$NAMES" "$QUERIES" "$WORK/queries"
DATA=$WORK/data
"$BIN" --data-dir "$DATA" team create bench >/dev/null
"$BIN" --data-dir "$DATA" zone import "$WORK/zone" --team bench >/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DO=
if [ -n "$DNSSEC" ]; then
  # Signed by a server of its own, outside valgrind: the measured one starts with the signed
  # zone stored and signs nothing.
  IPX_DEMO_ENABLED=false "$BIN" --data-dir "$DATA" serve --dns-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
    --metrics-listen "" >/dev/null 2>"$WORK/sign.log" &
  SIGNER=$!
  for _ in $(seq 600); do grep -q "serving" "$WORK/sign.log" 2>/dev/null && break; sleep 0.1; done
  "$BIN" --data-dir "$DATA" zone dnssec enable "$ZONE" >/dev/null
  kill "$SIGNER"; wait "$SIGNER" || true
  DO=-D
fi

IPX_DEMO_ENABLED=false IPX_RRL_ENABLED=false IPX_DNS_UDP_THREADS=1 valgrind --tool=callgrind \
  --instr-atstart=no --callgrind-out-file="$WORK/callgrind.out" \
  "$BIN" --data-dir "$DATA" serve --dns-listen "127.0.0.1:$PORT" --api-listen 127.0.0.1:0 \
  >/dev/null 2>"$WORK/log" &
PID=$!
for _ in $(seq 600); do grep -q "serving" "$WORK/log" 2>/dev/null && break; sleep 0.1; done
dig +short +tries=3 +time=2 @127.0.0.1 -p "$PORT" "$ZONE" SOA >/dev/null
callgrind_control -i on "$PID" >/dev/null
OUT=$(dnsperf -s 127.0.0.1 -p "$PORT" -d "$WORK/queries" -n 1 -c 1 -q 20 -t 10 $DO 2>&1)
callgrind_control -i off "$PID" >/dev/null
callgrind_control -d "$PID" >/dev/null
COMPLETED=$(echo "$OUT" | awk '/Queries completed:/ {print $3}')
sleep 0.5
FILE=$(ls "$WORK"/callgrind.out* | tail -n 1)
TOTAL=$(callgrind_annotate "$FILE" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "zone: $NAMES names; $COMPLETED of $QUERIES queries answered"
python3 -c "print(f'user-space instructions per answer: {$TOTAL / max($COMPLETED, 1):,.0f}')"
echo
callgrind_annotate --inclusive=no "$FILE" 2>/dev/null | sed -n "/^Ir/,\$p" | sed -n "1,$((TOP + 7))p" # sed reads it all: no SIGPIPE
