#!/usr/bin/env bash
# CPU per answer and throughput of ipx, NSD and Knot on the same zone and query mix, side by
# side in one run: each server pinned to core 1 with one UDP worker, dnsperf pinned to core 0,
# on loopback; CPU read from the server's own /proc/PID/stat (all its processes and threads).
# Rounds alternate between the servers so drift in the machine hits them alike.
#
#   bash benches/dnsperf.sh [--names 10000] [--seconds 10] [--rounds 2] [--servers "ipx nsd knot"]
#   bash benches/dnsperf.sh --smoke     # seconds, not minutes: proves the script works (CI)
#   METRICS_LISTEN= bash benches/dnsperf.sh --servers ipx   # ipx with metrics off (default on)
#
# Needs: dnsperf, nsd, knot (apt-get install dnsperf nsd knot). RRL is off for ipx, as NSD and
# Knot run without it.
set -euo pipefail
cd "$(dirname "$0")/.."

NAMES=10000 SECONDS_=10 ROUNDS=2 SERVERS="ipx nsd knot"
while [ $# -gt 0 ]; do
  case "$1" in
    --names) NAMES=$2; shift 2 ;;
    --seconds) SECONDS_=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --servers) SERVERS=$2; shift 2 ;;
    --smoke) NAMES=200 SECONDS_=1 ROUNDS=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
for s in $SERVERS; do
  case $s in
    ipx) ;;
    nsd) command -v nsd >/dev/null || { echo "nsd is not installed: apt-get install nsd" >&2; exit 2; } ;;
    knot) command -v knotd >/dev/null || { echo "knot is not installed: apt-get install knot" >&2; exit 2; } ;;
    *) echo "unknown server $s" >&2; exit 2 ;;
  esac
done

