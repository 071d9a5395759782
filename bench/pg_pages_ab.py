"""PostgreSQL pages, builds side by side: one trail of BENCH_PG_AB_EVENTS (1,000,000) generated
once as part 3 does, migrated by each build into its own database of one throwaway PostgreSQL
(so each build has its own schema version), each served by its build; then the first page and
the cursor page (`from=<uuid of the last page>`) of 100 events, 200 timed requests each per
build per round, builds alternating for BENCH_PG_AB_ROUNDS (5). Prints each build's median of
the rounds' medians and the per-round ratios to the first build named; writes nothing.

    python3 bench/pg_pages_ab.py s8=/path/to/old/audit-collector s9=target/release/audit-collector

Needs the tools `make bench` builds (`audit-bench`) and Debian's PostgreSQL."""
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import run as bench

EVENTS = int(os.environ.get("BENCH_PG_AB_EVENTS", "1000000"))
ROUNDS = int(os.environ.get("BENCH_PG_AB_ROUNDS", "5"))


def main(builds):
    directory = Path(tempfile.mkdtemp(prefix="audit-pg-pages-ab-"))
    procs = bench.Processes(directory)
    server = bench.ThrowawayPostgres(directory / "pg")
    try:
        bench.COLLECTOR = Path(builds[-1][1])
        database = bench.fresh_copy(bench.empty_database(procs, directory), directory, "trail")
        generated = bench.tool("generate", "--db", database, "--events", EVENTS)
        served = []
        for name, path in builds:
            url = server.create_database(f"pages_{name}")
            migrated = subprocess.run([path, "migrate", "--from", str(database), "--to", url],
                                      capture_output=True, text=True, timeout=3600)
            if migrated.returncode != 0:
                raise RuntimeError(f"{name}: migrate failed:\n{migrated.stderr}")
            bench.COLLECTOR = Path(path)
            served.append((name, bench.start_pg_collector(procs, f"pg-{name}", url, directory)[1]))
        paths = ["/audit?pageSize=100", f"/audit?from={generated['last_page_uuid']}&pageSize=100"]
        medians = {name: ([], []) for name, _ in builds}
        for round_number in range(ROUNDS):
            for name, address in served if round_number % 2 == 0 else reversed(served):
                first, cursor = bench.tool("pages", "--addr", address, "--token", bench.READ_TOKEN, "--count", 200,
                                           "--path", paths[0], "--path", paths[1])["pages"]
                medians[name][0].append(first["median_ms"])
                medians[name][1].append(cursor["median_ms"])
        base = builds[0][0]
        for name, (first, cursor) in medians.items():
            print(f"{name}: first page {bench.spread(first, 3)} ms, cursor page {bench.spread(cursor, 3)} ms")
            if name != base:
                for label, index in (("first", 0), ("cursor", 1)):
                    ratios = [mine / theirs for mine, theirs in zip(medians[name][index], medians[base][index])]
                    print(f"  {label} page / {base}'s, per round: {', '.join(f'{r:.2f}' for r in ratios)}"
                          f" (median {statistics.median(ratios):.2f})")
    finally:
        procs.stop_all()
        server.stop()
        subprocess.run(["rm", "-rf", str(directory)], check=False)


if __name__ == "__main__":
    named = [tuple(arg.split("=", 1)) for arg in sys.argv[1:]]
    if len(named) < 2 or any(len(pair) != 2 for pair in named):
        sys.exit("usage: pg_pages_ab.py name=/path/to/audit-collector name=/path/to/audit-collector ...")
    main(named)
