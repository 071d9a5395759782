#!/usr/bin/env python3
"""What the filter's heartbeats cost Envoy when it is idle.

Two Envoys run side by side from the top-level `envoy.yaml`, both with the built audit
filter and the same 100 ms tick, both idle after a few requests (a worker heartbeats only
once it has captured something): `shipped` with the shipped `batch.flushIntervalMs` (1000:
a heartbeat every 1.1 s per worker), `off` with 3,600,000 (no heartbeat within the run).
Each round measures both over the same window: Envoy's CPU (every thread's run time from
/proc/<pid>/task/*/schedstat, in ns) per worker per second, and the calls each worker made
to the collector (Envoy's `cluster.audit_collector.upstream_rq_total`). Reported: both
figures, their ratio and the CPU one heartbeat costs ((shipped - off) / heartbeats), as
medians of the rounds. Nothing asserts on a timing: it is a report.

Run after `make build`, with the Python of `.venv` (PyYAML comes with schemathesis):
    .venv/bin/python bench/heartbeat_cost.py
Knobs: HEARTBEAT_ROUNDS (3), HEARTBEAT_SECONDS (10), HEARTBEAT_WORKERS (2),
HEARTBEAT_COLLECTOR (default target/release/audit-collector, else target/debug/).
"""

import json
import os
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
ENVOY = REPO / ".venv/bin/envoy"
WASM = REPO / "target/wasm32-wasip1/wasm-release/audit_filter.wasm"
RELEASE_COLLECTOR = REPO / "target/release/audit-collector"
COLLECTOR = Path(os.environ.get("HEARTBEAT_COLLECTOR") or (
    RELEASE_COLLECTOR if RELEASE_COLLECTOR.exists() else REPO / "target/debug/audit-collector"))
