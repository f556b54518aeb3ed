#!/usr/bin/env bash
# CPU per answer and throughput of ipx, NSD and Knot on the same zone and query mix, side by
# side in one run: each server pinned to core 1 with one UDP worker, dnsperf pinned to core 0,
# on loopback; CPU read from the server's own /proc/PID/stat (all its processes and threads).
# Rounds alternate between the servers so drift in the machine hits them alike.
#
#   bash benches/dnsperf.sh [--names 10000] [--seconds 10] [--rounds 2] [--servers "ipx nsd knot"]
#   bash benches/dnsperf.sh --smoke     # seconds, not minutes: proves the script works (CI)
#   METRICS_LISTEN= bash benches/dnsperf.sh --servers ipx   # ipx with metrics off (default on)
#   bash benches/dnsperf.sh --cores 2   # two workers per server on both cores, dnsperf beside
#
# With --cores 2 the servers and dnsperf share both cores, so the rate is the client's limit;
# what it shows is whether CPU per answer stays flat with a second worker (nothing shared
# between ipx's UDP threads but the snapshot they read).
#
# Needs: dnsperf, nsd, knot (apt-get install dnsperf nsd knot). Response rate limiting is off in
# all three (NSD has it on by default; Knot's is off unless configured; ipx is told so).
set -euo pipefail
cd "$(dirname "$0")/.."

NAMES=10000 SECONDS_=10 ROUNDS=2 SERVERS="ipx nsd knot" CORES=1
while [ $# -gt 0 ]; do
  case "$1" in
    --names) NAMES=$2; shift 2 ;;
    --seconds) SECONDS_=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --servers) SERVERS=$2; shift 2 ;;
    --cores) CORES=$2; shift 2 ;;
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

# IPX_BIN=path measures that binary instead of building this tree's.
if [ -z "${IPX_BIN:-}" ]; then cargo build --release --quiet; fi
BIN=${IPX_BIN:-$PWD/target/release/ipx}
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.2; rm -rf "$WORK"; }
trap cleanup EXIT

. benches/zone_mix.sh
ZONE=bench.test
ZF=$WORK/$ZONE.zone
gen_zone "$ZONE" "$NAMES" "$ZF"
QF=$WORK/queries.txt
gen_queries "$ZONE" "$NAMES" 200000 "$QF"

case $CORES in
  1) SERVER_CPUS=1 CLIENT_CPUS=0 ;;
  2) SERVER_CPUS=0,1 CLIENT_CPUS=0,1 ;;
  *) echo "--cores is 1 or 2" >&2; exit 2 ;;
