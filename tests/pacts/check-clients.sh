#!/usr/bin/env bash
# Checks the broker pact against the real clients, without Envoy: starts `pact stub` on the
# broker pact, runs each `pact broker` command and the `pact verifier` replay against it, and
# fails on the first command that does not exit 0 (printing the stub's log of what it could
# not match). Usage: tests/pacts/check-clients.sh [path/to/pact]   (default: .venv/bin/pact)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pact=${1:-${PACT_BIN:-$here/../../.venv/bin/pact}}
work=$(mktemp -d)
export PACT_DO_NOT_TRACK=true
unset PACT_BROKER_BASE_URL PACT_BROKER_USERNAME PACT_BROKER_PASSWORD PACT_BROKER_TOKEN

"$pact" stub --file "$here/pact-broker-api.json" --loglevel debug >"$work/stub.log" 2>&1 &
stub=$!
trap 'kill $stub 2>/dev/null; wait $stub 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  port=$(sed -n 's/.*Server started on port \([0-9]*\).*/\1/p' "$work/stub.log" | head -1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "pact stub did not start:"; cat "$work/stub.log"; exit 1; }
broker=http://127.0.0.1:$port

mkdir "$work/consumer"
cat >"$work/consumer/Foo-Bar.json" <<'PACT'
{"consumer":{"name":"Foo"},"provider":{"name":"Bar"},
 "interactions":[{"description":"a request for the thing","request":{"method":"GET","path":"/thing"},
   "response":{"status":200,"headers":{"Content-Type":"application/json"},"body":{"id":1}}}],
 "metadata":{"pactSpecification":{"version":"2.0.0"}}}
PACT

run() {
  echo "--- pact $*"
  if ! "$pact" "$@"; then
    echo "FAILED: pact $*"; echo "--- stub log (end)"; tail -60 "$work/stub.log"; exit 1
  fi
}
b=(--broker-base-url "$broker" --retries 0)
run broker publish "$work/consumer" --consumer-app-version 1.0.0 --branch main "${b[@]}"
run broker create-or-update-version --pacticipant Foo --version 1.0.0 --branch main "${b[@]}"
run broker create-environment --name production "${b[@]}"
run broker list-environments "${b[@]}"
run broker record-deployment --pacticipant Foo --version 1.0.0 --environment production "${b[@]}"
run broker can-i-deploy --pacticipant Foo --version 1.0.0 --to-environment production "${b[@]}"
run broker describe-version --pacticipant Foo --version 1.0.0 "${b[@]}"
run broker list-latest-pact-versions "${b[@]}"
run verifier --file "$here/broker-client-replay.json" --hostname 127.0.0.1 --port "$port" --no-colour
echo "all broker clients succeeded against the broker pact"
