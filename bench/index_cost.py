"""What each index costs ingest: the raw SQLite insert loop (`audit-bench raw-insert`, the
collector's INSERT, rollup counting and pragmas, no HTTP) on copies of one collector-made
database whose indexes are set by hand to each state below, alternating, side by side, and
the WAL pages each event writes (counted once per state under strace: the 24-byte frame
headers SQLite writes before each page; deterministic, unlike the timings).

    python3 bench/index_cost.py    # after `make bench` built the collector and the tools (~3 min)

BENCH_INDEX_EVENTS (100000) per run, BENCH_INDEX_ROUNDS (6), BENCH_INDEX_COMMIT (800 rows a
commit). BENCH_INDEX_BASE_EVENTS (0): the trail already stored before each run (`audit-bench
generate`, the bench's realistic events), so an index with random keys (the uuid's) is priced
at a size where its inserts land on pages the cache does not hold; each run then takes a
fresh copy of that trail (disk: the trail twice, ~1.3 GB per 1M events).
BENCH_INDEX_STATES=schema (default) compares schema 15's two `(user, timestamp, status,
method)` indexes with schema 16's per-user rollup; =each prices every index of the
collector's schema by dropping it alone. Prints events/s per state, each round's ratio to
the first state and WAL pages per event; nothing is written to results.md (docs/viewer.md
and docs/performance.md quote it)."""
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
COLLECTOR = Path(os.environ.get("BENCH_COLLECTOR", BENCH.parent / "target/release/audit-collector"))
TOOL = BENCH / "target/release/audit-bench"
EVENTS = int(os.environ.get("BENCH_INDEX_EVENTS", "100000"))
BASE_EVENTS = int(os.environ.get("BENCH_INDEX_BASE_EVENTS", "0"))
ROUNDS = int(os.environ.get("BENCH_INDEX_ROUNDS", "6"))
COMMIT = int(os.environ.get("BENCH_INDEX_COMMIT", "800"))

# The collector makes schema 17 (schema 16's indexes, plus the minute rollup the raw loop
# counts into like the other rollups: about one WAL page a commit); the other states are
# derived from it. Schema 15's state keeps the per-user rollup the raw loop writes, so it is
# priced slightly high (the rollup's upserts are a few pages a commit: compare WAL pages of
# "each"). The uuid's UNIQUE index cannot be dropped alone (the loop's `ON CONFLICT (uuid)`
# needs it): the remainder after every other index is its share and the table's.
SCHEMA_15 = ("CREATE INDEX events_by_user_id_time ON events (user_id, timestamp_ms, status, method);"
             "CREATE INDEX events_by_user_email_time ON events (user_email, timestamp_ms, status, method);")
INDEXES = ["events_by_type", "events_by_user_id", "events_by_user_email", "events_by_method", "events_by_status",
           "events_by_user_name", "events_by_seq_time", "events_by_timestamp"]
STATE_SETS = {
    "each": {"schema 17": "", **{f"17 without {index}": f"DROP INDEX {index};" for index in INDEXES},
             "17 without any of these": "".join(f"DROP INDEX {index};" for index in INDEXES)},
    "schema": {"schema 15 (two user time indexes)": SCHEMA_15, "schema 16/17 (per-user hourly rollup)": ""},
}
STATES = STATE_SETS[os.environ.get("BENCH_INDEX_STATES", "schema")]


def collector_database(path):
    """A database the collector made (its schema and migrations), checkpointed into one file."""
    address = path.with_suffix(".address")
    env = dict(os.environ, AUDIT_TOKEN="index-cost-read", AUDIT_INGEST_TOKEN="index-cost-ingest", RUST_LOG="warn")
    process = subprocess.Popen([str(COLLECTOR), "serve", "--listen", "127.0.0.1:0", "--address-file", str(address),
                                "--database", str(path)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not (address.exists() and address.read_text().strip()):
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the collector did not start")
            time.sleep(0.05)
    finally:
        process.terminate()
        process.wait(60)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()


def fill(database):
    """The base trail: BASE_EVENTS realistic events, chained, as `make bench` part 3 makes them."""
    if BASE_EVENTS > 0:
        subprocess.run([str(TOOL), "generate", "--db", str(database), "--events", str(BASE_EVENTS)],
                       check=True, capture_output=True)
        connection = sqlite3.connect(database)
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.close()


def in_state(work, base, sql, name):
    """A fresh copy of the base trail with the state's indexes."""
    database = work / name
    shutil.copy(base, database)
    connection = sqlite3.connect(database)
    connection.executescript(sql)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return database


def raw_insert(database):
    return [str(TOOL), "raw-insert", "--db", str(database), "--events", str(EVENTS),
            "--batch", str(COMMIT), "--batches-per-commit", "1"]


def wal_pages_per_event(work, base, sql):
    """WAL frames the raw loop writes per event on a copy of the base in a state: SQLite
    writes each frame as a 24-byte header and then the page, so the 24-byte writes are the
    frames."""
    if shutil.which("strace") is None:
        return None
    run, trace = in_state(work, base, sql, "wal.db"), work / "wal.trace"
    subprocess.run(["strace", "-f", "-e", "trace=pwrite64", "-o", str(trace), *raw_insert(run)],
                   check=True, capture_output=True)
    frames = sum(1 for line in trace.open() if re.search(r"pwrite64\(\d+, .*, 24, \d+\) = 24", line))
    for leftover in [trace, *work.glob("wal.db*")]:
        leftover.unlink()
    return frames / EVENTS


def main():
    for path in (COLLECTOR, TOOL):
        if not path.exists():
            raise SystemExit(f"missing {path}: run `make bench` (or build it) first")
    work = Path(tempfile.mkdtemp(prefix="index-cost-"))
    try:
        base = work / "base.db"
        collector_database(base)
        fill(base)
        rates = {state: [] for state in STATES}
        wal_pages = {state: wal_pages_per_event(work, base, sql) for state, sql in STATES.items()}
        for round_ in range(ROUNDS):
            for state in (list(STATES) if round_ % 2 == 0 else list(reversed(STATES))):
                run = in_state(work, base, STATES[state], "run.db")
                output = subprocess.run(raw_insert(run), check=True, capture_output=True, text=True).stdout
                rates[state].append(json.loads(output)["events_per_s"])
                for leftover in work.glob("run.db*"):
                    leftover.unlink()
        before = rates[next(iter(STATES))]
        print(f"raw insert loop, {EVENTS:,} events a run onto a trail of {BASE_EVENTS:,}, {COMMIT} rows a commit, "
              f"{ROUNDS} rounds alternating; "
              f"load average {os.getloadavg()[0]:.1f}")
        print("| indexes | WAL pages per event | events/s median | ratio to the first, per round | median ratio |")
        print("| --- | --- | --- | --- | --- |")
        for state in STATES:
            ratios = [rate / reference for rate, reference in zip(rates[state], before)]
            pages = "n/a (no strace)" if wal_pages[state] is None else f"{wal_pages[state]:.2f}"
            print(f"| {state} | {pages} | {statistics.median(rates[state]):,.0f} | "
                  f"{', '.join(f'{ratio:.2f}' for ratio in ratios)} | {statistics.median(ratios):.2f} |")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
