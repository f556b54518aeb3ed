#!/usr/bin/env bash
# Throughput and CPU per answer of `ipx serve` under dnsperf, on loopback, with the server
# pinned to one core and dnsperf to the other. With --knot, Knot serves the same zone file
# the same way for a side-by-side figure.
#
#   bash benches/dnsperf.sh [--names 10000] [--seconds 10] [--knot]
#
# Needs: dnsperf (and knot for --knot): apt-get install dnsperf knot
set -euo pipefail
cd "$(dirname "$0")/.."

NAMES=10000 SECONDS_=10 KNOT=0
while [ $# -gt 0 ]; do
  case "$1" in
    --names) NAMES=$2; shift 2 ;;
    --seconds) SECONDS_=$2; shift 2 ;;
    --knot) KNOT=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

cargo build --release --quiet
BIN=$PWD/target/release/ipx
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

ZONE=bench.test
ZF=$WORK/$ZONE.zone
{
  echo "\$ORIGIN $ZONE."
  echo "\$TTL 300"
  echo "@ IN SOA ns1.ipx.test. hostmaster.ipx.test. 1 7200 3600 1209600 300"
  echo "@ IN NS ns1.ipx.test."
  echo "@ IN NS ns2.ipx.test."
  echo "@ IN MX 10 mail"
  echo "mail IN A 192.0.2.25"
  echo "*.wild IN A 192.0.2.9"
  for ((i = 0; i < NAMES; i++)); do
    echo "host$i IN A 10.$((i >> 16 & 255)).$((i >> 8 & 255)).$((i & 255))"
    if ((i % 10 == 0)); then echo "alias$i IN CNAME host$i"; fi
  done
} >"$ZF"

# A realistic mix: mostly hits, some NODATA, NXDOMAIN, CNAME, MX and wildcard answers.
QF=$WORK/queries.txt
python3 - "$NAMES" "$ZONE" >"$QF" <<'PY'
import random, sys
n, zone = int(sys.argv[1]), sys.argv[2]
random.seed(7)
for _ in range(200000):
    r = random.random(); i = random.randrange(n)
    if r < 0.70: print(f"host{i}.{zone} A")
    elif r < 0.80: print(f"host{i}.{zone} AAAA")
    elif r < 0.90: print(f"nx{i}.{zone} A")
    elif r < 0.95: print(f"alias{i - i % 10}.{zone} A")
    elif r < 0.98: print(f"{zone} MX")
    else: print(f"x{i}.wild.{zone} A")
PY

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run NAME PID PORT: dnsperf against it; prints QPS and CPU µs per answer.
run() {
  local name=$1 pid=$2 port=$3
  dnsperf -s 127.0.0.1 -p "$port" -d "$QF" -l 2 -c 4 -q 200 >/dev/null 2>&1 || true # warm-up
  local before after out
  before=$(cpu_ticks "$pid")
  out=$(taskset -c 0 dnsperf -s 127.0.0.1 -p "$port" -d "$QF" -l "$SECONDS_" -c 4 -q 200 2>&1)
  after=$(cpu_ticks "$pid")
  local completed qps lost
  completed=$(echo "$out" | awk '/Queries completed:/ {print $3}')
  lost=$(echo "$out" | awk '/Queries lost:/ {print $3}')
  qps=$(echo "$out" | awk '/Queries per second:/ {print $4}')
  local hz; hz=$(getconf CLK_TCK)
  python3 -c "
cpu=($after-$before)/$hz; q=$completed
print(f'$name: {float(\"$qps\"):,.0f} answers/s, {q:,} answered, $lost lost, {cpu*1e6/q:.1f} µs CPU per answer ({cpu:.2f} s CPU)')"
}

# ipx
DATA=$WORK/ipx-data
"$BIN" --data-dir "$DATA" team create bench >/dev/null
"$BIN" --data-dir "$DATA" zone import "$ZF" --team bench >/dev/null
IPX_DEMO_ENABLED=false IPX_RRL_ENABLED=false taskset -c 1 "$BIN" --data-dir "$DATA" serve --dns-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
  2>"$WORK/ipx.log" >/dev/null &
IPX_PID=$!
PIDS+=("$IPX_PID")
for _ in $(seq 100); do grep -q "serving" "$WORK/ipx.log" 2>/dev/null && break; sleep 0.1; done
PORT=$(sed -n 's/.*dns listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$WORK/ipx.log")
echo "zone: $NAMES names ($(grep -c ' IN ' "$ZF") records); ${SECONDS_}s per run; server on core 1, dnsperf on core 0"
run ipx "$IPX_PID" "$PORT"

if [ "$KNOT" = 1 ]; then
  KD=$WORK/knot
  mkdir -p "$KD"
  cp "$ZF" "$KD/"
  KPORT=$((PORT + 1))
  cat >"$KD/knot.conf" <<KNOT
server:
    listen: 127.0.0.1@$KPORT
    rundir: $KD
    background-workers: 1
    udp-workers: 1
    tcp-workers: 1
database:
    storage: $KD
template:
  - id: default
    storage: $KD
    file: "%s.zone"
zone:
  - domain: $ZONE
log:
  - target: stderr
    any: warning
KNOT
  taskset -c 1 knotd -c "$KD/knot.conf" 2>"$KD/knot.log" &
  KPID=$!
  PIDS+=("$KPID")
  for _ in $(seq 50); do kdig +short @127.0.0.1 -p "$KPORT" "$ZONE" SOA >/dev/null 2>&1 && break; sleep 0.1; done
  run knot "$KPID" "$KPORT"
fi
