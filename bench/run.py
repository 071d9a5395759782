#!/usr/bin/env python3
"""`make bench`: side-by-side measurements of audit-sidecar, appended to bench/results.md.

1. Envoy (one worker pinned to core 0, wrk pinned to core 1, nginx as the upstream):
   plain, a no-op wasm filter (the floor), the audit filter with the real collector, the
   audit filter with nginx answering its batches (the filter alone), and the built-in JSON
   access log; alternating configurations within each round. The collector shares core 1
   with wrk and nginx, at SCHED_IDLE so it only takes what they leave.
   Also, saturated only: the filter's ablation build stopped after each stage (the stage table).
1b. (`BENCH_ONLY=instructions`, not in the default run) Envoy's instructions per request under
   callgrind for the same configurations, one at a time: a stage table the load cannot move.
2. The collector's ingest over HTTP against a raw SQLite insert loop (the ceiling).
3. `GET /audit` page latency at the start and the end of a 1M- and a 10M-event trail, of
   numbered pages 100 and 1,000 (`pageNumber`, found by an index walk), and the collector's
   memory there.

It only reports: nothing here asserts on a timing. Every process it starts is stopped on
exit, Ctrl-C or failure. Knobs (environment): BENCH_ROUNDS (5), BENCH_SECONDS (6),
BENCH_LIGHT_SECONDS (5), BENCH_INGEST_EVENTS (200000), BENCH_INGEST_BATCH (500), BENCH_PG_INGEST_EVENTS
(400000, part 4's events per run),
BENCH_PAGE_REQUESTS (200), BENCH_COLLECTOR_PRIORITY (idle|normal),
BENCH_10M (1; 0 skips the 10M trail), BENCH_TMPDIR (where the temporary files go),
BENCH_NOTE (a line for the report, e.g. what else ran on the machine), BENCH_ONLY
(comma-separated parts: envoy,ingest,pages; or `--only collector|ingest|pages|envoy`), BENCH_COLLECTOR and BENCH_AUDIT_WASM (measure
other builds than the checkout's), BENCH_STAGES (1; 0 leaves out part 1's stage configurations,
the filter's ablation build stopping each request after one stage), BENCH_CANDIDATES
(`label=path.wasm,...`: other builds of the filter measured like audit-sink, side by side),
BENCH_CONFIGS (part 1's configurations, comma-separated; default all), BENCH_IDENTITY_HEADER (1; 0
sends no x-forwarded-email), BENCH_RESULTS (the file the
report is appended to; bench/results.md).
"""

import datetime
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
TOOL = BENCH / "target/release/audit-bench"
NOOP_WASM = BENCH / "target/wasm32-wasip1/wasm-release/noop_filter.wasm"
# The audit filter as the native Envoy dynamic module (filter/native), release build.
NATIVE_MODULE = ROOT / "target/release/libaudit_filter_native.so"
# Another build can be measured by pointing these at it (e.g. one of an older revision).
AUDIT_WASM = Path(os.environ.get("BENCH_AUDIT_WASM", ROOT / "target/wasm32-wasip1/wasm-release/audit_filter.wasm"))
# The filter built with feature `cost-stages` (see the Makefile's bench target).
STAGES_WASM = ROOT / "target/cost-stages/wasm32-wasip1/wasm-release/audit_filter.wasm"
COLLECTOR = Path(os.environ.get("BENCH_COLLECTOR", ROOT / "target/release/audit-collector"))
ENVOY = ROOT / ".venv/bin/envoy"
# Where the report is appended (a probe run on a loaded machine can go elsewhere).
RESULTS = Path(os.environ.get("BENCH_RESULTS", BENCH / "results.md"))

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "6"))
LIGHT_SECONDS = int(os.environ.get("BENCH_LIGHT_SECONDS", "5"))
INGEST_EVENTS = int(os.environ.get("BENCH_INGEST_EVENTS", "200000"))
# Part 4's events per run. Past --pg-max-unsealed-events (30,000 by default) PostgreSQL's ingest
# refuses batches, so up to that many still wait for the sealer at the last acknowledgement, and
# sealed / acknowledged comes out near 1 - that / the events sent: twice part 2's keeps it a
# reading of the steady state (the bound under 8% of a run) rather than of the run's length.
PG_INGEST_EVENTS = int(os.environ.get("BENCH_PG_INGEST_EVENTS", "400000"))
PAGE_REQUESTS = int(os.environ.get("BENCH_PAGE_REQUESTS", "200"))
ACTIVITY_REQUESTS = int(os.environ.get("BENCH_ACTIVITY_REQUESTS", "50"))
# Events per ingest request: the filter's default `batch.maxEvents`.
INGEST_BATCH = int(os.environ.get("BENCH_INGEST_BATCH", "500"))
WITH_10M = os.environ.get("BENCH_10M", "1") != "0"
ONLY = set(filter(None, os.environ.get("BENCH_ONLY", "envoy,ingest,pages,postgres").split(",")))
# `run.py --only collector|ingest|pages|envoy` (repeatable) overrides BENCH_ONLY; `collector`
# is its two parts, ingest and pages.
if "--only" in sys.argv:
    ONLY = set()
    for flag, value in zip(sys.argv, sys.argv[1:]):
        if flag == "--only":
            ONLY |= {"ingest", "pages"} if value == "collector" else set(value.split(","))
NOTE = os.environ.get("BENCH_NOTE", "")
# The collector's scheduling in part 1, where it shares core 1 with wrk and nginx:
# `idle` (SCHED_IDLE) or `normal`.
COLLECTOR_PRIORITY = os.environ.get("BENCH_COLLECTOR_PRIORITY", "idle")
# Part 4: collector replicas on one throwaway PostgreSQL, and how long the freshness probe runs.
PG_REPLICAS = [1, 2, 3]
FRESHNESS_SECONDS = int(os.environ.get("BENCH_FRESHNESS_SECONDS", "10"))
# Freshness is probed at these steady loads, as shares of what two replicas sealed.
FRESHNESS_LOADS = [0.5, 0.8]
# Trails (events) the PostgreSQL pages are timed on: generated as in part 3, then migrated.
PG_TRAILS = [int(size) for size in os.environ.get("BENCH_PG_TRAILS", "1000000,10000000").split(",")
             if WITH_10M or int(size) < 10_000_000]

READ_TOKEN = "bench-read-token"
INGEST_TOKEN = "bench-ingest-token"
CONFIGS = ["plain", "noop", "audit", "audit-sink", "native-sink", "access-log"]
# Where the filter's microseconds go: its ablation build, each request stopped after one
# stage (each does the earlier stages' work too); `audit-sink` is the last stage, `noop` the
# floor. Measured saturated only (c32), in the same alternating rounds.
STAGES = ["stage-callbacks", "stage-request-headers", "stage-host-reads", "stage-capture", "stage-json"]
STAGE_NAMES = {"noop": "no-op filter (floor)", "stage-callbacks": "(a) the audit filter's contexts, nothing read",
               "stage-request-headers": "(b1) + on_http_request_headers (identity check, stripping)",
               "stage-host-reads": "(b2) + on_log's host reads, results dropped",
               "stage-capture": "(c) + capture, typing, identity (event built, dropped)",
               "stage-json": "(d) + the event's JSON (dropped)", "audit-sink": "(e) + outbox and delivery: the filter"}
if os.environ.get("BENCH_STAGES", "1") != "0":
    CONFIGS += STAGES
# Other builds of the filter, each measured like audit-sink (batches to nginx), saturated only.
CANDIDATES = dict(item.split("=", 1) for item in filter(None, os.environ.get("BENCH_CANDIDATES", "").split(",")))
CONFIGS += [f"candidate-{label}" for label in CANDIDATES]
if os.environ.get("BENCH_CONFIGS"):
    CONFIGS = [config for config in os.environ["BENCH_CONFIGS"].split(",") if config in CONFIGS]
# Part 1b (`BENCH_ONLY=instructions`): Envoy's instructions per request under callgrind.
INSTRUCTION_CONFIGS = os.environ.get("BENCH_INSTRUCTION_CONFIGS", ",".join(
    ["plain", "noop", *STAGES, "audit-sink", "native-sink", *[f"candidate-{label}" for label in CANDIDATES]])).split(",")
INSTRUCTION_SECONDS = int(os.environ.get("BENCH_INSTRUCTION_SECONDS", "10"))
INSTRUCTION_REQUESTS = int(os.environ.get("BENCH_INSTRUCTION_REQUESTS", "2500"))
# Configurations measured at light load (c1) too; the others are compared saturated only.
LIGHT_CONFIGS = {"plain", "noop", "audit", "audit-sink", "native-sink", "access-log"}
# `audit-sink` is the audit filter with its batches answered by nginx instead of the
# collector: the filter's own cost, without the collector's CPU on the core that also runs
# the upstream and wrk (there is no third core to give it).
LOADS = {"saturated": 32, "light": 1}
# The same request for every configuration: a Pact Broker path, a client user agent and
# an identity, so the audit filter does its usual work (route typing, identity, JSON).
WRK_HEADERS = [
    "User-Agent: pact_broker-client/1.75.1 (ruby 3.2.2; x86_64-linux)",
    "x-forwarded-email: alice@example.com",
]
# BENCH_IDENTITY_HEADER=0: requests without the identity header (nothing for the filter to strip).
if os.environ.get("BENCH_IDENTITY_HEADER", "1") == "0":
    WRK_HEADERS = WRK_HEADERS[:1]
