#!/usr/bin/env python3
"""What each of `events`' b-trees costs the PostgreSQL sealer, priced in SQL on a throwaway server.

A database at the schema this checkout ships (`schema.sql`, then every `schema_v<n>.sql`; or up to
BENCH_PG_SCHEMA) holds a trail of BENCH_PG_TRAIL events and BENCH_PG_MOVED more waiting in
`unsequenced`, shaped like `audit_event::sample::realistic` (four types, GET/PUT half each, 1%
401, 50 users, ~700-byte bodies, scattered uuids). Each variant runs in a transaction that is
rolled back: it changes the indexes (drops one, or builds a candidate), then moves every waiting row
into `events` with the sealer's own statement (`DELETE FROM unsequenced … RETURNING` into the
INSERT, 5000 rows per statement, activity triggers included) and reads the WAL written
(`pg_current_wal_insert_lsn`) and the time spent. `full_page_writes` is off, so WAL bytes are the
rows' and the index entries' own (deterministic up to page splits); the times are the machine's
(loaded: read the ratios). Variants alternate within each of BENCH_ROUNDS rounds.

    python3 bench/pg_index_cost.py            # prints a markdown table; writes nothing else
"""
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import run as bench

TRAIL = int(os.environ.get("BENCH_PG_TRAIL", "300000"))
MOVED = int(os.environ.get("BENCH_PG_MOVED", "50000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SCHEMA_UP_TO = int(os.environ.get("BENCH_PG_SCHEMA", "99"))
SCHEMA_DIR = bench.ROOT / "collector/src/store/postgres"

# Columns of one realistic row numbered `i` (SQL over generate_series `i`).
ROW = """
    md5(i::text || 'u') AS uuid,
    1700000000000 + i * 50 AS timestamp_ms,
    (ARRAY['PactBroker::Api::Resources::Tag', 'PactBroker::Api::Resources::Pact',
           'PactBroker::Api::Resources::Version', 'PactBroker::Api::Resources::Pacticipant'])[i % 4 + 1] AS type,
    1000 + i % 50 AS db_user_id,
    'user' || (i % 50) || '@example.com' AS user_email,
    (1000 + i % 50)::text AS user_id,
    CASE WHEN i % 4 < 2 THEN 'PUT' ELSE 'GET' END AS method,
    CASE WHEN i % 97 = 0 THEN 401 WHEN i % 4 < 2 THEN 201 ELSE 200 END AS status,
    1700000000005 + i * 50 AS ingested_at_ms,
    '{"uuid":"' || md5(i::text || 'u') || '","payload":{"path":"/pacticipants/service-' || (i % 40) ||
        '/versions/1.' || (i % 13) || '.' || (i % 997) || '","pad":"' || repeat(md5(i::text), 17) || '"}}' AS body,
    'user' || (i % 50) AS user_name"""

# (label, SQL run inside the rolled-back transaction before the move)
VARIANTS = [
    ("as shipped", ""),
    ("no seq primary key", "ALTER TABLE events DROP CONSTRAINT events_pkey"),
    ("no uuid unique", "ALTER TABLE events DROP CONSTRAINT IF EXISTS events_uuid_key"),
    ("no timestamp (covering)", "DROP INDEX events_by_timestamp"),
    ("no (type, seq)", "DROP INDEX events_by_type"),
    ("no (user_id, seq)", "DROP INDEX events_by_user_id"),
    ("no (user_email, seq)", "DROP INDEX events_by_user_email"),
    ("no (user_name, seq)", "DROP INDEX events_by_user_name"),
    ("no (method, seq)", "DROP INDEX IF EXISTS events_by_method"),
    ("no (status, seq)", "DROP INDEX IF EXISTS events_by_status"),
    # Candidates: the uuid found through the timestamp index (its key, or its heap rows), and
    # partial indexes on the values a deployment sees rarely.
    ("uuid second in the timestamp key, no uuid unique",
     "ALTER TABLE events DROP CONSTRAINT IF EXISTS events_uuid_key; DROP INDEX events_by_timestamp;"
     " CREATE INDEX events_by_timestamp ON events (timestamp_ms, uuid) INCLUDE (status, method, type, user_id, user_email)"),
    ("partial (status, seq): status outside 200-299",
     "DROP INDEX events_by_status;"
     " CREATE INDEX events_by_status ON events (status, seq) WHERE status NOT BETWEEN 200 AND 299"),
    ("partial (method, seq): method <> 'GET'",
     "DROP INDEX events_by_method; CREATE INDEX events_by_method ON events (method, seq) WHERE method <> 'GET'"),
    ("heap only (every index dropped)",
     "DO $$ DECLARE i record; BEGIN FOR i IN SELECT c.conname FROM pg_constraint c WHERE c.conrelid = 'events'::regclass"
     " AND c.contype IN ('p', 'u') LOOP EXECUTE format('ALTER TABLE events DROP CONSTRAINT %I', i.conname); END LOOP;"
     " FOR i IN SELECT indexname FROM pg_indexes WHERE tablename = 'events' LOOP"
     " EXECUTE format('DROP INDEX %I', i.indexname); END LOOP; END $$"),
]

MOVE = """
CREATE FUNCTION pg_index_cost_move(moved_in_all BIGINT) RETURNS TABLE (wal NUMERIC, ms DOUBLE PRECISION)
LANGUAGE plpgsql AS $$
DECLARE
    began_lsn pg_lsn := pg_current_wal_insert_lsn();
    began TIMESTAMPTZ := clock_timestamp();
    head BIGINT := (SELECT max(seq) FROM events);
    done BIGINT := 0;
    n BIGINT;
BEGIN
    WHILE done < moved_in_all LOOP
        WITH links AS (
            SELECT arrival, head + done + row_number() OVER (ORDER BY arrival) AS seq,
                   sha256(arrival::text::bytea) AS prev, sha256((arrival + 1)::text::bytea) AS hash
            FROM unsequenced ORDER BY arrival LIMIT 5000
        ), moved AS (
            DELETE FROM unsequenced u USING links s WHERE u.arrival = s.arrival
            RETURNING s.seq, u.uuid, u.timestamp_ms, u.type, u.db_user_id, u.user_email, u.user_id, u.method,
                      u.status, u.ingested_at_ms, u.body, s.prev, s.hash, u.user_name
        )
        INSERT INTO events (seq, uuid, timestamp_ms, type, db_user_id, user_email, user_id, method, status,
                            ingested_at_ms, body, chain_prev, chain_hash, user_name)
        SELECT * FROM moved;
        GET DIAGNOSTICS n = ROW_COUNT;
        EXIT WHEN n = 0;
        done := done + n;
    END LOOP;
    RETURN QUERY SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), began_lsn),
                        1000 * extract(epoch FROM clock_timestamp() - began)::double precision;
END
$$;
"""


def query(server, sql):
    """`sql` in the priced database (no 60 s limit: a variant on a loaded machine takes minutes)."""
    return subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", "-d", "priced",
                           "-v", "ON_ERROR_STOP=1", "-qAtc", sql], check=True, capture_output=True, text=True,
                          timeout=3600).stdout.strip()


