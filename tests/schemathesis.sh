#!/usr/bin/env bash
# Checks the collector against its own OpenAPI document with schemathesis (pinned in
# tests/requirements.txt): a collector on a free port with a temporary database and a few
# events, then `st run` on /audit/openapi.json with the read token. Passes when no request
# gets a 5xx and every response matches the document (status, content type, schema).
# Run by `make test` after the build; `COLLECTOR=path` picks another binary.
set -euo pipefail
cd "$(dirname "$0")/.."

COLLECTOR=${COLLECTOR:-target/debug/audit-collector}
ST=$(pwd)/.venv/bin/st
READ_TOKEN=schemathesis-read-token
INGEST_TOKEN=schemathesis-ingest-token
WORK=$(mktemp -d)
COLLECTOR_PID=

cleanup() {
    if [[ -n "$COLLECTOR_PID" ]]; then kill "$COLLECTOR_PID" 2>/dev/null || true; wait "$COLLECTOR_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

AUDIT_TOKEN=$READ_TOKEN AUDIT_INGEST_TOKEN=$INGEST_TOKEN RUST_LOG=warn \
    "$COLLECTOR" serve --listen 127.0.0.1:0 --address-file "$WORK/address" --database "$WORK/audit.db" \
    2>"$WORK/collector.log" &
COLLECTOR_PID=$!
for _ in $(seq 1 100); do [[ -s "$WORK/address" ]] && break; sleep 0.1; done
ADDRESS=$(cat "$WORK/address")

# A few events, so pages, filters and `from` have something to find.
.venv/bin/python - "$ADDRESS" "$INGEST_TOKEN" <<'PY'
import json, sys, urllib.request
address, token = sys.argv[1], sys.argv[2]
events = [{
    "uuid": f"schemathesis{n:04d}AAAAAAAAA"[:22], "timestamp": f"2030-01-02T03:04:{n:02d}.000+00:00",
    "type": "PactBroker::Api::Resources::Pact", "db_user_id": n, "user_email": f"u{n}@example.com",
    "payload": {"path": "/pacts", "queryString": "", "method": "GET", "userAgent": "st", "referer": None,
                "params": {"resource_name": "pacts"}},
    "response": {"status": 200, "durationMs": 1.0, "outcome": "success"},
} for n in range(5)]
request = urllib.request.Request(f"http://{address}/v1/events", data=json.dumps({"events": events}).encode(),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
print("seeded:", urllib.request.urlopen(request).read().decode())
PY

status=0
# From the temporary folder, so schemathesis leaves its reports there, not in the checkout.
cd "$WORK"
"$ST" run "http://$ADDRESS/audit/openapi.json" \
    --header "Authorization: Bearer $READ_TOKEN" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --exclude-path /v1/events \
    --max-examples 50 --seed 20300102 --generation-database none \
    || status=$?
if [[ $status -ne 0 ]]; then
    echo "schemathesis failed; the collector's log:" >&2
    tail -n 40 collector.log >&2
fi
exit $status
