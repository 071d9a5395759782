"""What the activity indexes cost ingest: the raw SQLite insert loop (`audit-bench
raw-insert`, the collector's INSERT and pragmas, no HTTP) on copies of one collector-made
database whose indexes are set by hand to each state below, alternating, side by side.

    python3 bench/index_cost.py    # after `make bench` built the collector and the tools (~3 min)

BENCH_INDEX_EVENTS (100000) per run, BENCH_INDEX_ROUNDS (6); BENCH_INDEX_STATES=user_name
compares schema 14's user_name index with its absence instead. Prints events/s per state and
each round's ratio to the state before the activity indexes; nothing is written to
results.md (docs/viewer.md quotes it)."""
import json
import os
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
ROUNDS = int(os.environ.get("BENCH_INDEX_ROUNDS", "6"))

USER_INDEXES = ("DROP INDEX events_by_user_id_time; DROP INDEX events_by_user_email_time;"
                "CREATE INDEX events_by_user_id_time ON events (user_id, timestamp_ms{});"
                "CREATE INDEX events_by_user_email_time ON events (user_email, timestamp_ms{});")
# The current collector makes the last state; the others are derived from it.
STATES = {
    "before (timestamp index alone, no user time indexes)":
        "DROP INDEX events_by_user_id_time; DROP INDEX events_by_user_email_time; DROP INDEX events_by_timestamp;"
        "CREATE INDEX events_by_timestamp ON events (timestamp_ms);",
    "wider timestamp index only": "DROP INDEX events_by_user_id_time; DROP INDEX events_by_user_email_time;",
    "migration 11 (user indexes with type)": USER_INDEXES.format(", status, method, type", ", status, method, type"),
    "migration 12, shipped (user indexes without type)": "",
}
# BENCH_INDEX_STATES=user_name: what the `(user_name, seq)` index of schema 14 costs (its key
# is generated from the body, so every insert also runs json_extract over the body).
if os.environ.get("BENCH_INDEX_STATES") == "user_name":
    STATES = {
        "schema 13 (no user_name index)": "DROP INDEX events_by_user_name;",
        "schema 14 (user_name index)": "",
    }


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


def main():
    for path in (COLLECTOR, TOOL):
        if not path.exists():
            raise SystemExit(f"missing {path}: run `make bench` (or build it) first")
    work = Path(tempfile.mkdtemp(prefix="index-cost-"))
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
        rates = {state: [] for state in STATES}
        for round_ in range(ROUNDS):
            for state in (list(STATES) if round_ % 2 == 0 else list(reversed(STATES))):
                run = work / "run.db"
                shutil.copy(databases[state], run)
                output = subprocess.run([str(TOOL), "raw-insert", "--db", str(run), "--events", str(EVENTS),
                                         "--batch", "100", "--batches-per-commit", "8"],
                                        check=True, capture_output=True, text=True).stdout
                rates[state].append(json.loads(output)["events_per_s"])
                for leftover in work.glob("run.db*"):
                    leftover.unlink()
        before = rates[next(iter(STATES))]
        print(f"raw insert loop, {EVENTS:,} events a run, 800 rows a commit, {ROUNDS} rounds alternating; "
              f"load average {os.getloadavg()[0]:.1f}")
        print("| indexes | events/s median | ratio to before, per round | median ratio |")
        print("| --- | --- | --- | --- |")
        for state in STATES:
            ratios = [rate / reference for rate, reference in zip(rates[state], before)]
            print(f"| {state} | {statistics.median(rates[state]):,.0f} | "
                  f"{', '.join(f'{ratio:.2f}' for ratio in ratios)} | {statistics.median(ratios):.2f} |")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
