#!/usr/bin/env python3
"""`make test`'s check of the SIEM exports: a collector on a free port with a temporary database
receives a generated trail (trail.py: hundreds of varied events, delivery gaps among them);
`audit-collector tail --exit-at-end` then writes it as native, OCSF and ECS lines, and every
OCSF and ECS line is validated against the published schemas (validate_export.py), including
that each carries every value of its native event, and any record of tail's own (a signed
checkpoint: the collector signs one every second here).

Then the same for events no ingest accepts, served by a stand-in `/audit` on a free port (as
PactFlow's own API or a collector would serve them): PactFlow's events without any addition,
the records the collector writes itself (sender gaps, stopped and resumed senders), events
with their sender's number.

Before that, a control: records broken on purpose (a required attribute removed, a port in a
host name, a field outside ECS and our namespace, a lost value) must be rejected, so a checker
that accepts everything cannot pass.

Prints the counts per format; exits non-zero on any invalid line or failed control.
"""

import copy
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import trail  # noqa: E402
from validate_export import DEFAULT_ECS_FIELDS, read_natives, record_uuid, rules_for, validate_lines  # noqa: E402

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTOR = os.environ.get("COLLECTOR", os.path.join(REPOSITORY, "target", "debug", "audit-collector"))
EVENTS = 400
SERVED_ONLY = 150
READ_TOKEN = "siem-export-read-token"
INGEST_TOKEN = "siem-export-ingest-token"


def start_collector(work):
    address_file = os.path.join(work, "address")
    log = open(os.path.join(work, "collector.log"), "w")
    environment = dict(os.environ, AUDIT_TOKEN=READ_TOKEN, AUDIT_INGEST_TOKEN=INGEST_TOKEN, RUST_LOG="warn")
    process = subprocess.Popen(
        [COLLECTOR, "serve", "--listen", "127.0.0.1:0", "--address-file", address_file,
         "--database", os.path.join(work, "audit.db"), "--checkpoint-interval-secs", "1"],
        env=environment, stdout=log, stderr=log)
    for _ in range(200):
        if os.path.exists(address_file) and os.path.getsize(address_file):
            with open(address_file) as file:
                return process, file.read().strip()
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"the collector did not start; its log:\n{open(log.name).read()}")


