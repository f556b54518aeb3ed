#!/usr/bin/env bash
# A zone of a million records in ipx and in Knot, side by side: the import's peak memory and
# time, start-up time until the zone is answered, resident memory serving it, what one edit
# costs in it compared with a 10-record zone (API round trip, and the snapshot's share), and
# the same zone imported again, under another name, into the running server.
#
#   bash benches/million.sh [--records 1000000] [--edits 50]
#   bash benches/million.sh --smoke      # 20,000 records: proves the script works (CI)
#
# Needs: knot, dnsutils (dig), python3. The servers are not pinned: start-up and memory are
# what is measured, not throughput.
set -euo pipefail
cd "$(dirname "$0")/.."

RECORDS=1000000 EDITS=50
while [ $# -gt 0 ]; do
  case "$1" in
    --records) RECORDS=$2; shift 2 ;;
    --edits) EDITS=$2; shift 2 ;;
    --smoke) RECORDS=20000 EDITS=5; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v knotd >/dev/null || { echo "knot is not installed: apt-get install knot" >&2; exit 2; }

if [ -z "${IPX_BIN:-}" ]; then cargo build --release --quiet; fi
BIN=${IPX_BIN:-$PWD/target/release/ipx}
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mib() { awk -v k="$2" '$1 == k":" {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
now() { date +%s.%N; }
# wait_answer PORT NAME: until NAME A is answered (NOERROR with an answer), at most 600 s.
wait_answer() {
  for _ in $(seq 6000); do
    dig +short +tries=1 +time=1 @127.0.0.1 -p "$1" "$2" A 2>/dev/null | grep -q . && return 0
    sleep 0.1
  done
  echo "no answer for $2 on port $1" >&2
  return 1
}

ZONE=million.test
ZF=$WORK/$ZONE.zone
python3 - "$ZONE" "$RECORDS" >"$ZF" <<'PY'
import sys
zone, n = sys.argv[1], int(sys.argv[2])
out = [f"$ORIGIN {zone}.", "$TTL 300", "@ IN SOA ns1.ipx.test. hostmaster.ipx.test. 1 7200 3600 1209600 300",
       "@ IN NS ns1.ipx.test.", "@ IN NS ns2.ipx.test."]
for i in range(n - 1):
    out.append(f"h{i} IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
print("\n".join(out))
PY
LAST="h$((RECORDS - 2)).$ZONE"
echo "zone: $RECORDS records ($(du -m "$ZF" | cut -f1) MiB of zone file)"

# --- ipx: import (the operator command, server not running), start, serve, edit --------
DATA=$WORK/ipx
export IPX_DEMO_ENABLED=false IPX_LIMITS_RECORDS_PER_ZONE=$((RECORDS + 2 * EDITS + 100)) IPX_LIMITS_RECORDS_PER_TEAM=$((2 * RECORDS + 4 * EDITS + 1000))
"$BIN" --data-dir "$DATA" team create bench >/dev/null
TOKEN=$("$BIN" --data-dir "$DATA" token create --team bench --name bench | tail -n 1)
t0=$(now)
/usr/bin/time -f "%M" -o "$WORK/import.kib" "$BIN" --data-dir "$DATA" zone import "$ZF" --team bench >/dev/null
t1=$(now)
IMPORT_S=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
IMPORT_MIB=$(awk '{printf "%.0f", $1 / 1024}' "$WORK/import.kib")
DB_MIB=$(du -m "$DATA/ipx.redb" | cut -f1)

IPORT=$(free_port)
t0=$(now)
"$BIN" --data-dir "$DATA" serve --dns-listen "127.0.0.1:$IPORT" --api-listen 127.0.0.1:0 --metrics-listen '' \
  2>"$WORK/ipx.log" >/dev/null &
IPID=$!
PIDS+=("$IPID")
wait_answer "$IPORT" "$LAST"
t1=$(now)
IPX_START=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
sleep 1
IPX_RSS=$(mib "$IPID" VmRSS)
IPX_HWM=$(mib "$IPID" VmHWM)
API=$(sed -n 's/.*api listening on http:\/\/\([^ ]*\).*/\1/p' "$WORK/ipx.log")

# One edit: POST a record and wait for its answer, in the big zone and in a small one.
SMALL_ID=$(python3 - "$API" "$TOKEN" <<'PY'
import http.client, json, sys
api, token = sys.argv[1], sys.argv[2]
c = http.client.HTTPConnection(api)
c.request("POST", "/v1/zones", json.dumps({"name": "small.test"}), {"Authorization": "Bearer " + token, "Content-Type": "application/json"})
r = c.getresponse(); zone = json.loads(r.read())["data"]["id"]
for i in range(8):
    c.request("POST", f"/v1/zones/{zone}/records", json.dumps({"name": f"s{i}", "type": "A", "content": "192.0.2.1"}),
              {"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    c.getresponse().read()
print(zone)
PY
)
BIG_ID=$(python3 - "$API" "$TOKEN" "$ZONE" <<'PY'
import http.client, json, sys
api, token, zone = sys.argv[1:4]
c = http.client.HTTPConnection(api)
c.request("GET", "/v1/zones", headers={"Authorization": "Bearer " + token})
print(next(z["id"] for z in json.loads(c.getresponse().read())["data"] if z["name"] == zone))
PY
)
edit() {
  python3 - "$API" "$TOKEN" "$1" "$EDITS" <<'PY'
import http.client, json, statistics, sys, time
api, token, zone, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
c = http.client.HTTPConnection(api)
h = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
lat = []
for i in range(n):
    t = time.perf_counter()
    c.request("POST", f"/v1/zones/{zone}/records", json.dumps({"name": f"edit{i}", "type": "TXT", "content": f"edit {i}"}), h)
    r = c.getresponse(); r.read()
    assert r.status == 201, r.status
    lat.append(time.perf_counter() - t)
print(f"{statistics.median(lat) * 1000:.2f}")
PY
}
EDIT_SMALL=$(edit "$SMALL_ID")
EDIT_BIG=$(edit "$BIG_ID")
dig +short @127.0.0.1 -p "$IPORT" "edit0.$ZONE" TXT | grep -q edit || { echo "the edit is not answered" >&2; exit 1; }

# The same zone under another name, imported into the running server (the command goes to it
# over the admin socket): the server's peak while it loads, and what it holds afterwards.
sed "s/$ZONE\./live-$ZONE./" "$ZF" >"$WORK/live.zone"
t0=$(now)
"$BIN" --data-dir "$DATA" zone import "$WORK/live.zone" --team bench >/dev/null
t1=$(now)
LIVE_S=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
wait_answer "$IPORT" "h$((RECORDS - 2)).live-$ZONE"
sleep 1
LIVE_HWM=$(mib "$IPID" VmHWM)
LIVE_RSS=$(mib "$IPID" VmRSS)
kill "$IPID"
wait "$IPID" 2>/dev/null || true

# --- Knot: the same zone file ----------------------------------------------------------
KD=$WORK/knot
mkdir -p "$KD"
cp "$ZF" "$KD/"
KPORT=$(free_port)
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
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: $ZONE
log:
  - target: stderr
    any: warning
KNOT
t0=$(now)
knotd -c "$KD/knot.conf" 2>"$KD/knot.log" &
KPID=$!
PIDS+=("$KPID")
wait_answer "$KPORT" "$LAST"
t1=$(now)
KNOT_START=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
sleep 1
KNOT_RSS=$(mib "$KPID" VmRSS)

python3 - <<PY
n = $RECORDS
print()
print("| | ipx | Knot |")
print("|---|---|---|")
print(f"| start-up until the zone is answered | {$IPX_START} s | {$KNOT_START} s |")
print(f"| resident memory serving it | $IPX_RSS MiB ({$IPX_RSS * 1048576 / n:.0f} B/record; peak $IPX_HWM MiB) | $KNOT_RSS MiB ({$KNOT_RSS * 1048576 / n:.0f} B/record) |")
print(f"| import (ipx zone import, server stopped) | {$IMPORT_S} s, peak $IMPORT_MIB MiB ({$IMPORT_MIB / max($IPX_RSS, 1):.1f}x serving); database $DB_MIB MiB | - |")
print(f"| import into the running server | {$LIVE_S} s, server peak $LIVE_HWM MiB; $LIVE_RSS MiB afterwards, serving both zones | - |")
print(f"| one edit through the API, median of $EDITS | {$EDIT_BIG} ms ({n:,} records) vs {$EDIT_SMALL} ms (10 records): {$EDIT_BIG / $EDIT_SMALL:.2f}x | - |")
PY
