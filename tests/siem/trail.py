"""A generated audit trail for checking the SIEM exports: events in every shape the trail can
hold, drawn from a seeded random generator (the same trail on every run, none hand-picked).

Every method (the broker's and others), every response status the proxy sees (200-503) and
none (status 0: the stream ended without a response), PactFlow-shaped events without any
audit-sidecar addition, each identity field present or absent (an email that is no email
address too), referer, query string, path parameters, client address (IPv4, IPv6, absent),
host with and without a port, request ids, text that needs JSON escaping, untrusted identity
headers with their alert, truncated fields, and the filter's delivery-gap events.
"""

import base64
import random

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"]
STATUSES = [200, 201, 202, 204, 301, 302, 304, 400, 401, 403, 404, 405, 409, 415, 422, 429, 500, 502, 503, 0]
TYPES = [
    ("PactBroker::Api::Resources::Pacticipant", "/pacticipants/{pacticipant_name}"),
    ("PactBroker::Api::Resources::Version", "/pacticipants/{pacticipant_name}/versions/{pacticipant_version_number}"),
    ("PactBroker::Api::Resources::Tag", "/pacticipants/{pacticipant_name}/versions/{pacticipant_version_number}/tags/{tag_name}"),
    ("PactBroker::Api::Resources::Pact", "/pacts/provider/{provider_name}/consumer/{consumer_name}/latest"),
    ("PactBroker::Api::Resources::Index", "/"),
    ("SaasBroker::Api::Resources::RegenerateApiToken", "/settings/tokens/{token_uuid}/regenerate"),
]
NAMES = ["Foo", "Bar Service", "naïve-ünïcode", 'quote"and\\backslash', "a/b"]
OFFSETS = ["+00:00", "+11:00", "-05:30", "+01:00"]
DELIVERY_GAP_TYPE = "AuditSidecar::DeliveryGap"


def _uuid(rng):
    return base64.urlsafe_b64encode(rng.randbytes(16)).rstrip(b"=").decode()


def _timestamp(rng, second, offset=None):
    offset = offset or rng.choice(OFFSETS)
    return f"2026-11-{1 + second // 86400 % 28:02d}T{second // 3600 % 24:02d}:{second // 60 % 60:02d}:{second % 60:02d}.{rng.randrange(1000):03d}{offset}"


def _maybe(rng, value, chance=0.5):
    return value if rng.random() < chance else None