WRK_PATH = "/pacticipants/Foo/versions/1.0.0"
CLK_TCK = os.sysconf("SC_CLK_TCK")
GIB = 1 << 30


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------- processes


class Processes:
    """Every process this run started, so each one is stopped whatever happens."""

    def __init__(self, directory):
        self.directory = directory
        self.running = []

    def start(self, name, argv, env=None):
        log_path = self.directory / f"{name}.log"
        with open(log_path, "ab") as output:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        process.bench_name = name
        process.log_path = log_path
        self.running.append(process)
        return process

    def stop(self, process, grace=15):
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        if process in self.running:
            self.running.remove(process)

    def stop_all(self):
        for process in reversed(list(self.running)):
            self.stop(process, grace=5)


def fail(process, what):
    tail = process.log_path.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"{what}; last lines of {process.log_path}:\n{tail}")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_get(url, headers=None, timeout=2):
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.read()


def wait_until(check, process, what, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            fail(process, f"{process.bench_name} exited (code {process.returncode}) before {what}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    fail(process, f"{process.bench_name}: no {what} after {seconds} s")


def cpu_seconds(pid):
    """utime + stime of every thread of the process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def ingest_costs(pid):
    """What the collector process has spent so far: CPU seconds in all (utime + stime), of
    its writer thread (named `audit-writer`) and of the thread that checkpoints its WAL
    (`audit-wal-ckpt`), and bytes it has written
    (`wchar`: the WAL, the checkpoints into the database file, and its small HTTP answers)."""
    threads = {"audit-writer": 0.0, "audit-wal-ckpt": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            if name in threads:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                threads[name] += (int(fields[11]) + int(fields[12])) / CLK_TCK
        except OSError:
            continue
    io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return {"cpu_s": cpu_seconds(pid), "writer_cpu_s": threads["audit-writer"],
            "checkpointer_cpu_s": threads["audit-wal-ckpt"], "written_bytes": int(io["wchar"])}


def memory_mb(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    found = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M))
    return {key: int(value) / 1024 for key, value in found.items()}


def tool(*args, timeout=3600):
    completed = subprocess.run(
        [str(TOOL), *map(str, args)], capture_output=True, text=True, timeout=timeout
    )
    if completed.returncode != 0:
        raise RuntimeError(f"audit-bench {args[0]} failed:\n{completed.stderr}")
    return json.loads(completed.stdout)


# ---------------------------------------------------------------- services


def start_nginx(procs, directory):
    port = free_port()
    config = directory / "nginx.conf"
    text = (BENCH / "nginx.conf").read_text().replace("@PORT@", str(port)).replace("@DIR@", str(directory))
    config.write_text(text)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    argv = ["taskset", "-c", "1", nginx, "-c", str(config), "-p", str(directory), "-e", str(directory / "nginx-error.log")]
    process = procs.start("nginx", argv)
    wait_until(lambda: http_get(f"http://127.0.0.1:{port}/")[0] == 200, process, "answer from nginx")
    return process, port


def start_collector(procs, name, database, cpus=None, ready_within=30):
    address_file = database.parent / f"{name}.address"
    address_file.unlink(missing_ok=True)
    argv = [str(COLLECTOR), "serve", "--listen", "127.0.0.1:0", "--address-file", str(address_file), "--database", str(database)]
    if cpus:
        policy = ["chrt", "--idle", "0"] if COLLECTOR_PRIORITY == "idle" else []
        argv = ["taskset", "-c", cpus, *policy, *argv]
    env = {"AUDIT_TOKEN": READ_TOKEN, "AUDIT_INGEST_TOKEN": INGEST_TOKEN, "RUST_LOG": "warn"}
    process = procs.start(name, argv, env)
    wait_until(lambda: address_file.exists() and address_file.read_text().strip() != "", process, "address file", ready_within)
    address = address_file.read_text().strip()
    wait_until(lambda: http_get(f"http://{address}/healthz")[0] == 200, process, "healthy collector")
    return process, address


def start_envoy(procs, directory, config, upstream_port, collector_address, wrapper=(), ready_within=30,
                filter_patch=None):
    """One Envoy (`config` names the variant); `wrapper` runs it under another program (valgrind);
    `filter_patch` (JSON) is merged into the audit filter's configuration."""
    listen, admin = free_port(), free_port()
    variant = "audit" if config == "audit-sink" or config.startswith("candidate-") else config
    variant = "native" if config.startswith("native") else variant
    wasm = {"noop": NOOP_WASM}.get(variant, AUDIT_WASM)
    if config.startswith("stage-"):
        wasm = STAGES_WASM
    elif config.startswith("candidate-"):
        wasm = Path(CANDIDATES[config.removeprefix("candidate-")])
    completed = subprocess.run(
        [str(TOOL), "render", "--variant", variant,
         "--listen", f"127.0.0.1:{listen}", "--admin", f"127.0.0.1:{admin}",
         "--upstream", f"127.0.0.1:{upstream_port}", "--collector", collector_address,
         "--wasm", str(wasm), "--access-log", str(directory / f"access-{variant}.json"),
         *(["--filter-patch", filter_patch] if filter_patch else [])],
        capture_output=True, text=True, timeout=60,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"rendering the {variant} Envoy configuration failed:\n{completed.stderr}")
    config_file = directory / f"envoy-{config}.yaml"
    config_file.write_text(completed.stdout)
    argv = ["taskset", "-c", "0", *wrapper, str(envoy_binary() if wrapper else ENVOY), "-c", str(config_file),
            "--concurrency", "1", "--disable-hot-restart", "--log-level", "warn"]
    env = {"AUDIT_INGEST_TOKEN": INGEST_TOKEN}
    if variant == "native":
        env["ENVOY_DYNAMIC_MODULES_SEARCH_PATH"] = str(NATIVE_MODULE.parent)
    process = procs.start(f"envoy-{config}", argv, env)
    wait_until(lambda: http_get(f"http://127.0.0.1:{admin}/ready")[1].strip() == b"LIVE", process, "ready Envoy", ready_within)
    wait_until(lambda: http_get(f"http://127.0.0.1:{listen}{WRK_PATH}", timeout=10)[0] == 200, process,
               "answer through Envoy", ready_within)
    process.listen, process.admin = listen, admin
    return process


def envoy_binary():
    """The Envoy executable itself (`.venv/bin/envoy` is a Python launcher valgrind cannot follow)."""
    found = sorted((ROOT / ".venv/lib").glob("python*/site-packages/envoy/_bin/envoy"))
    if not found:
        raise RuntimeError("no Envoy binary under .venv/lib/python*/site-packages/envoy/_bin: run `make setup`")
    return found[-1]


# ---------------------------------------------------------------- 1. Envoy


def parse_duration_ms(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(port, connections, seconds):
    argv = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for header in WRK_HEADERS:
        argv += ["-H", header]
    argv.append(f"http://127.0.0.1:{port}{WRK_PATH}")
    output = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    percentiles = {p: parse_duration_ms(v) for p, v in re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.M)}
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {
        "requests": requests,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        # wrk leaves out the distribution when it saw no latency (e.g. no request completed).
        "p50_ms": percentiles.get("50", float("nan")),
        "p99_ms": percentiles.get("99", float("nan")),
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


def envoy_stats(admin):
    _, body = http_get(f"http://127.0.0.1:{admin}/stats?filter=audit_sidecar")
    # The wasm filter's stats are `wasmcustom.`, the native module's `dynamicmodulescustom.`.
    return {k: int(v) for k, v in re.findall(r"(?:wasmcustom|dynamicmodulescustom)\.audit_sidecar\.(\w+): (\d+)", body.decode())}


def bench_envoy(procs, directory):
    log("part 1: Envoy configurations (Envoy on core 0, wrk/nginx/collector on core 1)")
    nginx, upstream_port = start_nginx(procs, directory)
    database = directory / "envoy-collector" / "audit.db"
    collector, collector_address = start_collector(procs, "collector-envoy", database, cpus="1")
    sink_address = f"127.0.0.1:{upstream_port}"
    envoys = {config: start_envoy(procs, directory, config, upstream_port,
                                  collector_address if config == "audit" else sink_address)
              for config in CONFIGS}
    sent_to_audit = 0
    log("warm-up: 2 s of wrk -c32 per configuration")
    for variant in CONFIGS:
        warm_up = run_wrk(envoys[variant].listen, 32, 2)
        if variant == "audit":
            sent_to_audit += warm_up["requests"]
    runs = []
    collector_cpu, collector_events = 0.0, 0
    for round_number in range(ROUNDS):
        order = CONFIGS[round_number % len(CONFIGS):] + CONFIGS[:round_number % len(CONFIGS)]
        for load, connections in LOADS.items():
            for variant in order:
                if load == "light" and variant not in LIGHT_CONFIGS:
                    continue
                envoy = envoys[variant]
                seconds = SECONDS if load == "saturated" else LIGHT_SECONDS
                before = cpu_seconds(envoy.pid)
                collector_before = cpu_seconds(collector.pid)
                result = run_wrk(envoy.listen, connections, seconds)
                used = cpu_seconds(envoy.pid) - before
                result.update(config=variant, load=load, round=round_number + 1,
                              cpu_us_per_request=used * 1e6 / max(result["requests"], 1),
                              envoy_cpu_share=used / seconds)
                if variant == "audit":
                    sent_to_audit += result["requests"]
                    collector_cpu += cpu_seconds(collector.pid) - collector_before
                    collector_events += result["requests"]
                runs.append(result)
                log(f"round {round_number + 1}/{ROUNDS} {load:9} {variant:10} {result['rps']:9.0f} req/s "
                    f"{result['cpu_us_per_request']:6.1f} us CPU/req  p50 {result['p50_ms']:.3f} ms  p99 {result['p99_ms']:.3f} ms")
    # Delivery: wait (bounded) until the audit Envoy holds no more events, then count.
    stats, stored = {}, 0
    if "audit" in envoys:
        deadline = time.monotonic() + 20
        stats = envoy_stats(envoys["audit"].admin)
        while time.monotonic() < deadline and stats.get("buffered_events", 1) > 0:
            time.sleep(0.5)
            stats = envoy_stats(envoys["audit"].admin)
        time.sleep(1)
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
            stored = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    memory = {variant: memory_mb(envoys[variant].pid)["VmRSS"] for variant in CONFIGS}
    for process in [*envoys.values(), collector, nginx]:
        procs.stop(process)
    return {
        "runs": runs,
        "delivery": {"wrk_completed": sent_to_audit, "stored": stored, "envoy_stats": stats,
                     "collector_cpu_us_per_event": collector_cpu * 1e6 / max(collector_events, 1)},
        "envoy_rss_mb": memory,
    }


def bench_instructions(procs, directory):
    """Part 1b: Envoy's instructions per request under callgrind, per configuration.

    Unlike CPU time, an instruction count does not move with the machine's load, so the stage
    table can be read on a shared machine. Each configuration runs alone under valgrind
    (instrumentation off while Envoy starts and V8 compiles the module), is warmed up, then
    counted over one wrk run at -c8; the count over the requests wrk completed.
    """
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        raise RuntimeError("part instructions needs valgrind: apt-get install valgrind")
    log(f"part 1b: Envoy instructions per request under callgrind: {', '.join(INSTRUCTION_CONFIGS)}")
    nginx, upstream_port = start_nginx(procs, directory)
    sink_address = f"127.0.0.1:{upstream_port}"
    results = {}
    for config in INSTRUCTION_CONFIGS:
        out = directory / f"callgrind-{config}.out"
        wrapper = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--smc-check=all-non-file",
                   f"--callgrind-out-file={out}"]
        # Under callgrind Envoy serves ~100 requests/s: with the shipped 1 s flush interval each
        # batch would carry ~100 events, so a batch's fixed cost would weigh 5× what it does at
        # saturation. Batches go only when full (500 events) here, as at saturation.
        envoy = start_envoy(procs, directory, config, upstream_port, sink_address, wrapper=wrapper, ready_within=600,
                            filter_patch='{"batch": {"flushIntervalMs": 3600000}}' if config != "plain" else None)
        run_wrk(envoy.listen, 8, 3)
        idle = counted(envoy, out, lambda: time.sleep(INSTRUCTION_SECONDS))
        runs = []

        def load():
            # Enough requests that the batches sent in the window (one per 500) weigh what
            # they weigh at saturation, give or take one: at least INSTRUCTION_REQUESTS.
            while sum(run["requests"] for run in runs) < INSTRUCTION_REQUESTS and len(runs) < 12:
                runs.append(run_wrk(envoy.listen, 8, INSTRUCTION_SECONDS))

        busy = counted(envoy, out, load)
        procs.stop(envoy)
        requests = sum(run["requests"] for run in runs)
        if requests == 0:
            raise RuntimeError(f"no request completed through {config} under callgrind")
        # What Envoy does without requests (timers, the filter's tick, stats) is not the requests' cost.
        results[config] = {"requests": requests, "instructions": busy, "idle": idle,
                           "per_request": (busy - idle * len(runs)) / requests}
        log(f"  {config:22} {results[config]['per_request']:10,.0f} instructions/request over {requests} "
            f"requests (idle {idle / INSTRUCTION_SECONDS:,.0f}/s subtracted)")
    procs.stop(nginx)
    return results


def callgrind_control(pid, *args):
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True, timeout=120)


def counted(envoy, out, during):
    """The instructions Envoy (under callgrind, writing `out`) executes while `during()` runs."""
    callgrind_control(envoy.pid, "-z")
    callgrind_control(envoy.pid, "-i", "on")
    during()
    callgrind_control(envoy.pid, "-i", "off")
    callgrind_control(envoy.pid, "-d")
    dumps = sorted(out.parent.glob(f"{out.name}.*"), key=lambda path: path.stat().st_mtime)
    totals = re.search(r"^totals: (\d+)", dumps[-1].read_text(errors="replace"), re.M) if dumps else None
    if not totals:
        raise RuntimeError(f"callgrind wrote no totals to {out}.*")
    return int(totals.group(1))


# ---------------------------------------------------------------- 2. ingest


def empty_database(procs, directory):
    """A database created by the collector itself (its migrations, its WAL), then closed."""
    database = directory / "empty" / "audit.db"
    process, _ = start_collector(procs, "collector-schema", database)
    procs.stop(process)
    if process.returncode != 0:
        fail(process, "the collector did not stop cleanly after creating the schema")
    return database


def fresh_copy(empty, directory, name):
    target = directory / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for file in empty.parent.glob(empty.name + "*"):
        shutil.copy(file, target / file.name)
    return target / empty.name


def bench_ingest(procs, directory, empty):
    log(f"part 2: collector ingest, {INGEST_EVENTS} events per run in batches of {INGEST_BATCH}, vs a raw SQLite loop")
    runs = []
    # The raw loop commits every batch, every 8 batches (the most 8 connections can have
    # queued for one transaction: the fair ceiling) and every 64 (the writer's largest).
    kinds = [("collector", 1), ("collector", 8), ("raw", 1), ("raw", 8), ("raw", 64)]
    for round_number in range(ROUNDS):
        order = kinds[round_number % len(kinds):] + kinds[:round_number % len(kinds)]
        for kind, amount in order:
            database = fresh_copy(empty, directory, "ingest")
            if kind == "collector":
                process, address = start_collector(procs, "collector-ingest", database)
                before = ingest_costs(process.pid)
                result = tool("ingest", "--addr", address, "--token", INGEST_TOKEN, "--events", INGEST_EVENTS,
                              "--connections", amount, "--batch", INGEST_BATCH, "--run-id", round_number + 1)
                after = ingest_costs(process.pid)
                # Per event, from the collector's own counters: on a loaded machine these move
                # far less than events/s does.
                per_event = {key: (after[key] - before[key]) / INGEST_EVENTS for key in after}
                result.update(cpu_us_per_event=per_event["cpu_s"] * 1e6,
                              writer_cpu_us_per_event=per_event["writer_cpu_s"] * 1e6,
                              checkpointer_cpu_us_per_event=per_event["checkpointer_cpu_s"] * 1e6,
                              written_kb_per_event=per_event["written_bytes"] / 1024)
                result["collector_rss_mb"] = memory_mb(process.pid)["VmRSS"]
                procs.stop(process)
                label = f"collector, {amount} connection{'s' if amount > 1 else ''}"
            else:
                result = tool("raw-insert", "--db", database, "--events", INGEST_EVENTS, "--batch", INGEST_BATCH,
                              "--batches-per-commit", amount)
                label = f"raw loop, {amount * INGEST_BATCH} rows per commit"
            result.update(kind=label, round=round_number + 1)
            runs.append(result)
            log(f"round {round_number + 1}/{ROUNDS} {label:32} {result['events_per_s']:9.0f} events/s")
    shutil.rmtree(directory / "ingest", ignore_errors=True)
    return runs


# ---------------------------------------------------------------- 3. pages


def bench_pages(procs, directory, empty):
    sizes = [1_000_000] + ([10_000_000] if WITH_10M else [])
    free = shutil.disk_usage(directory).free
    if WITH_10M and free < 20 * GIB:
        log(f"only {free / GIB:.0f} GiB free in {directory}: skipping the 10M trail (needs ~10 GiB)")
        sizes = sizes[:1]
    database = fresh_copy(empty, directory, "trail")
    results = []
    for size in sizes:
        try:
            results.append(time_pages(procs, database, size))
        except Exception as error:  # noqa: BLE001 - the smaller trail's figures still count
            log(f"  the {size:,}-event trail failed: {error}")
            procs.stop_all()
            results.append({"events": size, "error": str(error).splitlines()[0]})
            break
    return results


# Pages filtered by method or status, one per share of the trail the value has: the bench's
# events are half GET and half PUT (201), ~1% 401, and no DELETE. The baseline for a schema
# that serves these filters otherwise (the partial indexes measured and not kept on
# 2026-12-05 made a numbered page of a frequent value 1.9x slower: docs/performance.md).
FILTERED_PAGES = {"method=GET (half)": "/audit?pageSize=100&method=GET",
                  "status=201 (half)": "/audit?pageSize=100&status=201",
                  "status=401 (~1%)": "/audit?pageSize=100&status=401",
                  "status=401, pageNumber 10": "/audit?pageSize=100&status=401&pageNumber=10",
                  "method=GET, pageNumber 100": "/audit?pageSize=100&method=GET&pageNumber=100",
                  "method=DELETE (none stored)": "/audit?pageSize=100&method=DELETE"}

ACTIVITY_LABELS = ["48 hours hourly", "whole trail daily", "one user, 48 hours hourly",
                   "6 h 17 min to 1 h 3 min back, both ends mid-minute", "one user, the same window"]


def time_pages(procs, database, size):
    """Grows the trail to `size` events and times the first and the last page on it."""
    log(f"part 3: generating a trail of {size:,} events")
    generated = tool("generate", "--db", database, "--events", size)
    log(f"  {generated['generated']:,} rows in {generated['seconds']:.0f} s; database {generated['db_bytes'] / GIB:.2f} GiB")
    starting = time.monotonic()
    process, address = start_collector(procs, "collector-pages", database, ready_within=600)
    startup_s = time.monotonic() - starting
    paths = ["/audit?pageSize=100", f"/audit?from={generated['last_page_uuid']}&pageSize=100",
             "/audit?pageSize=100&pageNumber=100", "/audit?pageSize=100&pageNumber=1000"]
    timed = tool("pages", "--addr", address, "--token", READ_TOKEN, "--count", PAGE_REQUESTS,
                 *[flag for path in paths for flag in ("--path", path)])
    # The viewer's chart: its default window (48 hours, hourly), the whole trail by day, and
    # one user's 48 hours (SQLite schema 16: the per-user rollup, its partial hour by seq range;
    # schema 17: the unfiltered partial hour from the minute rollup, its partial minute counted).
    # Then a window with both ends mid-minute (SQLite schema 17: partial hours from the minute
    # rollup, partial minutes counted; at 10M both ends lie where the 1M and 9M generations
    # overlap in time, so a user's edges are split into seq runs), unfiltered and for one user.
    now = time.time()
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 48 * 3600))
    millis = lambda at: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}Z"
    window = f"since={millis(now - (6 * 3600 + 17 * 60 + 13.417))}&until={millis(now - (3600 + 3 * 60 + 7.009))}"
    activity_paths = [f"/audit/activity?bucket=hour&since={since}", "/audit/activity?bucket=day",
                      f"/audit/activity?bucket=hour&since={since}&user_email=user7%40example.com",
                      f"/audit/activity?bucket=hour&{window}",
                      f"/audit/activity?bucket=hour&{window}&user_email=user7%40example.com"]
    activity = tool("pages", "--addr", address, "--token", READ_TOKEN, "--count", ACTIVITY_REQUESTS,
                    *[arg for path in activity_paths for arg in ("--path", path)])["pages"]
    filtered = tool("pages", "--addr", address, "--token", READ_TOKEN, "--count", PAGE_REQUESTS,
                    *[arg for path in FILTERED_PAGES.values() for arg in ("--path", path)])["pages"]
    memory = memory_mb(process.pid)
    procs.stop(process)
    first, last, page_100, page_1000 = timed["pages"]
    log(f"  first page median {first['median_ms']:.3f} ms p99 {first['p99_ms']:.3f}; "
        f"last page median {last['median_ms']:.3f} ms p99 {last['p99_ms']:.3f}; "
        f"pageNumber 100 median {page_100['median_ms']:.3f} ms, 1000 median {page_1000['median_ms']:.3f} ms; "
        f"RSS {memory['VmRSS']:.0f} MB; ready {startup_s:.1f} s after start")
    for label, timing in zip(ACTIVITY_LABELS, activity):
        log(f"  activity, {label}: median {timing['median_ms']:.2f} ms p99 {timing['p99_ms']:.2f}")
    for label, timing in zip(FILTERED_PAGES, filtered):
        log(f"  filtered page, {label}: median {timing['median_ms']:.3f} ms p99 {timing['p99_ms']:.3f}")
    return {"events": generated["events"], "generate": generated, "first": first, "last": last,
            "page_100": page_100, "page_1000": page_1000, "memory": memory, "startup_s": startup_s,
            "activity": activity, "filtered": filtered}


