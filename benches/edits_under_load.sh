#!/usr/bin/env bash
# UDP answers/s while record edits land through the API, against the same run idle; every
# answer of a checker that asks alongside dnsperf is verified (the static names must keep
# their address, the edited names must hold one of the values written, never nothing).
# ipx is pinned to core 1 with one UDP thread; dnsperf, the editor and the checker to core 0.
#
#   bash benches/edits_under_load.sh [--edits-per-second 500] [--seconds 10] [--names 10000]
#   bash benches/edits_under_load.sh --smoke    # seconds, not minutes: proves the script works (CI)
#   IPX_BIN=/path/to/ipx bash benches/edits_under_load.sh    # that binary, no build
#
# Needs: dnsperf, python3, taskset.
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=500 SECONDS_=10 NAMES=10000
while [ $# -gt 0 ]; do
  case "$1" in
    --edits-per-second) RATE=$2; shift 2 ;;
    --seconds) SECONDS_=$2; shift 2 ;;
    --names) NAMES=$2; shift 2 ;;
    --smoke) RATE=50 SECONDS_=1 NAMES=200; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

if [ -z "${IPX_BIN:-}" ]; then cargo build --release --quiet; fi
BIN=${IPX_BIN:-$PWD/target/release/ipx}
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; sleep 0.3; rm -rf "$WORK"; }
trap cleanup EXIT

. benches/zone_mix.sh
ZONE=bench.test
gen_zone "$ZONE" "$NAMES" "$WORK/zone"
gen_queries "$ZONE" "$NAMES" 200000 "$WORK/queries"

export IPX_DEMO_ENABLED=false IPX_RRL_ENABLED=false IPX_DNS_UDP_THREADS=1 \
  IPX_RATE_LIMITS_WRITE_PER_MINUTE=100000000 IPX_RATE_LIMITS_READ_PER_MINUTE=100000000
DATA=$WORK/data
"$BIN" --data-dir "$DATA" team create bench >/dev/null
TOKEN=$("$BIN" --data-dir "$DATA" token create --team bench --name bench | tail -n 1)
"$BIN" --data-dir "$DATA" zone import "$WORK/zone" --team bench >/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
IPX_LOG=info taskset -c 1 "$BIN" --data-dir "$DATA" serve --dns-listen "127.0.0.1:$PORT" \
  --api-listen 127.0.0.1:0 --metrics-listen '' 2>"$WORK/log" >/dev/null &
PID=$!
for _ in $(seq 600); do grep -q "api listening" "$WORK/log" 2>/dev/null && break; sleep 0.1; done
API=$(sed -n 's/.*api listening on http:\/\/\([^ ]*\).*/\1/p' "$WORK/log" | head -n 1)
dig +short +tries=3 +time=2 -p "$PORT" @127.0.0.1 "$ZONE" SOA >/dev/null

dnsperf_qps() {
  taskset -c 0 dnsperf -s 127.0.0.1 -p "$PORT" -d "$WORK/queries" -l "$SECONDS_" -c 1 -q 200 -T 1 2>&1 |
    awk '/Queries per second:/ {printf "%.0f", $4} /Queries lost:/ {lost=$3} END {printf " lost=%s\n", lost}'
}

cat >"$WORK/load.py" <<'PY'
"""Edits at a steady rate from 16 threads (PATCH flipping a TXT record at one of 100 names),
and a checker asking static and edited names over UDP, every answer verified."""
import http.client, json, random, socket, struct, sys, threading, time

api, token, zone, port, rate, seconds, names = sys.argv[1:8]
port, rate, seconds, names = int(port), int(rate), float(seconds), int(names)
H = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
c = http.client.HTTPConnection(api)
c.request("GET", "/v1/zones", headers=H)
zid = next(z["id"] for z in json.loads(c.getresponse().read())["data"] if z["name"] == zone)
c.request("POST", f"/v1/zones/{zid}/records/batch", json.dumps(
    {"creates": [{"name": f"e{k}", "type": "TXT", "content": "v0"} for k in range(100)]}), H)
r = c.getresponse(); created = json.loads(r.read())["data"]
ids = [rec["id"] for rec in created["created"]]
stop = time.monotonic() + seconds
done, failed, lats = [0], [0], []
lock = threading.Lock()

def editor(n, per_thread):
    conn = http.client.HTTPConnection(api)
    next_at = time.monotonic()
    i = 0
    while time.monotonic() < stop:
        rid = ids[(n * 7 + i) % len(ids)]
        body = json.dumps({"content": f"v{i % 2 + 1}"})
        t = time.monotonic()
        conn.request("PATCH", f"/v1/zones/{zid}/records/{rid}", body, H)
        resp = conn.getresponse(); resp.read()
        with lock:
            lats.append(time.monotonic() - t)
            if resp.status == 200: done[0] += 1
            else: failed[0] += 1
        i += 1
        next_at += 1 / per_thread
        time.sleep(max(0, next_at - time.monotonic()))

def query(name, qtype):
    q = struct.pack(">HHHHHH", random.randrange(65536), 0, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", qtype, 1)

checked, wrong = [0], []
def checker():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    while time.monotonic() < stop:
        if random.random() < 0.5:
            i = random.randrange(names)
            name, qtype = f"host{i}.{zone}", 1
            want = {bytes([10, i >> 16 & 255, i >> 8 & 255, i & 255])}
        else:
            name, qtype = f"e{random.randrange(100)}.{zone}", 16
            want = {b"\x02v0", b"\x02v1", b"\x02v2"}
        s.sendto(query(name, qtype), ("127.0.0.1", port))
        try:
            a = s.recv(4096)
        except socket.timeout:
            continue  # a drop under load is dnsperf's "lost", not a wrong answer
        ancount = struct.unpack(">H", a[6:8])[0]
        rdata = a[-3:] if qtype == 16 else a[-4:]  # the answer is last: TXT "vN" or an A
        checked[0] += 1
        if a[3] & 0x0F != 0 or ancount != 1 or rdata not in want:
            wrong.append((name, a.hex()))
        time.sleep(0.002)

threads = [threading.Thread(target=editor, args=(n, rate / 16)) for n in range(16)]
threads.append(threading.Thread(target=checker))
for t in threads: t.start()
for t in threads: t.join()
lats.sort()
p = lambda q: lats[int(q * (len(lats) - 1))] * 1000 if lats else 0
print(f"edits: {done[0] / seconds:.0f}/s ({failed[0]} failed), PATCH p50 {p(0.5):.1f} ms p99 {p(0.99):.1f} ms; "
      f"answers checked: {checked[0]}, wrong: {len(wrong)}")
for w in wrong[:5]: print("  wrong:", w)
sys.exit(1 if wrong or failed[0] else 0)
PY

echo "idle:        $(dnsperf_qps) answers/s"
taskset -c 0 python3 "$WORK/load.py" "$API" "$TOKEN" "$ZONE" "$PORT" "$RATE" "$((SECONDS_ + 1))" "$NAMES" >"$WORK/load.out" &
LOAD=$!
sleep 0.5
echo "with edits:  $(dnsperf_qps) answers/s"
STATUS=0
wait "$LOAD" || STATUS=$?
cat "$WORK/load.out"
echo "idle again:  $(dnsperf_qps) answers/s"
exit "$STATUS"   # a wrong answer or a failed edit fails the run
