#!/usr/bin/env bash
# The API under load with wrk: durable record creates from 1 and from 32 concurrent clients
# (every 2xx checked against what the store then holds), and `GET …/records?limit=100` reads.
# The server is pinned to core 0 and wrk to core 1, so "one core" means one core.
#
#   bash benches/api_load.sh [--seconds 10] [--records 1000]
#   bash benches/api_load.sh --smoke    # seconds, not minutes: proves the script works (CI)
#   IPX_BIN=/path/to/ipx bash benches/api_load.sh    # that binary, no build
#
# Rate limits and per-team caps are raised for the run: they are what stops one tenant, and
# this measures the write and read paths behind them. Needs: wrk, python3, taskset.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=10 RECORDS=1000
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_EACH=$2; shift 2 ;;
    --records) RECORDS=$2; shift 2 ;;
    --smoke) SECONDS_EACH=1 RECORDS=200; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 2; }

if [ -z "${IPX_BIN:-}" ]; then cargo build --release --quiet; fi
BIN=${IPX_BIN:-$PWD/target/release/ipx}
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; sleep 0.3; rm -rf "$WORK"; }
trap cleanup EXIT

export IPX_DEMO_ENABLED=false IPX_LOG=warn \
  IPX_RATE_LIMITS_READ_PER_MINUTE=100000000 IPX_RATE_LIMITS_WRITE_PER_MINUTE=100000000 \
  IPX_LIMITS_RECORDS_PER_ZONE=5000000 IPX_LIMITS_RECORDS_PER_TEAM=5000000
DATA=$WORK/data
"$BIN" --data-dir "$DATA" team create bench >/dev/null
TOKEN=$("$BIN" --data-dir "$DATA" token create --team bench --name bench | tail -n 1)
IPX_LOG=info taskset -c 0 "$BIN" --data-dir "$DATA" serve --dns-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
  --metrics-listen '' 2>"$WORK/log" >/dev/null &
PID=$!
for _ in $(seq 600); do grep -q "api listening" "$WORK/log" 2>/dev/null && break; sleep 0.1; done
API=$(sed -n 's/.*api listening on http:\/\/\([^ ]*\).*/\1/p' "$WORK/log" | head -n 1)

# A zone for the writes and one of RECORDS records for the reads.
read -r WZONE RZONE < <(python3 - "$API" "$TOKEN" "$RECORDS" <<'PY'
import http.client, json, sys
api, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection(api)
h = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
def post(path, body):
    c.request("POST", path, json.dumps(body), h)
    r = c.getresponse(); data = json.loads(r.read())
    assert r.status in (200, 201), (r.status, data)
    return data["data"]
w = post("/v1/zones", {"name": "writes.test"})["id"]
r = post("/v1/zones", {"name": "reads.test"})["id"]
for start in range(0, n, 1000):
    post(f"/v1/zones/{r}/records/batch",
         {"creates": [{"name": f"h{i}", "type": "A", "content": f"10.0.{i >> 8 & 255}.{i & 255}"}
                      for i in range(start, min(n, start + 1000))]})
print(w, r)
PY
)

cat >"$WORK/create.lua" <<LUA
-- Each thread makes names of its own; statuses are counted per thread and summed at the end.
local threads = {}
local n = 0
function setup(thread)
  n = n + 1
  thread:set("tid", n)
  table.insert(threads, thread)
end
function init(args)
  run = args[1] -- names differ from run to run
  counter = 0
  created = 0
  other = 0
end
function request()
  counter = counter + 1
  local body = string.format('{"name":"w%s-%d-%d","type":"A","content":"192.0.2.%d","ttl":300}', run, tid, counter, counter % 250 + 1)
  return wrk.format("POST", "/v1/zones/$WZONE/records",
    {["Authorization"] = "Bearer $TOKEN", ["Content-Type"] = "application/json"}, body)
end
function response(status, headers, body)
  if status == 201 then created = created + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  local c, o = 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    o = o + t:get("other")
  end
  io.write(string.format("RESULT created=%d other=%d rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    c, o, summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
LUA

cat >"$WORK/read.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $TOKEN"
local bad = 0
function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
function done(summary, latency, requests)
  io.write(string.format("RESULT rps=%.0f p50_ms=%.2f p99_ms=%.2f non200=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status))
end
LUA

count_records() {
  python3 - "$API" "$TOKEN" "$WZONE" <<'PY'
import http.client, json, sys
api, token, zone = sys.argv[1:4]
c = http.client.HTTPConnection(api)
c.request("GET", f"/v1/zones/{zone}", headers={"Authorization": "Bearer " + token})
print(json.loads(c.getresponse().read())["data"]["record_count"])
PY
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
run() {
  local label=$1 threads=$2 conns=$3 script=$4 path=$5 before after t0 t1 out
  before=$(cpu_ticks); t0=$(date +%s.%N)
  out=$(taskset -c 1 wrk -t"$threads" -c"$conns" -d"${SECONDS_EACH}s" --timeout 10s -s "$script" "http://$API$path" \
    -- "$threads-$conns" | grep RESULT)
  after=$(cpu_ticks); t1=$(date +%s.%N)
  echo "$label: ${out#RESULT } server_cpu=$(python3 -c "print(f'{($after - $before) / 100 / ($t1 - $t0):.2f}')") cores"
  if [[ $out =~ created=([0-9]+) ]]; then CREATED=$((CREATED + BASH_REMATCH[1])); fi
}
CREATED=0

BASE=$(count_records)
run "creates, 1 client" 1 1 "$WORK/create.lua" /
run "creates, 32 clients" 2 32 "$WORK/create.lua" /
sleep 0.5
AFTER=$(count_records)
echo "records in the store: $BASE before, $AFTER after; $CREATED creates answered 201"
if [ $((AFTER - BASE)) -lt "$CREATED" ]; then
  echo "a create answered 201 is not in the store" >&2
  exit 1
fi
run "GET records?limit=100, 1 client" 1 1 "$WORK/read.lua" "/v1/zones/$RZONE/records?limit=100"
run "GET records?limit=100, 8 clients" 1 8 "$WORK/read.lua" "/v1/zones/$RZONE/records?limit=100"