def schema_files():
    upgrades = sorted(SCHEMA_DIR.glob("schema_v*.sql"), key=lambda path: int(path.stem.removeprefix("schema_v")))
    return [SCHEMA_DIR / "schema.sql"] + [path for path in upgrades
                                          if int(path.stem.removeprefix("schema_v")) <= SCHEMA_UP_TO]


def main():
    directory = Path(tempfile.mkdtemp(prefix="audit-pg-index-cost-", dir=os.environ.get("BENCH_TMPDIR")))
    server = bench.ThrowawayPostgres(directory / "postgres")
    try:
        server.query("postgres", "ALTER SYSTEM SET full_page_writes = off")
        server.query("postgres", "ALTER SYSTEM SET max_wal_size = '4GB'")
        server.query("postgres", "SELECT pg_reload_conf()")
        server.create_database("priced")
        files = schema_files()
        sql = "".join(path.read_text() + "\n" for path in files)
        query(server, f"BEGIN; {sql} COMMIT;")
        columns = ("uuid, timestamp_ms, type, db_user_id, user_email, user_id, method, status, ingested_at_ms, body, "
                   "user_name")
        query(server, f"""
            INSERT INTO events (seq, {columns}, chain_prev, chain_hash)
            SELECT i, {', '.join(c.strip() for c in columns.split(','))}, sha256(i::text::bytea), sha256(i::text::bytea)
            FROM (SELECT i, {ROW} FROM generate_series(1, {TRAIL}) AS i) AS r;
            INSERT INTO unsequenced ({columns}, canonical)
            SELECT {columns}, convert_to(body, 'UTF8')
            FROM (SELECT i, {ROW} FROM generate_series({TRAIL} + 1, {TRAIL + MOVED}) AS i) AS r ORDER BY i;""")
        query(server, "VACUUM ANALYZE")
        query(server, MOVE)
        bench.log(f"schema {files[-1].name}: trail {TRAIL:,}, moving {MOVED:,} per variant, {ROUNDS} rounds")
        results = {label: [] for label, _ in VARIANTS}
        for round_number in range(ROUNDS):
            order = VARIANTS[round_number % len(VARIANTS):] + VARIANTS[:round_number % len(VARIANTS)]
            for label, change in order:
                # The rolled-back rows of the variant before are dead: cleared, so every variant
                # inserts into the same free space and index pages.
                query(server, "VACUUM events")
                query(server, "CHECKPOINT")
                line = query(server, f"BEGIN; {change + ';' if change else ''} "
                                              f"SELECT * FROM pg_index_cost_move({MOVED}); ROLLBACK;")
                wal, ms = line.splitlines()[-1].split("|")
                results[label].append((float(wal) / MOVED, float(ms) * 1000 / MOVED))
                bench.log(f"round {round_number + 1} {label:32} {float(wal) / MOVED:7.0f} WAL B/event "
                          f"{float(ms) * 1000 / MOVED:6.1f} us/event")
        shipped_wal = statistics.median(wal for wal, _ in results["as shipped"])
        shipped_us = statistics.median(us for _, us in results["as shipped"])
        print(f"| variant ({files[-1].name}, {TRAIL:,}-event trail, {MOVED:,} moved, {ROUNDS} rounds) | "
              "WAL B/event | saved | µs/event (median) | saved |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for label, _ in VARIANTS:
            wal = statistics.median(w for w, _ in results[label])
            us = statistics.median(u for _, u in results[label])
            print(f"| {label} | {wal:,.0f} | {shipped_wal - wal:,.0f} | {us:.1f} | {shipped_us - us:.1f} |")
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