cargo build --release --quiet
BIN=$PWD/target/release/ipx
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.2; rm -rf "$WORK"; }
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

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The server's processes: the one started and its children (NSD forks its workers).
family() { echo "$1" $(pgrep -P "$1" || true); }
cpu_ticks() { local t=0; for p in $(family "$1"); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $t; }
rss_kib() { local t=0; for p in $(family "$1"); do t=$((t + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status"))); done; echo $t; }

start_ipx() {
  local data=$WORK/ipx-data
  "$BIN" --data-dir "$data" team create bench >/dev/null
  "$BIN" --data-dir "$data" zone import "$ZF" --team bench >/dev/null
  IPX_DEMO_ENABLED=false IPX_RRL_ENABLED=false IPX_DNS_UDP_THREADS=1 taskset -c 1 "$BIN" --data-dir "$data" serve \
    --dns-listen "127.0.0.1:$1" --api-listen 127.0.0.1:0 --metrics-listen "${METRICS_LISTEN-127.0.0.1:0}" 2>"$WORK/ipx.log" >/dev/null &
  echo $!
}

start_nsd() {
  local d=$WORK/nsd; mkdir -p "$d"; cp "$ZF" "$d/"
  cat >"$d/nsd.conf" <<NSD
server:
    ip-address: 127.0.0.1@$1
    server-count: 1
    minimal-responses: yes
    username: ""
    chroot: ""
    zonesdir: "$d"
    pidfile: "$d/nsd.pid"
    xfrdfile: "$d/xfrd.state"
    zonelistfile: "$d/zone.list"
    database: ""
    logfile: "$d/nsd.log"
    verbosity: 0
remote-control:
    control-enable: no
zone:
    name: $ZONE
    zonefile: $ZONE.zone
NSD
  taskset -c 1 nsd -d -c "$d/nsd.conf" 2>>"$d/nsd.log" &
  echo $!
}

start_knot() {
  local d=$WORK/knot; mkdir -p "$d"; cp "$ZF" "$d/"
  cat >"$d/knot.conf" <<KNOT
server:
    listen: 127.0.0.1@$1
    rundir: $d
    background-workers: 1
    udp-workers: 1
    tcp-workers: 1
database:
    storage: $d
template:
  - id: default
    storage: $d
    file: "%s.zone"
zone:
  - domain: $ZONE
log:
  - target: stderr
    any: warning
KNOT
  taskset -c 1 knotd -c "$d/knot.conf" 2>"$d/knot.log" &
  echo $!
}

declare -A PID PORT
for s in $SERVERS; do
  PORT[$s]=$(free_port)
  PID[$s]=$("start_$s" "${PORT[$s]}")
  PIDS+=("${PID[$s]}")
  for _ in $(seq 100); do
    dig +short +tries=1 +time=1 @127.0.0.1 -p "${PORT[$s]}" "$ZONE" SOA 2>/dev/null | grep -q . && break
    sleep 0.1
  done
done

# measure SERVER MODE: one dnsperf run; appends "server mode qps cpu_us lost" to $WORK/results.
measure() {
  local s=$1 mode=$2 pid=${PID[$1]} port=${PORT[$1]} clients=4 extra=""
  if [ "$mode" = tcp ]; then clients=8; extra="-m tcp"; fi
  dnsperf -s 127.0.0.1 -p "$port" $extra -d "$QF" -l 1 -c "$clients" -q 200 >/dev/null 2>&1 || true # warm-up
  local before after out
  before=$(cpu_ticks "$pid")
  out=$(taskset -c 0 dnsperf -s 127.0.0.1 -p "$port" $extra -d "$QF" -l "$SECONDS_" -c "$clients" -q 200 2>&1)
  after=$(cpu_ticks "$pid")
  local completed lost qps
  completed=$(echo "$out" | awk '/Queries completed:/ {print $3}')
  lost=$(echo "$out" | awk '/Queries lost:/ {print $3}')
  qps=$(echo "$out" | awk '/Queries per second:/ {print $4}')
  python3 -c "
hz=$(getconf CLK_TCK); cpu=($after-$before)/hz; q=max($completed,1)
print('$s $mode', float('$qps'), cpu*1e6/q, $lost)" >>"$WORK/results"
}

echo "zone: $NAMES names ($(grep -c ' IN ' "$ZF") records), ${SECONDS_}s per run, $ROUNDS rounds;"
echo "servers on core 1 (one UDP worker each), dnsperf on core 0 (UDP: 4 clients, TCP: 8 connections)"
for ((r = 0; r < ROUNDS; r++)); do
  for mode in udp tcp; do
    for s in $SERVERS; do measure "$s" "$mode"; done
  done
done
for s in $SERVERS; do echo "$s rss $(rss_kib "${PID[$s]}")" >>"$WORK/results"; done

python3 - "$WORK/results" "$SERVERS" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list); rss = {}
for line in open(sys.argv[1]):
    f = line.split()
    if f[1] == "rss": rss[f[0]] = int(f[2]); continue
    rows[(f[0], f[1])].append((float(f[2]), float(f[3]), int(f[4])))
servers = sys.argv[2].split()
med = lambda v: statistics.median(v)
def fig(s, m):
    v = rows[(s, m)]
    return med([x[0] for x in v]), med([x[1] for x in v]), sum(x[2] for x in v)
print()
print("| server | UDP answers/s | UDP CPU µs/answer | lost | TCP answers/s | TCP CPU µs/answer | RSS |")
print("|---|---|---|---|---|---|---|")
for s in servers:
    uq, uc, ul = fig(s, "udp"); tq, tc, _ = fig(s, "tcp")
    print(f"| {s} | {uq:,.0f} | {uc:.2f} | {ul} | {tq:,.0f} | {tc:.2f} | {rss[s] / 1024:.0f} MiB |")
if "ipx" in servers:
    print()
    for s in servers:
        if s == "ipx": continue
        uq, uc, _ = fig(s, "udp"); tq, tc, _ = fig(s, "tcp")
        iq, ic, _ = fig("ipx", "udp"); jq, jc, _ = fig("ipx", "tcp")
        print(f"ipx / {s}: UDP CPU per answer {ic / uc:.2f}x, UDP answers/s {iq / uq:.2f}x, TCP CPU per answer {jc / tc:.2f}x")
PY
