"""What a `path_prefix` page of GET /audit costs on a long SQLite trail, beside an indexed
filter's page (`user_name`) on the same collector, alternating rounds: the prefix has no
index, so each page examines up to 2000 events (store/page.rs) and may come back short.

    BENCH_COLLECTOR=target/debug/audit-collector python3 bench/path_prefix_cost.py

A collector-made database is filled with BENCH_PATH_EVENTS (1,000,000) events by one
INSERT ... SELECT (synthetic bodies of ~300 bytes, random chain links: pages serve them, but
`verify` would not pass), 1 in 100 on `/pacticipants/Foo/...`, 50 user names. Then the
collector serves it and each round times, over HTTP, the first page of each query and the
first five pages that following `next` gives for the prefix. BENCH_PATH_ROUNDS (7). Wall
clock on whatever machine runs it (say how loaded it was); nothing is written to results.md."""
import json
import os
import statistics
import subprocess
import sqlite3
import tempfile
import time
import urllib.request
from pathlib import Path

from index_cost import collector_database

EVENTS = int(os.environ.get("BENCH_PATH_EVENTS", "1000000"))
ROUNDS = int(os.environ.get("BENCH_PATH_ROUNDS", "7"))
COLLECTOR = Path(os.environ.get("BENCH_COLLECTOR", "target/debug/audit-collector")).resolve()
TOKEN = "path-prefix-cost-read"

FILL = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
INSERT INTO events (seq, uuid, timestamp_ms, type, method, status, ingested_at_ms, body, chain_prev, chain_hash,
                    user_id, user_name)
SELECT i, printf('u%021d', i), ?2 + i, 'PactBroker::Api::Resources::Pacticipant', 'GET', 200, ?2 + i,
       json_object('uuid', printf('u%021d', i), 'timestamp', '2026-12-04T22:00:00.000+00:00',
                   'type', 'PactBroker::Api::Resources::Pacticipant', 'user_name', 'user' || (i % 50),
                   'payload', json_object('path', CASE WHEN i % 100 = 0 THEN '/pacticipants/Foo/versions/' || i
                                                       ELSE '/pacticipants/Bar' || (i % 97) || '/versions/' || i END,
                                          'method', 'GET', 'queryString', '',
                                          'userAgent', 'pact_broker-client/1.75.1')),
       randomblob(32), randomblob(32), NULL, 'user' || (i % 50)
FROM n"""


def fill(path):
    connection = sqlite3.connect(path)
    started = time.monotonic()
    with connection:
        connection.execute(FILL, (EVENTS, int(time.time() * 1000) - EVENTS - 60_000))
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    print(f"filled {EVENTS} events in {time.monotonic() - started:.0f} s")


def get(base, query):
    request = urllib.request.Request(f"{base}/audit?{query}", headers={"Authorization": f"Bearer {TOKEN}"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as answer:
        page = json.load(answer)
    return time.perf_counter() - started, page


def next_from(page):
    href = page.get("_links", {}).get("next", {}).get("href", "")
    return href.split("from=")[1].split("&")[0] if "from=" in href else None


def main():
    if not COLLECTOR.exists():
        raise SystemExit(f"missing {COLLECTOR}: build it first (cargo build -p audit-collector)")
    work = Path(tempfile.mkdtemp(prefix="path-prefix-cost-"))
    database = work / "audit.db"
    collector_database(database)
    fill(database)
    address = work / "address"
    env = dict(os.environ, AUDIT_TOKEN=TOKEN, AUDIT_INGEST_TOKEN="path-prefix-cost-ingest", RUST_LOG="warn")
    process = subprocess.Popen([str(COLLECTOR), "serve", "--listen", "127.0.0.1:0", "--address-file", str(address),
                                "--database", str(database)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not (address.exists() and address.read_text().strip()):
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the collector did not start")
            time.sleep(0.05)
        base = f"http://{address.read_text().strip()}"
        times = {"user_name page (indexed)": [], "path_prefix first page": [], "path_prefix 5 pages by next": []}
        found = []
        for _ in range(ROUNDS):
            times["user_name page (indexed)"].append(get(base, "user_name=user7&pageSize=100")[0])
            elapsed, page = get(base, "path_prefix=/pacticipants/Foo/&pageSize=100")
            times["path_prefix first page"].append(elapsed)
            total, events, cursor = 0.0, 0, None
            for _ in range(5):
                query = "path_prefix=/pacticipants/Foo/&pageSize=100" + (f"&from={cursor}" if cursor else "")
                elapsed, page = get(base, query)
                total += elapsed
                events += len(page["_embedded"]["events"]) if "_embedded" in page else len(page.get("events", []))
                cursor = next_from(page)
                if not cursor:
                    break
            times["path_prefix 5 pages by next"].append(total)
            found.append(events)
        for name, values in times.items():
            print(f"{name}: median {statistics.median(values) * 1000:.1f} ms "
                  f"(min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f}, {ROUNDS} rounds)")
        print(f"events on the 5 path_prefix pages: {found[0]} (1 in 100 match: ~20 per 2000 examined)")
        print(f"load average at the end: {os.getloadavg()}")
    finally:
        process.terminate()
        process.wait(60)
        for file in work.iterdir():
            file.unlink()
        work.rmdir()


if __name__ == "__main__":
    main()
