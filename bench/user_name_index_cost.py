"""What the `(user_name, seq)` index costs an insert: since schema 15 `user_name` is a plain
column the INSERT fills (schema 14 generated it from the body with json_extract, which
this measured at 0.82-0.85x), so the index's cost is one more entry per insert.
Side by side on copies of one collector-made database, with and without the index,
alternating rounds; the collector's INSERT, WAL and synchronous=FULL, 800 rows a commit.

    BENCH_COLLECTOR=target/debug/audit-collector python3 bench/user_name_index_cost.py

It runs the INSERT through Python's sqlite3 (the system SQLite, not the collector's bundled
one, and no hashing or HTTP), so it gives the ratio of the SQLite work alone; a quick stand-in
for `index_cost.py`, which needs `make bench`'s release tools. BENCH_INDEX_EVENTS (50000) per
run, BENCH_INDEX_ROUNDS (6). Nothing is written to results.md."""
import json
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from index_cost import collector_database

EVENTS = int(os.environ.get("BENCH_INDEX_EVENTS", "50000"))
ROUNDS = int(os.environ.get("BENCH_INDEX_ROUNDS", "6"))
PER_COMMIT = 800
STATES = {"without the user_name index": "DROP INDEX events_by_user_name;", "with it (schema 15)": ""}
INSERT = ("INSERT INTO events (seq, uuid, timestamp_ms, type, db_user_id, user_email, method, status, ingested_at_ms,"
          " body, chain_prev, chain_hash, user_id, user_name)"
          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
          " ON CONFLICT (uuid) DO NOTHING")


def rows():
    """The bench's event shape: ~900 bytes of JSON, 50 users, a basic-auth name on each."""
    for n in range(1, EVENTS + 1):
        user = n % 50
        body = json.dumps({
            "uuid": f"u{n:021d}", "timestamp": "2026-12-04T22:00:00.000+00:00",
            "type": "PactBroker::Api::Resources::Pacticipant", "db_user_id": None, "user_email": None,
            "payload": {"path": f"/pacticipants/Foo{n % 97}/versions/1.0.{n % 13}", "queryString": "",
                        "method": "GET", "userAgent": "pact_broker-client/1.75.1 (ruby 3.2.2; x86_64-linux)",
                        "referer": None, "params": {"pacticipant_name": f"Foo{n % 97}", "resource_name": "pacticipant"},
                        "clientIp": "127.0.0.1", "requestId": "2f7c1c9e-5b0e-4a53-9a43-7b8f2d1e6a10",
                        "host": "127.0.0.1:10000"},
            "user_id": None, "user_name": f"user{user}", "identity_source": "basic-auth",
            "token_fingerprint": None, "response": {"status": 200, "durationMs": 1.5, "outcome": "success"},
            "sender": {"id": "0123456789abcdefghijkl", "seq": n}}, separators=(",", ":"))
        yield (n, f"u{n:021d}", 1_796_000_000_000 + n, "PactBroker::Api::Resources::Pacticipant", None, None,
               "GET", 200, 1_796_000_000_000, body, os.urandom(32), os.urandom(32), None, f"user{user}")


def insert_rate(path, batch):
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA cache_size=-32768")
    started = time.perf_counter()
    for at in range(0, len(batch), PER_COMMIT):
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(INSERT, batch[at:at + PER_COMMIT])
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    connection.close()
    return len(batch) / elapsed


def main():
    work = Path(tempfile.mkdtemp(prefix="user-name-index-"))
    try:
        base = work / "base.db"
        collector_database(base)
        databases = {}
        for number, (state, sql) in enumerate(STATES.items()):
            databases[state] = work / f"state-{number}.db"
            shutil.copy(base, databases[state])
            connection = sqlite3.connect(databases[state])
            connection.executescript(sql)
            connection.close()
        batch = list(rows())
        rates = {state: [] for state in STATES}
        for round_ in range(ROUNDS):
            for state in (list(STATES) if round_ % 2 == 0 else list(reversed(STATES))):
                run = work / "run.db"
                shutil.copy(databases[state], run)
                rates[state].append(insert_rate(run, batch))
                for leftover in work.glob("run.db*"):
                    leftover.unlink()
        before = rates[next(iter(STATES))]
        print(f"SQLite {sqlite3.sqlite_version}, {EVENTS:,} events a run, {PER_COMMIT} rows a commit, {ROUNDS} rounds "
              f"alternating; load average {os.getloadavg()[0]:.1f}")
        print("| indexes | events/s median | ratio to without, per round | median ratio |")
        print("| --- | --- | --- | --- |")
        for state in STATES:
            ratios = [rate / reference for rate, reference in zip(rates[state], before)]
            print(f"| {state} | {statistics.median(rates[state]):,.0f} | "
                  f"{', '.join(f'{ratio:.2f}' for ratio in ratios)} | {statistics.median(ratios):.2f} |")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
