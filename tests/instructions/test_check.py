"""The budget check's own logic (`python3 -m unittest discover -s tests/instructions`): the
comparison fails past 5% with both numbers and the way to update, budgets.txt is read and
rewritten line by line, and a malformed line is an error that says where. And the wasm
probe's own failure: it refuses to count a module that does not do the filter's job."""

import json
import os
import struct
import subprocess
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import check

LINE = ("collector-ingest-sqlite  |     100,000 | 2026-12-01  | event   | -p audit-collector --example ingest_cost"
        "    | release/examples/ingest_cost | 2000\n")


def budgets_file(text):
    handle = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
    handle.write(text)
    handle.close()
    return Path(handle.name)


class Comparison(unittest.TestCase):
    def probe(self):
        return check.read_budgets(budgets_file("# comment\n" + LINE))[0]

    def test_within_five_percent_passes(self):
        self.assertIsNone(check.verdict(self.probe(), 105_000))
        self.assertIsNone(check.verdict(self.probe(), 60_000))

    def test_over_five_percent_fails_with_both_numbers_and_the_update_command(self):
        message = check.verdict(self.probe(), 105_001)
        self.assertIsNotNone(message)
        for part in ("105,001", "100,000", "2026-12-01", "--update collector-ingest-sqlite"):
            self.assertIn(part, message)

    def test_a_budget_ten_percent_lower_fails(self):
        self.assertIsNotNone(check.verdict(self.probe(), 100_000, budget=90_000))


class BudgetFile(unittest.TestCase):
    def test_update_rewrites_only_the_named_line(self):
        path = budgets_file("# header | with | bars\n" + LINE + LINE.replace("collector-ingest-sqlite", "other"))
        check.write_budget("collector-ingest-sqlite", 123_456, path=path, today="2026-12-04")
        probes = check.read_budgets(path)
        self.assertEqual([(p["probe"], p["budget"], p["measured_on"]) for p in probes],
                         [("collector-ingest-sqlite", 123_456, "2026-12-04"), ("other", 100_000, "2026-12-01")])
        self.assertTrue(path.read_text().startswith("# header | with | bars\n"))

    def test_a_malformed_line_says_where(self):
        with self.assertRaisesRegex(check.BudgetError, r":2: 3 fields, expected 7"):
            check.read_budgets(budgets_file("# ok\na | b | c\n"))

    def test_the_repository_budgets_parse(self):
        self.assertTrue(check.read_budgets())


WASM_LINE = ("filter-request-wasm-host-calls |  11 | 2026-12-05 | request | -p audit-filter --target wasm32-wasip1 "
             "--profile wasm-release ; -p audit-filter --example wasm_request_cost "
             "| release/examples/wasm_request_cost [host calls] | 2000\n")


class SelfCountingProbe(unittest.TestCase):
    def probe(self):
        return check.read_budgets(budgets_file(WASM_LINE))[0]

    def test_the_counter_is_named_in_brackets_and_callgrind_is_the_default(self):
        self.assertEqual(check.counted(self.probe()), "host calls")
        self.assertEqual(check.counted(check.read_budgets(budgets_file(LINE))[0]), "instructions")

    def test_each_build_is_release_unless_it_names_a_profile(self):
        self.assertEqual(check.build_commands(self.probe()), [
            ["cargo", "build", "--quiet", "-p", "audit-filter", "--target", "wasm32-wasip1", "--profile", "wasm-release"],
            ["cargo", "build", "--release", "--quiet", "-p", "audit-filter", "--example", "wasm_request_cost"],
        ])

    def test_the_failure_names_the_counter(self):
        message = check.verdict(self.probe(), 12)
        self.assertIn("12 host calls per request, budget 11", message)

    def test_one_more_host_call_per_request_fails_the_repository_budget(self):
        """Host calls are few per request: the budget must be small enough that a single new
        crossing is more than 5% over it (past 20 calls it would not be, and the line would
        need a finer unit)."""
        [probe] = [p for p in check.read_budgets() if check.counted(p) == "host calls"]
        self.assertIsNotNone(check.verdict(probe, probe["budget"] + 1))

    def test_a_printed_count_is_read_and_a_missing_one_is_an_error(self):
        script = budgets_file("#!/bin/sh\necho 'fuel: 1234'\necho 'host calls: 7'\n")
        script.chmod(0o755)
        self.assertEqual(check.self_counted(script, ["1", "1"], "host calls"), 7)
        self.assertEqual(check.self_counted(script, ["1", "1"], "fuel"), 1234)
        with self.assertRaisesRegex(check.BudgetError, "printed no `steps: <number>` line"):
            check.self_counted(script, ["1", "1"], "steps")