def serve_audit(events):
    """A stand-in `GET /audit` with the read token: pages of 100 from `from` (inclusive),
    `_links.next` while events remain. Returns the server; its address is `server_address`."""

    class AuditPages(BaseHTTPRequestHandler):
        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/audit" or self.headers.get("Authorization") != f"Bearer {READ_TOKEN}":
                self.send_error(404 if url.path != "/audit" else 401)
                return
            query = dict(urllib.parse.parse_qsl(url.query))
            uuids = [event["uuid"] for event in events]
            start = uuids.index(query["from"]) if "from" in query else 0
            page = events[start:start + 100]
            links = {"self": {"href": f"http://{self.headers['Host']}{self.path}"}}
            if start + 100 < len(events):
                links["next"] = {"href": f"http://{self.headers['Host']}/audit?from={uuids[start + 100]}"}
            body = json.dumps({"events": page, "_links": links}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/hal+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), AuditPages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def ingest(address, events):
    for start in range(0, len(events), 100):
        body = json.dumps({"events": events[start:start + 100]}).encode()
        request = urllib.request.Request(
            f"http://{address}/v1/events", data=body,
            headers={"Authorization": f"Bearer {INGEST_TOKEN}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            if response.status // 100 != 2:
                raise RuntimeError(f"ingest answered {response.status}")


def wait_for_checkpoint(address, seconds=15):
    """Waits (bounded) until the collector has signed a checkpoint, so that the records tail
    writes for checkpoints are in the stream and validated too. `True` when there is one."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        request = urllib.request.Request(f"http://{address}/audit/checkpoints",
                                         headers={"Authorization": f"Bearer {READ_TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            if json.load(response).get("checkpoints"):
                return True
        time.sleep(0.2)
    return False


def tail(address, format_name, work, source):
    output = os.path.join(work, f"{source}-{format_name}.ndjson")
    with open(output, "w") as file:
        subprocess.run(
            [COLLECTOR, "tail", "--url", f"http://{address}", "--token", READ_TOKEN, "--format", format_name,
             "--exit-at-end"],
            stdout=file, stderr=subprocess.PIPE, check=True, timeout=120)
    return output


def controls(rules, format_name, lines, natives):
    """Records broken on purpose; returns the ones the checker wrongly accepted."""
    # The first line of an event of the trail (tail may also write records of its own).
    record = next(record for record in map(json.loads, lines) if record_uuid(record) in natives)
    broken = []
    if format_name == "ocsf":
        without_actor = copy.deepcopy(record)
        without_actor.pop("actor", None)
        port_in_host = copy.deepcopy(record)
        port_in_host.setdefault("dst_endpoint", {})["hostname"] = "broker.example:9292"
        wrong_caption = copy.deepcopy(record)
        wrong_caption["severity"] = "Critical"
        broken += [("actor removed", without_actor), ("port in a host name", port_in_host),
                   ("severity caption wrong", wrong_caption)]
    else:
        foreign = copy.deepcopy(record)
        foreign["params"] = {"x": "y"}
        port_in_domain = copy.deepcopy(record)
        port_in_domain.setdefault("url", {})["domain"] = "broker.example:9292"
        no_version = copy.deepcopy(record)
        no_version.pop("ecs", None)
        broken += [("field outside ECS and our namespace", foreign), ("port in url.domain", port_in_domain),
                   ("ecs.version removed", no_version)]
    value_lost = copy.deepcopy(record)
    uuid = record_uuid(record)
    value_lost.pop("unmapped" if format_name == "ocsf" else "audit_sidecar", None)
    if natives[uuid].get("payload", {}).get("params"):
        broken.append(("extension fields removed", value_lost))
    accepted = []
    for name, record in broken:
        _, valid, _ = validate_lines(format_name, [json.dumps(record)], rules, natives)
        if valid:
            accepted.append(name)
    return accepted


def check_trail(source, address, events, work, failures, totals):
    """Tails the trail at `address` in every format and validates every OCSF and ECS line
    (the events, and any other record tail writes into the stream)."""
    natives = read_natives(tail(address, "native", work, source))
    missing = {event["uuid"] for event in events} - set(natives)
    if missing:
        failures.append(f"{source}: tail did not write {len(missing)} of the {len(events)} events, e.g. {sorted(missing)[:3]}")
    event_count = len(events)
    for format_name in ["ocsf", "ecs"]:
        try:
            rules = rules_for(format_name, os.environ.get("ECS_FIELDS", DEFAULT_ECS_FIELDS))
        except FileNotFoundError as error:
            failures.append(f"{format_name}: NOT VALIDATED: {error}")
            continue
        with open(tail(address, format_name, work, source), encoding="utf-8") as file:
            lines = [line for line in file if line.strip()]
        accepted = controls(rules, format_name, lines, natives)
        if accepted:
            failures.append(f"{format_name}: the checker accepted records broken on purpose: {accepted}")
        checked, valid, reports = validate_lines(format_name, lines, rules, natives)
        for report in reports[:20]:
            print(report)
        totals["checked"] += checked
        totals["valid"] += valid
        gaps = sum(1 for event in natives.values() if isinstance(event.get("gap"), dict))
        print(f"{format_name} ({source}): {checked} records checked, {valid} valid ({gaps} gap records among them)")
        if checked < event_count or valid != checked:
            failures.append(f"{format_name} ({source}): {checked - valid} of {checked} records invalid "
                            f"({event_count} events in the trail)")


def main():
    failures = []
    totals = {"checked": 0, "valid": 0}
    with tempfile.TemporaryDirectory() as work:
        process, address = start_collector(work)
        try:
            events = trail.generate(EVENTS)
            ingest(address, events)
            if not wait_for_checkpoint(address):
                print("note: the collector signed no checkpoint in time; no checkpoint record was checked")
            check_trail("collector", address, events, work, failures, totals)
        finally:
            process.terminate()
            process.wait(timeout=30)
        served = trail.served_only(SERVED_ONLY)
        server = serve_audit(served)
        try:
            host, port = server.server_address[:2]
            check_trail("served", f"{host}:{port}", served, work, failures, totals)
        finally:
            server.shutdown()
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    print(f"exports: {totals['valid']} passed, {totals['checked'] - totals['valid']} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
