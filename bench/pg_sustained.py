"""PostgreSQL at fixed offered rates: does the sealer keep up? `make bench` part 4 floods ingest
unpaced and reports what was sealed meanwhile; on two cores the flood's ingest takes the CPU the
one sealer needs, so that is not the rate the system sustains. Here each collector build runs
two replicas on a fresh database of one throwaway PostgreSQL, loaded at a FIXED rate (paced,
split over both replicas, 4 connections each, batches of 500 realistic events), while
`audit-bench freshness` acknowledges one probe at a time on the first replica and reads it back
on the second. After a warm-up, over the probe's window, from the database (`chain_head` and
what waits in `unsequenced`):
the acknowledged and sealed rates, the unsealed backlog at the window's start and end, and the
probe's median and p99; over the whole run, from `pg_stat_statements`, the server's time and WAL bytes
per event in the sealer's move and in ingest's statement. Builds alternate within each rate, their order turns every round.

    python3 bench/pg_sustained.py main=/path/to/old/audit-collector new=target/release/audit-collector

BENCH_SUSTAINED_RATES (events/s in all, `8000,12000,16000,20000,24000`), BENCH_SUSTAINED_ROUNDS
(2), BENCH_SUSTAINED_SECONDS (the probe's window, 10; 3 s of warm-up before it). Needs the
tools `make bench` builds (`audit-bench`) and Debian's PostgreSQL; prints a table, writes
nothing to results.md. Every load is bounded (events and time) and killed at the window's end."""
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import run as bench

RATES = [int(rate) for rate in os.environ.get("BENCH_SUSTAINED_RATES", "8000,12000,16000,20000,24000").split(",")]
ROUNDS = int(os.environ.get("BENCH_SUSTAINED_ROUNDS", "2"))
WINDOW_SECONDS = int(os.environ.get("BENCH_SUSTAINED_SECONDS", "10"))
WARM_UP_SECONDS = 3
REPLICAS = 2
CONNECTIONS_PER_REPLICA = 4
BATCH = 500
# The load holds enough events to outlast a probe window that runs long (a probe waits up to
# 30 s for its event); it is killed at the window's end either way.
LOAD_SECONDS = WARM_UP_SECONDS + WINDOW_SECONDS + 40
# A run "keeps up" when ingest took the offered rate, the sealer sealed it, what waits unsealed
# at the end is under this many seconds of the load, and the probe's p99 meets issue 25's goal.
KEPT_UP_SHARE = 0.95
BACKLOG_SECONDS = 1.0
P99_GOAL_MS = 250


def trail_counts(server, database):
    """(sealed seq, events acknowledged but not sealed yet), in one snapshot."""
    sealed, backlog = server.query(database, "SELECT seq, (SELECT count(*) FROM unsequenced) FROM chain_head").split("|")
    return int(sealed), int(backlog)


def sample(server, database):
    began = time.monotonic()
    sealed, backlog = trail_counts(server, database)
    return {"at": (began + time.monotonic()) / 2, "sealed": sealed, "backlog": backlog}


def ended_early(loads, during):
    """A load must run through the whole window: one that ended failed or ran out of events."""
    for load in loads:
        if load.poll() is not None:
            raise RuntimeError(f"audit-bench ingest ended (code {load.returncode}) during {during} "
                               f"(out of events: raise LOAD_SECONDS):\n{load.stderr.read()}")