def serialized_map(pairs):
    """proxy-wasm's serialized map, as the module hands its call's headers to the host."""
    data = struct.pack("<I", len(pairs))
    for name, value in pairs:
        data += struct.pack("<II", len(name), len(value))
    for name, value in pairs:
        data += name.encode() + b"\0" + value.encode() + b"\0"
    return data


def wat_bytes(data):
    return "".join(f"\\{byte:02x}" for byte in data)


def idle_module(strips_identity):
    """A proxy-wasm module in the text format that starts like the audit filter (a tick, its
    sender announced to the collector) and then captures nothing; with `strips_identity`, it
    also removes the untrusted identity header, as the filter does."""
    headers = serialized_map([(":method", "POST"), (":path", "/v1/events"), ("authorization", "Bearer probe-token")])
    body = json.dumps({"events": [], "sender": {"id": "AAAAAAAAAAAAAAAAAAAAAA", "captured": 0,
                                                "at": "2019-12-09T22:15:24.000Z", "heartbeatMs": 1000}}).encode()
    strip = "(drop (call $remove (i32.const 0) (i32.const 1024) (i32.const 17)))" if strips_identity else ""
    return f"""(module
  (import "env" "proxy_set_tick_period_milliseconds" (func $tick (param i32) (result i32)))
  (import "env" "proxy_http_call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_remove_header_map_value" (func $remove (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 8192))
  (data (i32.const 0) "collector")
  (data (i32.const 64) "{wat_bytes(headers)}")
  (data (i32.const 1024) "x-forwarded-email")
  (data (i32.const 2048) "{wat_bytes(body)}")
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (global.get $heap)
    (global.set $heap (i32.add (global.get $heap) (local.get $size))))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $tick (i32.const 1000)))
    (drop (call $call (i32.const 0) (i32.const 9) (i32.const 64) (i32.const {len(headers)})
                      (i32.const 2048) (i32.const {len(body)}) (i32.const 0) (i32.const 0)
                      (i32.const 5000) (i32.const 4000)))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) {strip} (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
  (func (export "proxy_on_tick") (param i32))
  (func (export "proxy_on_http_call_response") (param i32 i32 i32 i32 i32)))
"""


class WasmProbeRefusesAModuleThatDoesNothing(unittest.TestCase):
    """The wasm probe run on modules that are not the audit filter: it must fail, saying why,
    rather than print a count (a cheap module doing nothing would pass any budget). Built
    in debug (`cargo test` has built it already in `make test`)."""

    @classmethod
    def setUpClass(cls):
        subprocess.run(["cargo", "build", "--quiet", "-p", "audit-filter", "--example", "wasm_request_cost"],
                       cwd=check.ROOT, check=True)
        cls.probe = check.ROOT / "target" / "debug" / "examples" / "wasm_request_cost"

    def run_on(self, module_text=None, path=None):
        path = path or budgets_file(module_text)
        with mock.patch.dict(os.environ, {"AUDIT_FILTER_WASM": str(path)}):
            with self.assertRaises(check.BudgetError) as failure:
                check.self_counted(self.probe, ["1000", "1000"], "fuel")
        return str(failure.exception)

    def test_a_module_that_lets_the_identity_header_through_fails(self):
        self.assertIn("x-forwarded-email reached the service", self.run_on(idle_module(strips_identity=False)))

    def test_a_module_that_captures_nothing_fails(self):
        self.assertIn("1000 requests: 0 events delivered in 0 calls, expected 1000 in 2",
                      self.run_on(idle_module(strips_identity=True)))

    def test_a_missing_module_says_how_to_build_it(self):
        message = self.run_on(path=Path(tempfile.gettempdir()) / "no-such-dir" / "audit_filter.wasm")
        self.assertIn("build it first: cargo build -p audit-filter --target wasm32-wasip1 --profile wasm-release", message)


if __name__ == "__main__":
    unittest.main()
