#!/usr/bin/env bash
# What metrics cost per DNS answer: the release server answers one fixed query set twice,
# metrics on (--metrics-listen 127.0.0.1:0) and off (""), under callgrind, and the
# instructions its answering thread executed are divided by the answers. Instruction counts
# of that thread are repeatable whatever else the machine runs (the other threads' count
# grows with wall time, which a shared box makes vary), unlike wall-clock figures.
#
#   bash benches/metrics_overhead.sh [--queries 20000] [--names 10000] [--outstanding 1]
#   IPX_BIN=/path/to/ipx bash benches/metrics_overhead.sh    # that binary, no build
#
# One query outstanding by default: every receive batch then holds one query, so the count
# does not vary with how datagrams happened to batch (with more outstanding, batch sizes vary
# run to run and move the per-answer count by tens of instructions either way), and the
# per-batch work of the metrics (two clock reads) is charged to every answer: the worst case.
#
# Needs: valgrind, dnsperf. One UDP thread, RRL off; instrumentation is switched on only once
# the server is up (start-up and the zone load are not counted) and the counts are dumped
# before shutdown.
set -euo pipefail
cd "$(dirname "$0")/.."

QUERIES=20000 NAMES=10000 OUTSTANDING=1
while [ $# -gt 0 ]; do
  case "$1" in
    --queries) QUERIES=$2; shift 2 ;;
    --outstanding) OUTSTANDING=$2; shift 2 ;;
    --names) NAMES=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
for tool in valgrind callgrind_control callgrind_annotate dnsperf; do
  command -v $tool >/dev/null || { echo "$tool is not installed (apt-get install valgrind dnsperf)" >&2; exit 2; }
done

# IPX_BIN=path measures that binary instead of building this tree's.
if [ -z "${IPX_BIN:-}" ]; then cargo build --release --quiet; fi
BIN=${IPX_BIN:-$PWD/target/release/ipx}
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; sleep 0.5; rm -rf "$WORK"; }
trap cleanup EXIT

ZONE=bench.test
{
  echo "\$ORIGIN $ZONE."
  echo "\$TTL 300"
  echo "@ IN SOA ns1.ipx.test. hostmaster.ipx.test. 1 7200 3600 1209600 300"
  echo "@ IN NS ns1.ipx.test."
  echo "@ IN MX 10 mail"
  echo "mail IN A 192.0.2.25"
  echo "*.wild IN A 192.0.2.9"
  for ((i = 0; i < NAMES; i++)); do
    echo "host$i IN A 10.$((i >> 16 & 255)).$((i >> 8 & 255)).$((i & 255))"
    if ((i % 10 == 0)); then echo "alias$i IN CNAME host$i"; fi
  done
} >"$WORK/zone"
# The mix of benches/dnsperf.sh: hits, NODATA, NXDOMAIN, CNAME, MX, wildcard; and a few
# REFUSED (names we do not serve).
python3 - "$NAMES" "$ZONE" "$QUERIES" >"$WORK/queries" <<'PY'
import random, sys
n, zone, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
random.seed(7)
for _ in range(count):
    r = random.random(); i = random.randrange(n)
    if r < 0.68: print(f"host{i}.{zone} A")
    elif r < 0.78: print(f"host{i}.{zone} AAAA")
    elif r < 0.88: print(f"nx{i}.{zone} A")
    elif r < 0.93: print(f"alias{i - i % 10}.{zone} A")
    elif r < 0.96: print(f"{zone} MX")
    elif r < 0.98: print(f"x{i}.wild.{zone} A")
    else: print(f"host{i}.elsewhere.example A")
PY
"$BIN" --data-dir "$WORK/data" team create bench >/dev/null
"$BIN" --data-dir "$WORK/data" zone import "$WORK/zone" --team bench >/dev/null

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# run NAME METRICS_LISTEN: prints "instructions answers"
run() {
  local name=$1 metrics=$2 dns
  dns=$(port)
  rm -rf "$WORK/data-$name" && cp -a "$WORK/data" "$WORK/data-$name"
  IPX_DEMO_ENABLED=false IPX_RRL_ENABLED=false IPX_DNS_UDP_THREADS=1 IPX_LOG=info \
    valgrind --tool=callgrind --instr-atstart=no --separate-threads=yes --callgrind-out-file="$WORK/cg-$name" \
    "$BIN" --data-dir "$WORK/data-$name" serve --dns-listen "127.0.0.1:$dns" \
    --api-listen 127.0.0.1:0 --metrics-listen "$metrics" 2>"$WORK/log-$name" >/dev/null &
  PID=$!
  # Up once it logged "serving" (the API and the rest of start-up come after DNS answers).
  for _ in $(seq 1 1200); do
    grep -q "serving" "$WORK/log-$name" 2>/dev/null && break
    sleep 0.25
  done
  dig +short +tries=3 +time=2 -p "$dns" @127.0.0.1 "$ZONE" SOA >/dev/null
  callgrind_control -i on "$PID" >/dev/null
  dnsperf -s 127.0.0.1 -p "$dns" -d "$WORK/queries" -n 1 -q "$OUTSTANDING" -t 30 >"$WORK/perf-$name"
  callgrind_control -d "$PID" >/dev/null
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
  # One dump per thread: the answering thread's count (the one that calls recvmmsg), and
  # the process's.
  local ir=0 all=0 t answered
  for f in "$WORK/cg-$name".1-*; do
    t=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    [[ $t =~ ^[0-9]+$ ]] || t=0
    all=$((all + t))
    if grep -q recvmmsg "$f"; then ir=$t; fi
  done
  answered=$(awk '/Queries completed:/ {print $3}' "$WORK/perf-$name")
  echo "$ir $all $answered"
}

read -r off_ir off_all off_n < <(run off "")
read -r on_ir on_all on_n < <(run on 127.0.0.1:0)
python3 - "$off_ir" "$off_all" "$off_n" "$on_ir" "$on_all" "$on_n" <<'PY'
import sys
off_ir, off_all, off_n, on_ir, on_all, on_n = map(int, sys.argv[1:])
off, on = off_ir / off_n, on_ir / on_n
print(f"metrics off: {off_n} answers; answering thread {off_ir} instructions, {off:,.0f} per answer (all threads {off_all / off_n:,.0f})")
print(f"metrics on:  {on_n} answers; answering thread {on_ir} instructions, {on:,.0f} per answer (all threads {on_all / on_n:,.0f})")
print(f"cost of metrics: {on - off:,.0f} instructions per answer ({(on / off - 1) * 100:+.2f} %)")
PY