esac

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The server's processes: the one started and all its descendants (NSD forks xfrd, which
# forks main, which forks the servers).
descendants() { local p; for p in $(pgrep -P "$1" || true); do echo "$p"; descendants "$p"; done; }
family() { echo "$1" $(descendants "$1"); }
# utime + stime, read after the command name (NSD's names hold spaces: "nsd: server 1").
# "user system" ticks, summed over the family.
cpu_ticks() {
  local u=0 k=0 p f
  for p in $(family "$1"); do
    f=($(sed 's/.*) //' "/proc/$p/stat"))
    u=$((u + f[11])) k=$((k + f[12]))
  done
  echo "$u $k"
}
rss_kib() { local t=0; for p in $(family "$1"); do t=$((t + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status"))); done; echo $t; }

start_ipx() {
  local data=$WORK/ipx-data
  "$BIN" --data-dir "$data" team create bench >/dev/null
  "$BIN" --data-dir "$data" zone import "$ZF" --team bench >/dev/null
  IPX_DEMO_ENABLED=false IPX_RRL_ENABLED=false IPX_DNS_UDP_THREADS=$CORES taskset -c "$SERVER_CPUS" "$BIN" --data-dir "$data" serve \
    --dns-listen "127.0.0.1:$1" --api-listen 127.0.0.1:0 --metrics-listen "${METRICS_LISTEN-127.0.0.1:0}" 2>"$WORK/ipx.log" >/dev/null &
  STARTED=$!
}

start_nsd() {
  local d=$WORK/nsd; mkdir -p "$d"; cp "$ZF" "$d/"
  cat >"$d/nsd.conf" <<NSD
server:
    ip-address: 127.0.0.1@$1
    server-count: $CORES
    minimal-responses: yes
    rrl-ratelimit: 0
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
  taskset -c "$SERVER_CPUS" nsd -d -c "$d/nsd.conf" 2>>"$d/nsd.log" &
  STARTED=$!
}

start_knot() {
  local d=$WORK/knot; mkdir -p "$d"; cp "$ZF" "$d/"
  cat >"$d/knot.conf" <<KNOT
server:
    listen: 127.0.0.1@$1
    rundir: $d
    background-workers: 1
    udp-workers: $CORES
    tcp-workers: $CORES
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
  taskset -c "$SERVER_CPUS" knotd -c "$d/knot.conf" 2>"$d/knot.log" &
  STARTED=$!
}

declare -A PID PORT
for s in $SERVERS; do
  PORT[$s]=$(free_port)
  "start_$s" "${PORT[$s]}" # not in $(...): a subshell would run the EXIT trap
  PID[$s]=$STARTED
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
  out=$(taskset -c "$CLIENT_CPUS" dnsperf -s 127.0.0.1 -p "$port" $extra -d "$QF" -l "$SECONDS_" -c "$clients" -q 200 2>&1)
  after=$(cpu_ticks "$pid")
  local completed lost qps
  completed=$(echo "$out" | awk '/Queries completed:/ {print $3}')
  lost=$(echo "$out" | awk '/Queries lost:/ {print $3}')
  qps=$(echo "$out" | awk '/Queries per second:/ {print $4}')
  python3 -c "
hz=$(getconf CLK_TCK); b=[int(x) for x in '$before'.split()]; a=[int(x) for x in '$after'.split()]
q=max($completed,1); user=(a[0]-b[0])/hz; system=(a[1]-b[1])/hz
print('$s $mode', float('$qps'), (user+system)*1e6/q, $lost, user*1e6/q, system*1e6/q)" >>"$WORK/results"
}

echo "zone: $NAMES names ($(grep -c ' IN ' "$ZF") records), ${SECONDS_}s per run, $ROUNDS rounds;"
if [ "$CORES" = 1 ]; then
  echo "servers on core 1 (one UDP worker each), dnsperf on core 0 (UDP: 4 clients, TCP: 8 connections)"
else
  echo "servers on both cores (two UDP workers each), dnsperf beside them (UDP: 4 clients, TCP: 8 connections)"
fi
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
    rows[(f[0], f[1])].append((float(f[2]), float(f[3]), int(f[4]), float(f[5]), float(f[6])))
servers = sys.argv[2].split()
med = lambda v: statistics.median(v)
def fig(s, m):
    v = rows[(s, m)]
    return med([x[0] for x in v]), med([x[1] for x in v]), sum(x[2] for x in v)
def split(s, m):
    v = rows[(s, m)]
    return med([x[3] for x in v]), med([x[4] for x in v])
print()
print("| server | UDP answers/s | UDP CPU µs/answer (user + kernel) | lost | TCP answers/s | TCP CPU µs/answer (user + kernel) | RSS |")
print("|---|---|---|---|---|---|---|")
for s in servers:
    uq, uc, ul = fig(s, "udp"); tq, tc, _ = fig(s, "tcp")
    (uu, uk), (tu, tk) = split(s, "udp"), split(s, "tcp")
    print(f"| {s} | {uq:,.0f} | {uc:.2f} ({uu:.2f} + {uk:.2f}) | {ul} | {tq:,.0f} | {tc:.2f} ({tu:.2f} + {tk:.2f}) | {rss[s] / 1024:.0f} MiB |")
if "ipx" in servers:
    print()
    for s in servers:
        if s == "ipx": continue
        uq, uc, _ = fig(s, "udp"); tq, tc, _ = fig(s, "tcp")
        iq, ic, _ = fig("ipx", "udp"); jq, jc, _ = fig("ipx", "tcp")
        print(f"ipx / {s}: UDP CPU per answer {ic / uc:.2f}x, UDP answers/s {iq / uq:.2f}x, TCP CPU per answer {jc / tc:.2f}x")
PY