def one_run(server, procs, directory, label, collector, rate, number):
    bench.COLLECTOR = collector
    database = f"sustained_{number}"
    url = server.create_database(database)
    started = [bench.start_pg_collector(procs, f"{database}-{label}-{index}", url, directory)
               for index in range(REPLICAS)]
    addresses = [address for _, address in started]
    share = rate / REPLICAS
    loads = [subprocess.Popen([str(bench.TOOL), "ingest", "--addr", address, "--token", bench.INGEST_TOKEN,
                               "--events", str(int(share * LOAD_SECONDS)), "--connections", str(CONNECTIONS_PER_REPLICA),
                               "--batch", str(BATCH), "--run-id", str(index + 1), "--rate", str(share)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for index, address in enumerate(addresses)]
    try:
        time.sleep(WARM_UP_SECONDS)
        ended_early(loads, "the warm-up")
        before = sample(server, database)
        probe = bench.tool("freshness", "--addr", addresses[0], "--read-addr", addresses[1],
                           "--token", bench.INGEST_TOKEN, "--read-token", bench.READ_TOKEN,
                           "--seconds", WINDOW_SECONDS, timeout=WINDOW_SECONDS + 120)
        after = sample(server, database)
        ended_early(loads, "the window")
        # Past --pg-max-unsealed-events the replicas answer 503 (the load retries after Retry-After).
        refused = sum(bench.refused_as_behind(address) for address in addresses)
    finally:
        for load in loads:
            load.kill()
            load.wait()
        for process, _ in started:
            procs.stop(process)
    # What the server spent per event over the whole run (pg_stat_statements): the sealer's
    # move per event sealed, ingest's statement per event acknowledged.
    sealed_in_all, waiting_in_all = trail_counts(server, database)
    sealing = server.statement_costs(database, max(sealed_in_all, 1)).get("seal", {"us": 0.0, "wal": 0.0})
    ingest = server.statement_costs(database, max(sealed_in_all + waiting_in_all, 1)).get("ingest", {"us": 0.0, "wal": 0.0})
    server.drop_database(database)
    server.query("postgres", "CHECKPOINT")  # the next run does not write this one's dirty pages
    seconds = after["at"] - before["at"]
    sealed = (after["sealed"] - before["sealed"]) / seconds
    acknowledged = (after["sealed"] + after["backlog"] - before["sealed"] - before["backlog"]) / seconds
    kept_up = (acknowledged >= KEPT_UP_SHARE * rate and sealed >= KEPT_UP_SHARE * rate
               and after["backlog"] <= BACKLOG_SECONDS * rate and probe["p99_ms"] <= P99_GOAL_MS)
    return {"label": label, "rate": rate, "acknowledged": acknowledged, "sealed": sealed,
            "backlog_start": before["backlog"], "backlog_end": after["backlog"], "seconds": seconds,
            "median_ms": probe["median_ms"], "p99_ms": probe["p99_ms"], "max_ms": probe["max_ms"],
            "probes": probe["probes"], "kept_up": kept_up, "refused": refused, "seal_us": sealing["us"],
            "seal_wal": sealing["wal"], "ingest_us": ingest["us"], "ingest_wal": ingest["wal"]}


def table(runs, labels):
    lines = ["| build | offered /s | rounds | acknowledged /s | sealed /s | unsealed at start → end | freshness median ms | p99 ms "
             "| kept up | batches refused (503) | sealer µs / WAL B per event | ingest µs / WAL B per event |",
             "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- | ---: | --- | --- |"]
    for rate in RATES:
        for label in labels:
            mine = [run for run in runs if run["label"] == label and run["rate"] == rate]
            if not mine:
                continue
            backlogs = ", ".join(f"{run['backlog_start']:,} → {run['backlog_end']:,}" for run in mine)
            lines.append(f"| {label} | {rate:,} | {len(mine)} | {bench.spread(r['acknowledged'] for r in mine)} | "
                         f"{bench.spread(r['sealed'] for r in mine)} | {backlogs} | {bench.spread((r['median_ms'] for r in mine), 1)} | "
                         f"{bench.spread((r['p99_ms'] for r in mine), 1)} | {sum(r['kept_up'] for r in mine)}/{len(mine)} | "
                         f"{bench.spread(r['refused'] for r in mine)} | "
                         f"{bench.spread((r['seal_us'] for r in mine), 1)} / {bench.spread(r['seal_wal'] for r in mine)} | "
                         f"{bench.spread((r['ingest_us'] for r in mine), 1)} / {bench.spread(r['ingest_wal'] for r in mine)} |")
    return "\n".join(lines)


def main():
    builds = [argument.split("=", 1) for argument in sys.argv[1:]]
    if not builds or any(len(build) != 2 or not Path(build[1]).exists() for build in builds):
        sys.exit("usage: python3 bench/pg_sustained.py label=/path/to/audit-collector ... (existing builds)")
    if not bench.TOOL.exists():
        sys.exit(f"{bench.TOOL} is missing: build it with `make bench` (or cargo build --release in bench/tools)")
    directory = Path(tempfile.mkdtemp(prefix="audit-pg-sustained-", dir=os.environ.get("BENCH_TMPDIR")))
    procs = bench.Processes(directory)
    labels = [label for label, _ in builds]
    runs = []
    bench.log(f"rates {RATES}, {ROUNDS} rounds, {WARM_UP_SECONDS} s warm-up + {WINDOW_SECONDS} s window, "
              f"{REPLICAS} replicas; load average {os.getloadavg()[0]:.1f}")
    server = bench.ThrowawayPostgres(directory / "postgres")
    try:
        number = 0
        for round_number in range(ROUNDS):
            shift = round_number % len(builds)
            for rate in RATES:
                for label, collector in builds[shift:] + builds[:shift]:
                    number += 1
                    run = one_run(server, procs, directory, label, Path(collector), rate, number)
                    runs.append(run)
                    bench.log(f"round {round_number + 1}/{ROUNDS} {label:>6} offered {rate:6,}/s: acknowledged "
                              f"{run['acknowledged']:7,.0f}, sealed {run['sealed']:7,.0f} over {run['seconds']:.1f} s; "
                              f"unsealed {run['backlog_start']:,} → {run['backlog_end']:,}; freshness median "
                              f"{run['median_ms']:.1f} ms p99 {run['p99_ms']:.1f} max {run['max_ms']:.1f} "
                              f"({run['probes']} probes); {run['refused']} batches refused (503); sealer "
                              f"{run['seal_us']:.1f} us {run['seal_wal']:.0f} WAL B, ingest {run['ingest_us']:.1f} us "
                              f"{run['ingest_wal']:.0f} WAL B per event"
                              f"{'' if run['kept_up'] else '  NOT kept up'}")
    finally:
        procs.stop_all()
        server.stop()
    bench.log(f"load average at the end {os.getloadavg()[0]:.1f}")
    print(table(runs, labels))


if __name__ == "__main__":
    main()
