"""Two or more collector builds side by side on `make bench` part 2's load (8 connections,
batches of 500 realistic events, a fresh copy of one collector-made database each run), with
the raw SQLite loop at 4,000 rows a commit in every round, alternating; per event, the
collector's CPU, its writer thread's, its WAL checkpointer's, and the bytes it wrote (bench/run.py's own counters).
For a change to the ingest path measured on a loaded machine: read the per-round ratios.

    python3 bench/ingest_ab.py before=/path/to/audit-collector after=target/release/audit-collector

BENCH_AB_ROUNDS (3), BENCH_AB_EVENTS (200000). Needs the tools `make bench` builds; nothing is
written to results.md."""
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import run as bench

ROUNDS = int(os.environ.get("BENCH_AB_ROUNDS", "3"))
EVENTS = int(os.environ.get("BENCH_AB_EVENTS", "200000"))
CONNECTIONS = 8
BATCH = 500


def one_run(procs, label, collector, database, round_number):
    if collector is None:
        result = bench.tool("raw-insert", "--db", database, "--events", EVENTS, "--batch", BATCH,
                            "--batches-per-commit", CONNECTIONS)
        return {"events/s": result["events_per_s"]}
    bench.COLLECTOR = collector
    process, address = bench.start_collector(procs, f"collector-{label}", database)
    before = bench.ingest_costs(process.pid)
    result = bench.tool("ingest", "--addr", address, "--token", bench.INGEST_TOKEN, "--events", EVENTS,
                        "--connections", CONNECTIONS, "--batch", BATCH, "--run-id", round_number)
    after = bench.ingest_costs(process.pid)
    procs.stop(process)
    return {"events/s": result["events_per_s"],
            "CPU µs/event": (after["cpu_s"] - before["cpu_s"]) * 1e6 / EVENTS,
            "writer µs/event": (after["writer_cpu_s"] - before["writer_cpu_s"]) * 1e6 / EVENTS,
            "checkpointer µs/event": (after["checkpointer_cpu_s"] - before["checkpointer_cpu_s"]) * 1e6 / EVENTS,
            "written KB/event": (after["written_bytes"] - before["written_bytes"]) / 1024 / EVENTS}


def main():
    builds = [argument.split("=", 1) for argument in sys.argv[1:]]
    if not builds or any(len(build) != 2 or not Path(build[1]).exists() for build in builds):
        sys.exit("usage: python3 bench/ingest_ab.py label=/path/to/audit-collector ... (existing builds)")
    directory = Path(tempfile.mkdtemp(prefix="audit-ingest-ab-", dir=os.environ.get("BENCH_TMPDIR")))
    procs = bench.Processes(directory)
    bench.COLLECTOR = Path(builds[0][1])
    runs = {}
    try:
        empty = bench.empty_database(procs, directory)
        kinds = [("raw loop", None)] + [(label, Path(path)) for label, path in builds]
        for round_number in range(1, ROUNDS + 1):
            shift = (round_number - 1) % len(kinds)
            for label, collector in kinds[shift:] + kinds[:shift]:
                database = bench.fresh_copy(empty, directory, "ingest")
                figures = one_run(procs, label, collector, database, round_number)
                figures["load"] = os.getloadavg()[0]
                runs.setdefault(label, []).append(figures)
                print(round_number, label, json.dumps({key: round(value, 2) for key, value in figures.items()}),
                      flush=True)
    except BaseException:
        print(f"stopped; logs kept in {directory}", file=sys.stderr)
        procs.stop_all()
        raise
    procs.stop_all()
    # Each run's database copy is hundreds of MB: nothing is kept once the rounds are done.
    shutil.rmtree(directory, ignore_errors=True)
    raw = [figures["events/s"] for figures in runs["raw loop"]]
    for label, rows in runs.items():
        medians = {key: round(statistics.median(row[key] for row in rows), 2) for key in rows[0]}
        ratios = "" if label == "raw loop" else \
            f"; vs the raw loop per round {[round(row['events/s'] / loop, 2) for row, loop in zip(rows, raw)]}"
        print(f"median {label}: {medians}{ratios}")


if __name__ == "__main__":
    main()