# ---------------------------------------------------------------- 4. PostgreSQL


class ThrowawayPostgres:
    """Debian's PostgreSQL in `directory`, on its own port; as the `postgres` user when root."""

    def __init__(self, directory):
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not versions:
            raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
        self.bin, self.directory, self.port = versions[-1].parent, directory, free_port()
        directory.mkdir(parents=True)
        self.as_server = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres")
            # The server runs as `postgres`, which must be able to reach its directory
            # through the bench's private (0700) temporary folder.
            directory.parent.chmod(0o711)
        self.run(self.bin / "initdb", "-D", directory / "data", "-A", "trust", "-U", "postgres")
        self.run(self.bin / "pg_ctl", "-D", directory / "data", "-w", "-l", directory / "server.log",
                 "-o", f"-p {self.port} -k {directory} -c listen_addresses=127.0.0.1 -c max_connections=200 "
                 "-c shared_preload_libraries=pg_stat_statements", "start")
        # Per-statement time and WAL inside the server (`statement_costs`): where sealing's time goes.
        self.query("postgres", "CREATE EXTENSION pg_stat_statements")

    def run(self, *argv):
        subprocess.run([*self.as_server, *map(str, argv)], check=True, capture_output=True, timeout=600)

    def create_database(self, name):
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres",
                        "-qc", f"CREATE DATABASE {name}"], check=True, capture_output=True, timeout=60)
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def query(self, database, sql):
        return subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
                               "-qAtc", sql], check=True, capture_output=True, text=True, timeout=60).stdout.strip()

    def wait_until_sealed(self, database, began, seconds=600):
        """Seconds from `began` until the sealer has emptied `unsequenced`."""
        while self.query(database, "SELECT count(*) FROM unsequenced") != "0":
            if time.monotonic() - began > seconds:
                raise RuntimeError(f"events still unsealed after {seconds} s")
            time.sleep(0.02)
        return time.monotonic() - began

    def statement_costs(self, database, events):
        """Per event, what the ingest statements and the sealing moves cost inside the server in `database`
        (pg_stat_statements: execution time, nested trigger work included, commits not; WAL bytes written)."""
        rows = self.query("postgres", f"""
            SELECT CASE WHEN query LIKE '%INSERT INTO trail_uuids%' THEN 'ingest'
                        WHEN query LIKE '%DELETE FROM unsequenced%' THEN 'seal' ELSE 'other' END,
                   sum(total_exec_time), sum(wal_bytes)
            FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
            WHERE d.datname = '{database}' GROUP BY 1""")
        costs = {}
        for line in filter(None, rows.splitlines()):
            kind, milliseconds, wal = line.split("|")
            costs[kind] = {"us": float(milliseconds) * 1000 / events, "wal": float(wal) / events}
        return costs

    def drop_database(self, name):
        self.query("postgres", f"DROP DATABASE {name}")

    def stop(self):
        self.run(self.bin / "pg_ctl", "-D", self.directory / "data", "-m", "fast", "stop")


