# Shared by the attack benchmarks: build, start `ipx serve` on port 0 pinned to core 1 with a
# team and a token, and measure a legitimate client. Sourced, not run.
#
# After start_ipx: $IPX_PID, $API (host:port), $DNS_PORT, $TOKEN, $WORK, $DATA.

set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet
BIN=${IPX_BIN:-$PWD/target/release/ipx} # IPX_BIN: another build, for a before/after figure
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

start_ipx() {
  cd "$WORK" # the binary's defaults, not the checkout's ./config.toml (another build may not know its keys)
  DATA=$WORK/data
  "$BIN" --data-dir "$DATA" team create bench >/dev/null
  TOKEN=$("$BIN" --data-dir "$DATA" token create --team bench --name legit | tail -n 1)
  # The legitimate client's team is not what is measured: its budget is out of the way.
  IPX_DEMO_ENABLED=false IPX_RRL_ENABLED=false IPX_RATE_LIMITS_READ_PER_MINUTE=1000000 "$@" taskset -c 1 "$BIN" --data-dir "$DATA" serve \
    --dns-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 2>"$WORK/ipx.log" >/dev/null &
  IPX_PID=$!
  PIDS+=("$IPX_PID")
  for _ in $(seq 100); do grep -q "serving" "$WORK/ipx.log" 2>/dev/null && break; sleep 0.1; done
  API=$(sed -n 's/.*api listening on http:\/\/\([^ ]*\).*/\1/p' "$WORK/ipx.log")
  DNS_PORT=$(sed -n 's/.*dns listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$WORK/ipx.log")
  "$BIN" --data-dir "$DATA" zone import /dev/stdin --team bench >/dev/null <<ZONE
\$ORIGIN bench.test.
@ 300 IN SOA ns1.ipx.test. hostmaster.ipx.test. 1 7200 3600 1209600 300
@ 300 IN NS ns1.ipx.test.
www 300 IN A 192.0.2.80
ZONE
}

# legit SECONDS: a legitimate client from its own address (127.0.0.2: an attacker's
# connections from 127.0.0.1 do not count against it), one request after another on one
# kept-alive connection (GET /v1/zones with the valid token) and one DNS query after another
# over UDP, each for SECONDS; prints p50/p99/max of both, in ms, and how many failed.
legit() {
  python3 - "$API" "$DNS_PORT" "$TOKEN" "$1" <<'PY'
import http.client, socket, struct, sys, threading, time
api, dns_port, token, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
host, port = api.rsplit(":", 1)
def pct(xs, p): xs = sorted(xs); return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000 if xs else float("nan")
res = {}
def http_client():
    lat, bad = [], 0
    end = time.time() + secs
    new = lambda: http.client.HTTPConnection(host, int(port), timeout=10, source_address=("127.0.0.2", 0))
    conn = new()
    while time.time() < end:
        t = time.perf_counter()
        try:
            conn.request("GET", "/v1/zones", headers={"Authorization": "Bearer " + token})
            r = conn.getresponse(); r.read()
            if r.status != 200: bad += 1
        except Exception:
            bad += 1; conn.close(); conn = new()
        lat.append(time.perf_counter() - t)
        time.sleep(0.005)
    res["api"] = (lat, bad)
def dns_client():
    q = struct.pack(">HHHHHH", 0x1234, 0, 1, 0, 0, 0) + b"\x03www\x05bench\x04test\x00" + struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2); s.bind(("127.0.0.2", 0))
    lat, bad = [], 0
    end = time.time() + secs
    while time.time() < end:
        t = time.perf_counter()
        try:
            s.sendto(q, ("127.0.0.1", dns_port)); s.recv(2048)
        except Exception:
            bad += 1
        lat.append(time.perf_counter() - t)
        time.sleep(0.002)
    res["dns"] = (lat, bad)
ts = [threading.Thread(target=http_client), threading.Thread(target=dns_client)]
[t.start() for t in ts]; [t.join() for t in ts]
for k in ("api", "dns"):
    lat, bad = res[k]
    print(f"  {k}: {len(lat)} requests, p50 {pct(lat, .5):.2f} ms, p99 {pct(lat, .99):.2f} ms, max {max(lat) * 1000:.1f} ms, {bad} failed")
PY
}

rss_mib() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
hwm_mib() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
