#!/usr/bin/env bash
# Property-based checks of the running API against its own OpenAPI document: no 5xx, every
# status code documented, every response body and header as the schema says.
#   bash tests/api/schemathesis.sh [path/to/ipx]      (needs: pip install schemathesis)
set -euo pipefail
BIN=$(realpath "${1:-target/debug/ipx}")
WORK=$(mktemp -d)
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
cd "$WORK"
# The simulated issuer: SSL requests made by the fuzzer must not reach a real CA.
IPX_ACME_ISSUER=simulated \
IPX_RATE_LIMITS_READ_PER_MINUTE=1000000 IPX_RATE_LIMITS_WRITE_PER_MINUTE=1000000 IPX_RATE_LIMITS_PROVISION_PER_MINUTE=1000000 \
  "$BIN" --data-dir "$WORK/data" serve --dns-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 >out.txt 2>err.txt &
PID=$!
for _ in $(seq 100); do grep -q "serving" err.txt 2>/dev/null && break; sleep 0.1; done
API=$(sed -n 's/.*api listening on \(http:[^ ]*\).*/\1/p' err.txt)
TOKEN=$(grep '^ipxapi_' out.txt || true)
if [ -z "$API" ] || [ -z "$TOKEN" ]; then
  echo "the server did not start:" >&2
  cat err.txt >&2
  exit 1
fi
schemathesis run "$API/v1/openapi.json" --url "$API" -H "Authorization: Bearer $TOKEN" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
  --phases examples,fuzzing --max-examples 50 --workers 2 --seed 1 --no-color