def start_pg_collector(procs, name, url, directory):
    address_file = directory / f"{name}.address"
    address_file.unlink(missing_ok=True)
    argv = [str(COLLECTOR), "serve", "--listen", "127.0.0.1:0", "--address-file", str(address_file), "--database", url,
            "--signing-key", str(directory / "pg-signing-key.pem")]
    process = procs.start(name, argv, {"AUDIT_TOKEN": READ_TOKEN, "AUDIT_INGEST_TOKEN": INGEST_TOKEN, "RUST_LOG": "warn"})
    wait_until(lambda: address_file.exists() and address_file.read_text().strip() != "", process, "address file", 60)
    address = address_file.read_text().strip()
    wait_until(lambda: http_get(f"http://{address}/healthz")[0] == 200, process, "healthy collector")
    return process, address


def refused_as_behind(address):
    """Ingest batches the collector at `address` refused (503) because too many events waited for
    PostgreSQL's sealer (`--pg-max-unsealed-events`), from its /metrics."""
    _, body = http_get(f"http://{address}/metrics", timeout=10)
    line = 'audit_ingest_batches_rejected_total{reason="sealing-behind"} '
    return sum(int(row[len(line):]) for row in body.decode().splitlines() if row.startswith(line))


def ingest_across(addresses, round_number, events=None, rate=None, connections_in_all=8):
    """The ingest part's events and batches, split over `addresses`, 8 connections in all;
    with `rate` (events/s in all), paced instead of as fast as acknowledged."""
    events = events or INGEST_EVENTS
    share = events // len(addresses)
    connections = max(1, connections_in_all // len(addresses))
    pacing = ["--rate", str(rate / len(addresses))] if rate else []
    runs = [subprocess.Popen([str(TOOL), "ingest", "--addr", address, "--token", INGEST_TOKEN, "--events", str(share),
                              "--connections", str(connections), "--batch", str(INGEST_BATCH),
                              "--run-id", str(100 * round_number + index + 1), *pacing],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for index, address in enumerate(addresses)]
    results = []
    for run in runs:
        out, err = run.communicate(timeout=3600)
        if run.returncode != 0:
            raise RuntimeError(f"audit-bench ingest failed:\n{err}")
        results.append(json.loads(out))
    events = sum(result["events"] for result in results)
    seconds = max(result["seconds"] for result in results)
    return {"events": events, "seconds": seconds, "events_per_s": events / seconds,
            "retries_503": sum(result["retries_503"] for result in results)}


def bench_postgres(procs, directory, empty):
    log(f"part 4: PostgreSQL, ingest with {PG_REPLICAS} replicas vs SQLite in the same rounds, freshness, pages")
    server = ThrowawayPostgres(directory / "postgres")
    try:
        runs = []
        for round_number in range(ROUNDS):
            database = fresh_copy(empty, directory, "pg-sqlite")
            process, address = start_collector(procs, "collector-sqlite", database)
            result = ingest_across([address], round_number, events=PG_INGEST_EVENTS)
            procs.stop(process)
            # SQLite acknowledges after the commit that makes the events readable.
            runs.append({**result, "sealed_per_s": result["events_per_s"], "replicas": 0, "round": round_number + 1})
            log(f"round {round_number + 1}/{ROUNDS} SQLite, 8 connections        {result['events_per_s']:9.0f} events/s")
            for replicas in PG_REPLICAS:
                name = f"ingest_{round_number}_{replicas}"
                url = server.create_database(name)
                started = [start_pg_collector(procs, f"pg-{index}", url, directory) for index in range(replicas)]
                began = time.monotonic()
                result = ingest_across([address for _, address in started], round_number, events=PG_INGEST_EVENTS)
                # Acknowledged is not yet readable: the sealer orders the queue afterwards.
                # What still waits at the last acknowledgement is at most the back-pressure bound
                # (--pg-max-unsealed-events) plus what passed it within one reading.
                unsealed_at_ack = int(server.query(name, "SELECT count(*) FROM unsequenced"))
                sealed_after = server.wait_until_sealed(name, began)
                refused = sum(refused_as_behind(address) for _, address in started)
                for process, _ in started:
                    procs.stop(process)
                runs.append({**result, "sealed_per_s": result["events"] / sealed_after,
                             "replicas": replicas, "round": round_number + 1, "unsealed_at_ack": unsealed_at_ack,
                             "refused_behind": refused, "costs": server.statement_costs(name, result["events"])})
                log(f"round {round_number + 1}/{ROUNDS} PostgreSQL, {replicas} replica(s)      "
                    f"{result['events_per_s']:9.0f} events/s acknowledged, {runs[-1]['sealed_per_s']:9.0f} sealed; "
                    f"{refused} batches refused as the sealer was behind (503, retried after Retry-After), "
                    f"{unsealed_at_ack:,} unsealed at the last acknowledgement")
        # Freshness at a sustained load: a steady rate below what two replicas sealed above
        # (at the saturated rate the queue only grows, and so does any delay).
        capacity = statistics.median(r["sealed_per_s"] for r in runs if r["replicas"] == 2)
        freshness = []
        for share in FRESHNESS_LOADS:
            rate = share * capacity
            name = f"freshness_{int(share * 100)}"
            url = server.create_database(name)
            started = [start_pg_collector(procs, f"pg-fresh-{index}", url, directory) for index in range(2)]
            (_, loaded), (_, probed) = started
            events = int(rate * (FRESHNESS_SECONDS + 30))
            load = subprocess.Popen([str(TOOL), "ingest", "--addr", loaded, "--token", INGEST_TOKEN, "--events", str(events),
                                     "--connections", "4", "--batch", str(INGEST_BATCH), "--run-id", "7777",
                                     "--rate", str(rate)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                time.sleep(2)  # the load reaches its rate before the first probe
                probe = tool("freshness", "--addr", probed, "--read-addr", loaded, "--token", INGEST_TOKEN,
                             "--read-token", READ_TOKEN, "--seconds", FRESHNESS_SECONDS)
            finally:
                load.kill()
                load.wait()
            refused = sum(refused_as_behind(address) for _, address in started)
            for process, _ in started:
                procs.stop(process)
            freshness.append({**probe, "share": share, "rate": rate, "refused_behind": refused})
            log(f"  freshness at {rate:,.0f} events/s ({share:.0%} of 2 replicas' sealing): median "
                f"{probe['median_ms']:.1f} ms, p99 {probe['p99_ms']:.1f} ms over {probe['probes']} probes")
        pages = []
        for size in PG_TRAILS:
            database = fresh_copy(empty, directory, "pg-trail")
            generated = tool("generate", "--db", database, "--events", size)
            url = server.create_database(f"pages_{size}")
            migrated = subprocess.run([str(COLLECTOR), "migrate", "--from", str(database), "--to", url],
                                      capture_output=True, text=True, timeout=7200)
            if migrated.returncode != 0:
                raise RuntimeError(f"migrate failed:\n{migrated.stderr}")
            process, address = start_pg_collector(procs, "pg-pages", url, directory)
            paths = ["/audit?pageSize=100", f"/audit?from={generated['last_page_uuid']}&pageSize=100"]
            timed = tool("pages", "--addr", address, "--token", READ_TOKEN, "--count", PAGE_REQUESTS,
                         "--path", paths[0], "--path", paths[1])
            procs.stop(process)
            first, last = timed["pages"]
            pages.append({"events": generated["events"], "first": first, "last": last})
            log(f"  PostgreSQL {size:,} events: first page median {first['median_ms']:.3f} ms, last {last['median_ms']:.3f} ms")
            Path(database).unlink(missing_ok=True)
            server.drop_database(f"pages_{size}")
        return {"ingest": runs, "freshness": freshness, "pages": pages}
    finally:
        server.stop()


# ---------------------------------------------------------------- report


def spread(values, digits=0):
    """median (min–max)."""
    values = list(values)
    if not values:
        return "n/a"
    fmt = f"{{:,.{digits}f}}"
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def paired_ratios(runs, load, numerator, denominator, key="rps", combine=lambda a, b: a / b):
    """Per-round ratios (or another `combine`): each round's two figures were measured minutes apart at most."""
    by_round = {}
    for run in runs:
        if run["load"] == load:
            by_round.setdefault(run["round"], {})[run["config"]] = run[key]
    return [combine(r[numerator], r[denominator]) for r in by_round.values() if numerator in r and denominator in r]


def stage_table(runs):
    """Part 1's stage rows: what each stage of the filter adds to Envoy's CPU per request."""
    rows = [config for config in ["noop", *STAGES, "audit-sink", *CONFIGS] if config in CONFIGS and
            (config in ("noop", "audit-sink") or config.startswith(("stage-", "candidate-")))]
    rows = list(dict.fromkeys(rows))
    if "noop" not in rows or len(rows) < 2:
        return []
    cpu = lambda config: [r["cpu_us_per_request"] for r in runs if r["config"] == config and r["load"] == "saturated"]
    lines = ["", "Where the filter's microseconds go (c32 only): the filter's ablation build (feature `cost-stages`) "
             "stops each request after one stage; each stage does the earlier ones' work too. Over the no-op and the "
             "step from the row above are medians of per-round differences of Envoy CPU µs/request.", "",
             "| configuration | Envoy CPU µs/req (c32) | over the no-op, µs | step from the row above, µs | req/s vs no-op |",
             "| --- | --- | --- | --- | --- |"]
    previous = None
    for config in rows:
        over = paired_ratios(runs, "saturated", config, "noop", key="cpu_us_per_request", combine=lambda a, b: a - b)
        step = (paired_ratios(runs, "saturated", config, previous, key="cpu_us_per_request", combine=lambda a, b: a - b)
                if previous and not config.startswith("candidate-") else [])
        label = STAGE_NAMES.get(config, f"candidate `{config.removeprefix('candidate-')}` (batches to nginx)")
        lines.append(f"| {label} | {spread(cpu(config), 1)} | {spread(over, 1) if config != 'noop' else ''} "
                     f"| {spread(step, 1) if step else ''} | {spread(paired_ratios(runs, 'saturated', config, 'noop'), 2)} |")
        if not config.startswith("candidate-"):
            previous = config
    return lines + [""]


def instruction_table(instructions):
    """Part 1b's table: Envoy's instructions per request, each configuration over the no-op and over the row above."""
    lines = ["### 1b. Envoy instructions per request (callgrind)", "",
             f"Each configuration alone under `valgrind --tool=callgrind`, counted over runs of {INSTRUCTION_SECONDS} s of "
             f"wrk -c8 until at least {INSTRUCTION_REQUESTS:,} requests (batches of the audit filter go when full, 500 "
             f"events), after a 3 s warm-up, minus what the same Envoy executes in as long with no request; all of "
             "Envoy's instructions (V8's compiled wasm included) over the requests wrk completed. A count hardly moves "
             "with the machine's load (unlike CPU time); an instruction is not a cycle, though: V8's entries and exits "
             "cost more cycles per instruction than the rest.", "",
             "| configuration | instructions/request | over the no-op | step from the row above | requests counted |",
             "| --- | --- | --- | --- | --- |"]
    floor = instructions.get("noop", {}).get("per_request")
    previous = None
    for config, result in instructions.items():
        label = STAGE_NAMES.get(config, {"plain": "plain Envoy"}.get(config, config))
        over = f"{result['per_request'] - floor:+,.0f}" if floor and config not in ("noop", "plain") else ""
        step = f"{result['per_request'] - previous:+,.0f}" if previous and config not in ("noop", "plain") else ""
        if config.startswith("candidate-") and "audit-sink" in instructions:
            step = f"{result['per_request'] - instructions['audit-sink']['per_request']:+,.0f} vs (e)"
        lines.append(f"| {label} | {result['per_request']:,.0f} | {over} | {step} | {result['requests']:,} |")
        if not config.startswith("candidate-"):
            previous = result["per_request"]
    return lines + [""]


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown")
    memory = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) / 1024 / 1024
    return f"{os.cpu_count()} cores, {cpu}, {memory:.0f} GiB RAM, Linux {os.uname().release}"


def git_revision():
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "filter", "collector", "event"],
                               capture_output=True, text=True).stdout.strip()
        return rev + (" + uncommitted changes in filter/collector/event" if dirty else "")
    except OSError:
        return "unknown"


def report(envoy, ingest, pages, started, load_before, failures, postgres=None, instructions=None):
    lines, summary = [], []
    if instructions:
        lines += instruction_table(instructions)

    def target(name, figure, goal, met):
        summary.append((name, figure, goal, "n/a" if met is None else ("yes" if met else "no")))

    if envoy:
        runs = envoy["runs"]
        median = lambda config, load, key: statistics.median(r[key] for r in runs if r["config"] == config and r["load"] == load)
        lines += ["### 1. Envoy: one worker on core 0, wrk on core 1, nginx upstream", "",
                  f"wrk -t1, {SECONDS} s at -c32 (saturated) and {LIGHT_SECONDS} s at -c1 (light) per configuration per "
                  f"round; {ROUNDS} rounds, configurations alternating. Median (min–max). CPU/request is Envoy's "
                  "utime+stime from /proc over the run divided by the requests wrk completed. Ratios are medians of "
                  "per-round ratios.", "",
                  "| configuration | req/s (c32) | Envoy CPU µs/req (c32) | vs plain | vs no-op floor | p50 ms (c32) | p99 ms (c32) | p50 ms (c1) | p99 ms (c1) | Envoy RSS MB after |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        names = {"plain": "plain Envoy", "noop": "no-op wasm filter (floor)", "audit": "audit filter + collector",
                 "audit-sink": "audit filter, batches to nginx (the filter alone)",
                 "native-sink": "native audit filter (dynamic module), batches to nginx", "access-log": "built-in JSON access log"}
        for config in [config for config in CONFIGS if config in LIGHT_CONFIGS]:
            pick = lambda load, key: [r[key] for r in runs if r["config"] == config and r["load"] == load]
            lines.append(
                f"| {names[config]} | {spread(pick('saturated', 'rps'))} | {spread(pick('saturated', 'cpu_us_per_request'), 1)} "
                f"| {spread(paired_ratios(runs, 'saturated', config, 'plain'), 2)} | {spread(paired_ratios(runs, 'saturated', config, 'noop'), 2)} "
                f"| {spread(pick('saturated', 'p50_ms'), 3)} | {spread(pick('saturated', 'p99_ms'), 3)} "
                f"| {spread(pick('light', 'p50_ms'), 3)} | {spread(pick('light', 'p99_ms'), 3)} | {envoy['envoy_rss_mb'][config]:.0f} |")
        lines += stage_table(runs)
        delivery = envoy["delivery"]
        stats = delivery["envoy_stats"]
        errors = sum(r["non_2xx"] for r in runs)
        lines += [] if "audit" not in CONFIGS else ["", f"Audit delivery: wrk completed {delivery['wrk_completed']:,} requests through the audit Envoy "
                  f"(warm-up included); the collector stored {delivery['stored']:,} events "
                  f"({delivery['stored'] / max(delivery['wrk_completed'], 1):.4f}×; requests cut off when a wrk run "
                  f"ends are audited too but not counted by wrk). Filter stats: {json.dumps(stats)}. "
                  f"Collector CPU (on core 1 with wrk and nginx, scheduling `{COLLECTOR_PRIORITY}`): "
                  f"{delivery['collector_cpu_us_per_event']:.1f} µs per event. "
                  f"Non-2xx answers in all runs: {errors}.", ""]
        measured = [(config, label) for config, label in [("audit", "audit filter + collector"), ("audit-sink", "audit filter, batches to nginx")]
                    if config in CONFIGS and {"noop", "plain"} <= set(CONFIGS)]
        if "native-sink" in CONFIGS and "plain" in CONFIGS:
            ratio = statistics.median(paired_ratios(runs, "saturated", "native-sink", "plain"))
            target("throughput vs plain Envoy: native audit filter, batches to nginx", f"{ratio:.2f}×", "≥ 0.95×", ratio >= 0.95)
            gap = statistics.median(r - p for r, p in zip(
                [r["p99_ms"] for r in sorted(runs, key=lambda r: r["round"]) if r["config"] == "native-sink" and r["load"] == "light"],
                [r["p99_ms"] for r in sorted(runs, key=lambda r: r["round"]) if r["config"] == "plain" and r["load"] == "light"]))
            target("p99 at light load (c1) − plain: native audit filter", f"{gap:+.3f} ms", "≤ +0.05 ms", gap <= 0.05)
        for config, label in measured:
            ratio = statistics.median(paired_ratios(runs, "saturated", config, "noop"))
            target(f"throughput vs no-op filter: {label}", f"{ratio:.2f}×", "≥ 0.90×", ratio >= 0.90)
        for config, label in measured:
            gap = statistics.median(r - p for r, p in zip(
                [r["p99_ms"] for r in sorted(runs, key=lambda r: r["round"]) if r["config"] == config and r["load"] == "light"],
                [r["p99_ms"] for r in sorted(runs, key=lambda r: r["round"]) if r["config"] == "plain" and r["load"] == "light"]))
            target(f"p99 at light load (c1) − plain: {label}",
                   f"{gap:+.3f} ms ({median(config, 'light', 'p99_ms'):.3f} vs {median('plain', 'light', 'p99_ms'):.3f} ms)",
                   "≤ +0.1 ms", gap <= 0.1)
        if ("audit", "audit filter + collector") in measured:
            target("audit filter + collector throughput vs plain Envoy", f"{statistics.median(paired_ratios(runs, 'saturated', 'audit', 'plain')):.2f}×", "(context)", None)

    if ingest:
        event_bytes = next((r["body_bytes"] // INGEST_BATCH for r in ingest if "body_bytes" in r), 0)
        lines += ["### 2. Collector ingest: HTTP batches vs a raw SQLite loop", "",
                  f"{INGEST_EVENTS:,} realistic events (~{event_bytes} bytes of JSON each) per run in batches of {INGEST_BATCH} (the filter's default `batch.maxEvents`), with random uuids as the filter makes them, into a fresh copy of a collector-created database "
                  "(WAL, synchronous=FULL); collector and load client unpinned on the 2 cores. The raw loop is one "
                  "process inserting the same rows with the collector's INSERT and pragmas, rows built before the clock "
                  f"starts. {ROUNDS} rounds, alternating. Median (min–max).", "",
                  "Collector CPU is its utime + stime from /proc over the run per event stored, and its writer "
                  "thread's (`audit-writer`) alone, and its WAL checkpointer thread's (`audit-wal-ckpt`, since "
                  "2026-12-05; before, the checkpoints ran on the writer); written is the bytes it wrote (`wchar`: the "
                  "WAL, the WAL checkpoints into the database file, its HTTP answers) per event.", "",
                  "| what | events/s | 503 retries (median) | collector CPU µs/event | of which the writer thread | "
                  "of which the checkpointer thread | written KB/event |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        kinds = []
        for run in ingest:
            if run["kind"] not in kinds:
                kinds.append(run["kind"])
        rate = {kind: [r["events_per_s"] for r in ingest if r["kind"] == kind] for kind in kinds}
        for kind in kinds:
            retries = [r.get("retries_503", 0) for r in ingest if r["kind"] == kind]
            costs = [spread([r[key] for r in ingest if r["kind"] == kind], 1) if kind.startswith("collector") else ""
                     for key in ("cpu_us_per_event", "writer_cpu_us_per_event", "checkpointer_cpu_us_per_event",
                                 "written_kb_per_event")]
            lines.append(f"| {kind} | {spread(rate[kind])} | {statistics.median(retries):.0f} | {' | '.join(costs)} |")
        best = statistics.median(rate["collector, 8 connections"])
        raw = {amount: statistics.median(rate[f"raw loop, {amount * INGEST_BATCH} rows per commit"]) for amount in (1, 8, 64)}
        lines += ["", f"Collector (8 connections) vs raw loop: {best / raw[8]:.2f}× the loop committing every "
                  f"{8 * INGEST_BATCH:,} rows (8 batches, the most 8 connections can have queued for one commit), "
                  f"{best / raw[1]:.2f}× the loop committing every batch, {best / raw[64]:.2f}× the loop committing "
                  f"every {64 * INGEST_BATCH:,} rows (the writer's largest transaction, 64 batches).", ""]
        cpu = statistics.median(r["cpu_us_per_event"] for r in ingest if r["kind"] == "collector, 8 connections")
        target("ingest, collector with 8 connections (issue 25)", f"{best:,.0f} events/s", "≥ 40,000 events/s", best >= 40_000)
        target(f"ingest vs raw SQLite loop at the collector's commit size ({8 * INGEST_BATCH:,} rows/commit; "
               f"{64 * INGEST_BATCH:,}; {INGEST_BATCH})",
               f"{best / raw[8]:.2f}×; {best / raw[64]:.2f}×; {best / raw[1]:.2f}×", "≥ 0.9×", best / raw[8] >= 0.9)
        target("collector CPU per event stored, 8 connections", f"{cpu:.1f} µs", "≤ 15 µs", cpu <= 15)

    biggest = None
    if pages:
        lines += ["### 3. `GET /audit` pages of 100 events, straight to the collector", "",
                  f"{PAGE_REQUESTS} timed sequential requests per page on one keep-alive connection (after 10 untimed), "
                  "first page, last page (`from`), and `pageNumber` 100 and 1,000 interleaved. The trail is generated "
                  "straight into a collector-created database (realistic ~800-byte bodies); the file is in the OS page "
                  "cache (warm).", "",
                  "| stored events | database | collector ready after | first page median / p99 ms | last page median / p99 ms | last/first | pageNumber 100 median / p99 ms (× first) | pageNumber 1000 median / p99 ms (× first) | collector RSS MB (peak) |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for page in pages:
            if "error" in page:
                lines.append(f"| {page['events']:,} | failed: {page['error']} | | | | | | | |")
                continue
            lines.append(f"| {page['events']:,} | {page['generate']['db_bytes'] / GIB:.2f} GiB | {page['startup_s']:.1f} s | "
                         f"{page['first']['median_ms']:.3f} / {page['first']['p99_ms']:.3f} | "
                         f"{page['last']['median_ms']:.3f} / {page['last']['p99_ms']:.3f} | "
                         f"{page['last']['median_ms'] / page['first']['median_ms']:.2f}× | "
                         + "".join(f"{page[key]['median_ms']:.3f} / {page[key]['p99_ms']:.3f} "
                                   f"({page[key]['median_ms'] / page['first']['median_ms']:.1f}×) | "
                                   for key in ("page_100", "page_1000"))
                         + f"{page['memory']['VmRSS']:.0f} ({page['memory']['VmHWM']:.0f}) |")
        lines.append("")
        measured = [page for page in pages if "error" not in page]
        if len(measured) < len(pages):
            target(f"100-event page at {pages[-1]['events'] / 1e6:.0f}M", "not measured (failed)", "≤ 1 ms", None)
        biggest = measured[-1] if measured else None
        lines += ["`GET /audit/activity` (the viewer's chart), same collector, same trail: "
                  f"{ACTIVITY_REQUESTS} timed requests per query, interleaved.", "",
                  "| stored events | " + " | ".join(f"{label} median / p99 ms" for label in ACTIVITY_LABELS) + " |",
                  "| --- |" + " --- |" * len(ACTIVITY_LABELS)]
        for page in measured:
            lines.append(f"| {page['events']:,} | " + " | ".join(
                f"{timing['median_ms']:.2f} / {timing['p99_ms']:.2f}" for timing in page["activity"]) + " |")
        lines.append("")
        filtered_labels = list(FILTERED_PAGES)
        lines += ["Pages of 100 filtered by method or status (the value's share of the trail in brackets), same "
                  f"collector, same trail: {PAGE_REQUESTS} timed requests per page, interleaved.", "",
                  "| stored events | " + " | ".join(f"{label} median / p99 ms" for label in filtered_labels) + " |",
                  "| --- |" + " --- |" * len(filtered_labels)]
        for page in measured:
            lines.append(f"| {page['events']:,} | " + " | ".join(
                f"{timing['median_ms']:.3f} / {timing['p99_ms']:.3f}" for timing in page.get("filtered", [])) + " |")
        lines.append("")
    if pages and biggest:
        label = f"{biggest['events'] / 1e6:.0f}M"
        worst = max(biggest["first"]["median_ms"], biggest["last"]["median_ms"])
        target(f"100-event page at {label} (median of first/last; p99)",
               f"{worst:.3f} ms; p99 {max(biggest['first']['p99_ms'], biggest['last']['p99_ms']):.3f} ms", "≤ 1 ms", worst <= 1.0)
        ratio = biggest["last"]["median_ms"] / biggest["first"]["median_ms"]
        target(f"last page / first page at {label}", f"{ratio:.2f}×", "≤ 1.5×", ratio <= 1.5)
        # Issue 25's chart goals, on the same trail.
        chart, user_chart = biggest["activity"][0]["median_ms"], biggest["activity"][2]["median_ms"]
        target(f"48 h chart at {label} (median)", f"{chart:.2f} ms", "≤ 5 ms", chart <= 5.0)
        target(f"one user's 48 h chart at {label} (median)", f"{user_chart:.2f} ms", "≤ 30 ms", user_chart <= 30.0)
        target(f"collector memory at {label} (RSS)", f"{biggest['memory']['VmRSS']:.0f} MB", "≤ 100 MB", biggest["memory"]["VmRSS"] <= 100)

    if postgres:
        runs = postgres["ingest"]
        sqlite_by_round = {r["round"]: r["events_per_s"] for r in runs if r["replicas"] == 0}
        lines += ["### 4. PostgreSQL: collector replicas on one server", "",
                  f"Ingest: part 2's realistic events, {PG_INGEST_EVENTS:,} per run (BENCH_PG_INGEST_EVENTS), batches of {INGEST_BATCH}, 8 connections in all, split over the "
                  "replicas; each round measures SQLite first, then 1, 2 and 3 replicas on a fresh PostgreSQL database. "
                  "Ratio: to the SQLite figure of the same round, median (min–max).", "",
                  "Acknowledged: events / time until the last batch was answered. Sealed: events / time until the "
                  "last one was readable (PostgreSQL's sealer orders and chains the queue after the acknowledgement; "
                  "SQLite's acknowledgement follows the commit that makes them readable). Past "
                  "`--pg-max-unsealed-events` waiting for the sealer, PostgreSQL's ingest answers 503 and the load "
                  "client retries after Retry-After (refused: batches the replicas' /metrics counted; unsealed at the "
                  "last acknowledgement: what the sealer still had to seal then, so sealed / acknowledged is about "
                  "1 - that / the events sent).", "",
                  "| store | acknowledged events/s | sealed (readable) events/s | sealed, ratio to SQLite | "
                  "batches refused (503, sealer behind) | unsealed at the last acknowledgement |",
                  "| --- | --- | --- | --- | --- | --- |",
                  f"| SQLite, 1 collector | {spread(list(sqlite_by_round.values()))} | "
                  f"{spread(list(sqlite_by_round.values()))} | 1 | n/a | n/a |"]
        for replicas in PG_REPLICAS:
            mine = [r for r in runs if r["replicas"] == replicas]
            ratios = [r["sealed_per_s"] / sqlite_by_round[r["round"]] for r in mine if r["round"] in sqlite_by_round]
            lines.append(f"| PostgreSQL, {replicas} replica{'s' if replicas > 1 else ''} | "
                         f"{spread([r['events_per_s'] for r in mine])} | {spread([r['sealed_per_s'] for r in mine])} | "
                         f"{spread(ratios, 2)} | {spread([r.get('refused_behind', 0) for r in mine])} | "
                         f"{spread([r.get('unsealed_at_ack', 0) for r in mine])} |")
        lines += ["", "Where PostgreSQL's time goes per event, in the same rounds (pg_stat_statements in the throwaway "
                  "server: each statement's execution, the activity trigger's nested work included, commits not; WAL "
                  "bytes hardly depend on the machine's load, apart from full-page images after a checkpoint, which "
                  "land on the sealing moves mostly; microseconds are the machine's). Ingest runs on every replica's "
                  "connections at once; the sealing move runs in one backend at a time, so 1,000,000 / its µs is the "
                  "most events/s one sealer can seal however many replicas ingest.", "",
                  "| replicas | ingest statement µs/event | ingest WAL bytes/event | sealing move µs/event | "
                  "sealing WAL bytes/event | one sealer's ceiling, events/s | sealed / acknowledged |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for replicas in PG_REPLICAS:
            mine = [r for r in runs if r["replicas"] == replicas and "costs" in r]
            cost = lambda kind, key: [r["costs"].get(kind, {}).get(key, 0.0) for r in mine]
            ceiling = [1e6 / us for us in cost("seal", "us") if us > 0]
            lines.append(f"| {replicas} | {spread(cost('ingest', 'us'), 1)} | {spread(cost('ingest', 'wal'))} | "
                         f"{spread(cost('seal', 'us'), 1)} | {spread(cost('seal', 'wal'))} | {spread(ceiling)} | "
                         f"{spread([r['sealed_per_s'] / r['events_per_s'] for r in mine], 2)} |")
            target(f"PostgreSQL sealed events/s, {replicas} replica(s)", spread([r["sealed_per_s"] for r in mine]),
                   "≥ 30,000", bool(mine) and statistics.median(r["sealed_per_s"] for r in mine) >= 30000)
            target(f"PostgreSQL sealed / acknowledged, {replicas} replica(s)",
                   spread([r["sealed_per_s"] / r["events_per_s"] for r in mine], 2), "≥ 0.85",
                   bool(mine) and statistics.median(r["sealed_per_s"] / r["events_per_s"] for r in mine) >= 0.85)
        lines += ["", "Freshness: one probe event at a time acknowledged by one replica, then polled through the other "
                  "until readable, while a steady paced load (4 connections) goes to the first; the load is a share "
                  "of the sealed rate two replicas reached above.", "",
                  "| steady load | probes | median ms | p99 ms | max ms | not readable within 30 s | batches refused (503, sealer behind) |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for fresh in postgres["freshness"]:
            lines.append(f"| {fresh['rate']:,.0f} events/s ({fresh['share']:.0%}) | {fresh['probes']} | "
                         f"{fresh['median_ms']:.1f} | {fresh['p99_ms']:.1f} | {fresh['max_ms']:.1f} | {fresh['given_up']} | "
                         f"{fresh.get('refused_behind', 0)} |")
        lines += ["", "| stored events (migrated) | first page median / p99 ms | last page median / p99 ms |",
                  "| --- | --- | --- |"]
        for page in postgres["pages"]:
            lines.append(f"| {page['events']:,} | {page['first']['median_ms']:.3f} / {page['first']['p99_ms']:.3f} | "
                         f"{page['last']['median_ms']:.3f} / {page['last']['p99_ms']:.3f} |")
        lines.append("")
        for fresh in postgres["freshness"]:
            goal = 250 if fresh["share"] >= 0.8 else 1000  # issue 25: p99 ≤ 250 ms at 80% of sealed capacity
            target(f"freshness p99 on PostgreSQL at {fresh['share']:.0%} of sealing capacity",
                   f"{fresh['p99_ms']:.0f} ms", f"≤ {goal} ms", fresh["p99_ms"] <= goal)

    table = ["| target (issue \"Performance\") | measured | goal | met |", "| --- | --- | --- | --- |"]
    table += [f"| {name} | {figure} | {goal} | {met} |" for name, figure, goal, met in summary]
    load_after = os.getloadavg()
    header = [f"## {started:%Y-%m-%d %H:%M} UTC", "",
              f"- machine: {machine()}",
              f"- revision: {git_revision()}",
              *([f"- builds measured: collector `{COLLECTOR}`, filter `{AUDIT_WASM}`"]
                if {"BENCH_COLLECTOR", "BENCH_AUDIT_WASM"} & set(os.environ) else []),
              f"- command: `make bench` (BENCH_ROUNDS={ROUNDS} BENCH_SECONDS={SECONDS} BENCH_LIGHT_SECONDS={LIGHT_SECONDS} "
              f"BENCH_INGEST_EVENTS={INGEST_EVENTS} BENCH_INGEST_BATCH={INGEST_BATCH} BENCH_PG_INGEST_EVENTS={PG_INGEST_EVENTS} BENCH_PAGE_REQUESTS={PAGE_REQUESTS} BENCH_10M={int(WITH_10M)}), "
              f"{(datetime.datetime.now(datetime.timezone.utc) - started).total_seconds() / 60:.0f} min",
              f"- load average before / after: {load_before[0]:.2f} / {load_after[0]:.2f}" + (f"; {NOTE}" if NOTE else ""),
              *[f"- FAILED part {failure}" for failure in failures],
              "", *(["### Summary", "", *table, ""] if summary else [])]
    return "\n".join(header + lines) + "\n", "\n".join(table)


def interrupted(*_):
    """SIGTERM unwinds like Ctrl-C, so the processes are stopped on the way out."""
    raise KeyboardInterrupt


def config_files(config):
    """What one Envoy configuration runs (Envoy, the renderer, its filter), each with how to get it."""
    files = [(ENVOY, "make setup"), (TOOL, "make bench")]
    if config == "noop":
        files.append((NOOP_WASM, "make bench"))
    elif config in ("audit", "audit-sink"):
        files.append((AUDIT_WASM, "make build"))
    elif config == "native-sink":
        files.append((NATIVE_MODULE, "cargo build --release -p audit-filter-native"))
    elif config in STAGES:
        files.append((STAGES_WASM, "make bench (or BENCH_STAGES=0)"))
    elif config.startswith("candidate-"):
        label = config.removeprefix("candidate-")
        files.append((Path(CANDIDATES[label]), f"a build at the path BENCH_CANDIDATES gives {label}"))
    return files


def required_files(only=None):
    """The files the parts in `only` (default: this run's) use, each with how to get it, in
    order and once: each part asks only for what it runs (the ingest, pages and postgres
    parts need no Envoy and no filter)."""
    only = ONLY if only is None else only
    needed = []
    if "envoy" in only:
        needed += [file for config in CONFIGS for file in config_files(config)]
        needed.append((COLLECTOR, "cargo build --release -p audit-collector"))  # the `audit` configuration's
    if "instructions" in only:
        needed += [file for config in INSTRUCTION_CONFIGS for file in config_files(config)]
    if only & {"ingest", "pages", "postgres"}:
        needed += [(TOOL, "make bench"), (COLLECTOR, "cargo build --release -p audit-collector")]
    return list(dict.fromkeys(needed))


def main():
    for path, how in required_files():
        if not path.exists():
            sys.exit(f"missing {path}: run `{how}`")
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()
    directory = Path(tempfile.mkdtemp(prefix="audit-bench-", dir=os.environ.get("BENCH_TMPDIR")))
    procs = Processes(directory)
    signal.signal(signal.SIGTERM, interrupted)
    log(f"temporary files in {directory}")
    failures = []

    def part(name, run):
        """Runs one part; a failure is reported with the others' figures, not instead of them."""
        if name not in ONLY:
            return None
        try:
            return run()
        except Exception as error:  # noqa: BLE001 - reported, and the run goes on
            log(f"part {name} failed: {error}")
            failures.append(f"{name}: {str(error).splitlines()[0]}")
            procs.stop_all()
            return None

    try:
        envoy = part("envoy", lambda: bench_envoy(procs, directory))
        instructions = part("instructions", lambda: bench_instructions(procs, directory))
        empty = empty_database(procs, directory) if ONLY & {"ingest", "pages", "postgres"} else None
        ingest = part("ingest", lambda: bench_ingest(procs, directory, empty))
        pages = part("pages", lambda: bench_pages(procs, directory, empty))
        postgres = part("postgres", lambda: bench_postgres(procs, directory, empty))
    except BaseException:
        log(f"stopped; logs kept in {directory}")
        procs.stop_all()
        raise
    procs.stop_all()
    section, table = report(envoy, ingest, pages, started, load_before, failures, postgres, instructions)
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nEach section is one `make bench` run, newest last. "
                           "How it measures: `bench/README.md`.\n\n")
    with open(RESULTS, "a") as results:
        results.write("\n" + section)
    if failures:
        log(f"logs of the failed parts kept in {directory}")
        for database in directory.rglob("*.db"):
            database.unlink()
    else:
        shutil.rmtree(directory, ignore_errors=True)
    print("\n" + table)
    if envoy:
        print("\n".join(stage_table(envoy["runs"])))
    if instructions:
        print("\n".join(instruction_table(instructions)))
    log(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
