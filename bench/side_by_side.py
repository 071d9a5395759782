#!/usr/bin/env python3
"""Several running collectors (builds) serving one trail, timed side by side: the same GETs
through `audit-bench pages`, in rounds whose order rotates, so every build meets the same
machine noise. Prints per path and build the median of the round medians and each build's
per-round ratio to the first; first checks that every build answers each
`/audit/activity` path with the same body (counts are exact, so any difference is a bug).
Writes nothing (docs/viewer.md and docs/not-done.md quote its runs of 2026-12-05).

    python3 bench/side_by_side.py --rounds 5 --count 20 --token READ_TOKEN \\
        main=127.0.0.1:41001 new=127.0.0.1:41002 -- '/audit?pageSize=100' '/audit/activity?bucket=day'

Start the collectors yourself on one file (`audit-collector serve --database ...`); an older
build refuses a newer schema version, so set `PRAGMA user_version` to the version each build
knows just before starting it, and back (they only read here)."""
import argparse
import json
import statistics
import subprocess
import sys
import urllib.request
from pathlib import Path

TOOL = Path(__file__).resolve().parent / "target/release/audit-bench"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=20, help="timed requests per path per build per round")
    parser.add_argument("--token", required=True, help="a read token every build accepts")
    parser.add_argument("builds", nargs="+", help="label=host:port ... (then -- and the paths)")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    arguments, paths = parser.parse_args(argv[:split]), argv[split + 1:]
    builds = [build.split("=", 1) for build in arguments.builds]
    if not paths or any(len(build) != 2 for build in builds):
        parser.error("give label=host:port for each build, then -- and at least one path")
    for path in (path for path in paths if path.startswith("/audit/activity")):
        bodies = {}
        for label, address in builds:
            request = urllib.request.Request(f"http://{address}{path}",
                                             headers={"Authorization": f"Bearer {arguments.token}"})
            bodies[label] = urllib.request.urlopen(request, timeout=60).read()
        same = len(set(bodies.values())) == 1
        print(f"answers {'identical' if same else 'DIFFER: ' + ', '.join(bodies)}: {path}")
    medians = {(label, path): [] for label, _ in builds for path in paths}
    for round_number in range(arguments.rounds):
        turn = round_number % len(builds)
        for label, address in builds[turn:] + builds[:turn]:
            timed = subprocess.run([str(TOOL), "pages", "--addr", address, "--token", arguments.token,
                                    "--count", str(arguments.count), *[a for path in paths for a in ("--path", path)]],
                                   check=True, capture_output=True, text=True)
            for page in json.loads(timed.stdout)["pages"]:
                medians[(label, page["path"])].append(page["median_ms"])
    first = builds[0][0]
    for path in paths:
        print(path)
        for label, _ in builds:
            values = medians[(label, path)]
            ratios = [value / base for value, base in zip(values, medians[(first, path)])]
            print(f"  {label:10} {statistics.median(values):8.3f} ms (rounds {min(values):.3f}-{max(values):.3f}); "
                  f"/{first} {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