ROUNDS = int(os.environ.get("HEARTBEAT_ROUNDS", "3"))
SECONDS = float(os.environ.get("HEARTBEAT_SECONDS", "10"))
WORKERS = int(os.environ.get("HEARTBEAT_WORKERS", "2"))
# `batch.flushIntervalMs` of each configuration: the shipped one, and one that sends no
# heartbeat within the run. Both tick every 100 ms (the tick is capped at 100 ms).
CONFIGS = {"shipped": 1000, "off": 3_600_000}
INGEST_TOKEN = "bench-ingest-token"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_get(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def wait_until(check, what, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"no {what} after {seconds} s")


def run_time_ns(pid):
    """Run time of every thread of the process so far (ns)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that ended between the listing and the read
    return total


def collector_calls(admin):
    _, body = http_get(f"http://127.0.0.1:{admin}/stats?filter=cluster.audit_collector.upstream_rq_total$")
    return sum(int(line.split(":")[1]) for line in body.decode().splitlines() if ":" in line)


def render(flush_interval_ms, listen, admin, collector):
    """`envoy.yaml` with this machine's addresses (both clusters: the collector, which
    answers the few warm-up requests too), the built filter and `flush_interval_ms`."""
    root = yaml.safe_load((REPO / "envoy.yaml").read_text())
    root["admin"]["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": admin}
    listener = root["static_resources"]["listeners"][0]
    listener["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": listen}
    host, port = collector.rsplit(":", 1)
    for cluster in root["static_resources"]["clusters"]:
        endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
        endpoint["address"]["socket_address"] = {"address": host, "port_value": int(port)}
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    wasm = next(f for f in manager["http_filters"] if f["name"] == "envoy.filters.http.wasm")
    plugin = wasm["typed_config"]["config"]
    plugin["vm_config"]["code"]["local"]["filename"] = str(WASM)
    configuration = json.loads(plugin["configuration"]["value"])
    configuration["batch"]["flushIntervalMs"] = flush_interval_ms
    plugin["configuration"]["value"] = json.dumps(configuration)
    return yaml.safe_dump(root)


def main():
    for path, how in [(ENVOY, "make setup"), (WASM, "make build"), (COLLECTOR, "make build")]:
        if not path.exists():
            raise SystemExit(f"missing {path}: run `{how}`")
    directory = Path(tempfile.mkdtemp(prefix="heartbeat-cost-"))
    processes = []

    def start(name, argv, env):
        log = open(directory / f"{name}.log", "ab")
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, **env})
        processes.append(process)
        return process

    try:
        address_file = directory / "collector.address"
        start("collector", [str(COLLECTOR), "serve", "--listen", "127.0.0.1:0", "--address-file", str(address_file),
                            "--database", str(directory / "audit.db")],
              {"AUDIT_TOKEN": "bench-read-token", "AUDIT_INGEST_TOKEN": INGEST_TOKEN, "RUST_LOG": "warn"})
        wait_until(lambda: address_file.exists() and address_file.read_text().strip(), "collector address")
        collector = address_file.read_text().strip()
        envoys = {}
        for name, flush_ms in CONFIGS.items():
            listen, admin = free_port(), free_port()
            config = directory / f"envoy-{name}.yaml"
            config.write_text(render(flush_ms, listen, admin, collector))
            process = start(f"envoy-{name}", [str(ENVOY), "-c", str(config), "--concurrency", str(WORKERS),
                                              "--disable-hot-restart", "--log-level", "warn"],
                            {"AUDIT_INGEST_TOKEN": INGEST_TOKEN})
            wait_until(lambda: http_get(f"http://127.0.0.1:{admin}/ready")[1].strip() == b"LIVE", f"ready {name}")
            envoys[name] = (process, listen, admin)
        # A worker heartbeats once it has captured something: requests on new connections
        # reach every worker (the kernel spreads connections over them).
        for _, listen, _ in envoys.values():
            for _ in range(20 * WORKERS):
                try:
                    http_get(f"http://127.0.0.1:{listen}/heartbeat-cost-warm-up")
                except OSError:
                    pass  # the collector answers 404 here: still a captured request
        time.sleep(3)

        rounds = []
        for number in range(ROUNDS):
            before = {name: (run_time_ns(p.pid), collector_calls(admin)) for name, (p, _, admin) in envoys.items()}
            time.sleep(SECONDS)
            after = {name: (run_time_ns(p.pid), collector_calls(admin)) for name, (p, _, admin) in envoys.items()}
            figures = {}
            for name in envoys:
                cpu_ns = after[name][0] - before[name][0]
                calls = after[name][1] - before[name][1]
                figures[name] = {"cpu_us_per_worker_s": cpu_ns / 1000 / WORKERS / SECONDS,
                                 "calls_per_worker_s": calls / WORKERS / SECONDS, "calls": calls, "cpu_ns": cpu_ns}
            heartbeats = figures["shipped"]["calls"] - figures["off"]["calls"]
            extra_ns = figures["shipped"]["cpu_ns"] - figures["off"]["cpu_ns"]
            figures["ratio"] = figures["shipped"]["cpu_us_per_worker_s"] / max(figures["off"]["cpu_us_per_worker_s"], 1e-9)
            figures["us_per_heartbeat"] = extra_ns / 1000 / heartbeats if heartbeats > 0 else float("nan")
            rounds.append(figures)
            print(f"round {number + 1}: " + ", ".join(
                f"{name} {figures[name]['cpu_us_per_worker_s']:.0f} us CPU and {figures[name]['calls_per_worker_s']:.2f} "
                f"calls per worker per s" for name in CONFIGS)
                + f"; ratio {figures['ratio']:.2f}; {figures['us_per_heartbeat']:.0f} us per heartbeat", flush=True)

        def median(pick):
            return statistics.median(pick(figures) for figures in rounds)

        load = os.getloadavg()
        print(f"\nEnvoy idle, {WORKERS} workers, {ROUNDS} rounds of {SECONDS:.0f} s, both Envoys in the same windows "
              f"(load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores); medians:")
        for name in CONFIGS:
            print(f"  {name:8} (flushIntervalMs {CONFIGS[name]}): "
                  f"{median(lambda f: f[name]['cpu_us_per_worker_s']):.0f} us CPU per worker per s, "
                  f"{median(lambda f: f[name]['calls_per_worker_s']):.2f} collector calls per worker per s")
        print(f"  shipped / off: {median(lambda f: f['ratio']):.2f}x; "
              f"one heartbeat: {median(lambda f: f['us_per_heartbeat']):.0f} us of Envoy CPU")
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