def request_event(rng, n):
    event_type, template = rng.choice(TYPES)
    params = {"resource_name": event_type.rsplit("::", 1)[-1].lower()}
    path = template
    for name in [part[1:-1] for part in template.split("/") if part.startswith("{")]:
        params[name] = rng.choice(NAMES)
        path = path.replace("{" + name + "}", params[name].replace("/", "%2F"))
    pactflow_shaped = rng.random() < 0.1
    event = {
        "uuid": _uuid(rng),
        "timestamp": _timestamp(rng, n * 7),
        "type": event_type,
        "db_user_id": _maybe(rng, rng.randrange(1, 10_000)),
        "user_email": _maybe(rng, rng.choice(["bob@example.com", "ops+audit@mail.example.org", "not-an-email"])),
        "payload": {
            "path": path,
            "queryString": rng.choice(["", "", "page=2", "q=a%20b&size=10", "token=%2A%2A%2A"]),
            "method": METHODS[n % len(METHODS)],
            "userAgent": _maybe(rng, rng.choice(["curl/8.5.0", "pact_broker-client/1.75", "Mozilla/5.0 (X11; Linux) \"quoted\""]), 0.8),
            "referer": _maybe(rng, "https://broker.example/pacticipants?name=Foo", 0.3),
            "params": params,
        },
    }
    if pactflow_shaped:
        return event
    status = STATUSES[(n // len(METHODS)) % len(STATUSES)]
    outcome = ("no_response" if status == 0 else "unauthenticated" if status == 401 else "forbidden" if status == 403
               else "client_error" if 400 <= status < 500 else "server_error" if status >= 500 else "success")
    event["payload"].update({
        "clientIp": _maybe(rng, rng.choice(["10.0.0.7", "192.168.1.20", "2001:db8::1", "::1"]), 0.85),
        "requestId": _maybe(rng, f"req-{n:05d}-{rng.randrange(16**8):08x}", 0.9),
        "host": _maybe(rng, rng.choice(["broker.example", "broker.example:9292", "127.0.0.1:10000", "[::1]:8080"]), 0.8),
    })
    event.update({
        "user_id": _maybe(rng, rng.choice([f"u-{n}", "auth0|5f7c8ec7c33c6c004bbafe82", "42"])),
        "user_name": _maybe(rng, rng.choice(["alice", "bob", "svc-ci"])),
        "identity_source": _maybe(rng, rng.choice(["jwt", "basic-auth", "header:x-forwarded-email"])),
        "token_fingerprint": _maybe(rng, f"{rng.randrange(16**16):016x}", 0.3),
        "response": {"status": status, "durationMs": round(rng.random() * 80, 3), "outcome": outcome},
    })
    # Trust markers from their own generator, so the rest of the trail stays as it was.
    trust = random.Random(n * 7919)
    if trust.random() < 0.15:
        event["untrusted_identity"] = [{"header": trust.choice(["x-forwarded-email", "x-forwarded-user"]),
                                        "value": trust.choice(["admin@example.com", "root", "ünïcode \"quoted\""])}]
        event["alerts"] = ["untrusted_identity_header"]
    if trust.random() < 0.1:
        event["payload"]["userAgent"] = "Mozilla/5.0 " + "x" * 40 + "…[truncated]"
        event["truncated_fields"] = [{"field": "payload.userAgent", "originalBytes": trust.randrange(2000, 20000)}]
    return event


def delivery_gap_event(rng, n):
    offset = rng.choice(OFFSETS)
    first = _timestamp(rng, n * 7 - 30, offset)
    return {
        "uuid": _uuid(rng),
        "timestamp": _timestamp(rng, n * 7, offset),
        "type": DELIVERY_GAP_TYPE,
        "db_user_id": None,
        "user_email": None,
        "payload": {"path": "", "queryString": "", "method": "", "userAgent": None, "referer": None, "params": {}},
        "gap": {"lostEvents": rng.randrange(1, 5000), "firstLostAt": first, "lastLostAt": _timestamp(rng, n * 7 - 1, offset)},
    }


def generate(count, seed=20261130):
    """`count` events, about one in twenty-five a delivery gap."""
    rng = random.Random(seed)
    return [delivery_gap_event(rng, n) if n % 25 == 24 else request_event(rng, n) for n in range(count)]


SENDER_RECORD_TYPES = [
    "AuditSidecar::SenderGap",
    "AuditSidecar::SenderStopped",
    "AuditSidecar::SenderResumed",
    "AuditSidecar::SenderFinished",
]


def collector_record(rng, n):
    """A record the collector writes itself (ingest refuses these types): a sender's numbers it
    never received, a sender that stopped (with the unknown window after its last heartbeat),
    a sender heard again, a sender that said it stopped and whose count is all there."""
    offset = rng.choice(OFFSETS)
    record_type = SENDER_RECORD_TYPES[(n // 3) % len(SENDER_RECORD_TYPES)]
    first_seq = rng.randrange(1, 10_000)
    lost = 0 if record_type.endswith(("Resumed", "Finished")) else rng.randrange(1, 500)
    gap = {"lostEvents": lost, "firstLostAt": _timestamp(rng, n * 7 - 40, offset),
           "lastLostAt": _timestamp(rng, n * 7 - 20, offset), "sender": _uuid(rng)}
    if lost:
        gap["seqs"] = [{"first": first_seq, "last": first_seq + lost - 1}]
    if record_type.endswith("Finished"):
        gap.update({"captured": first_seq, "delivered": first_seq, "lastHeardAt": _timestamp(rng, n * 7 - 10, offset)})
    if record_type.endswith("Stopped"):
        gap.update({"captured": first_seq + lost - 1, "delivered": first_seq - 1,
                    "lastHeardAt": _timestamp(rng, n * 7 - 10, offset), "unknownUntil": _timestamp(rng, n * 7 - 5, offset)})
    return {
        "uuid": _uuid(rng), "timestamp": _timestamp(rng, n * 7, offset), "type": record_type,
        "db_user_id": None, "user_email": None,
        "payload": {"path": "", "queryString": "", "method": "", "userAgent": None, "referer": None, "params": {}},
        "gap": gap,
    }


def served_only(count, seed=20261201):
    """Events that cannot be ingested, as another server's `/audit` would serve them: PactFlow's
    own events (no audit-sidecar key at all), the collector's own records, and events carrying
    their sender's number. Each has a `chain` link like the collector's."""
    rng = random.Random(seed)
    events = []
    for n in range(count):
        if n % 3 == 0:
            event = collector_record(rng, n)
        else:
            event = request_event(rng, n)
            if n % 3 == 1:
                event = {key: event[key] for key in ["uuid", "timestamp", "type", "db_user_id", "user_email"]} | {
                    "payload": {key: event["payload"][key] for key in
                                ["path", "queryString", "method", "userAgent", "referer", "params"]}}
            else:
                event["sender"] = {"id": _uuid(rng), "seq": n + 1}
        event["chain"] = {"seq": n + 1, "hash": f"{rng.randrange(16**64):064x}", "prevHash": f"{rng.randrange(16**64):064x}"}
        events.append(event)
    return events
