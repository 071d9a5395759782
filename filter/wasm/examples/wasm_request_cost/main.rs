//! The wasm host's per-request work, for the instruction budgets of `make test`
//! (`tests/instructions/`): the real `audit_filter.wasm` (the file Envoy loads, built by
//! `cargo build -p audit-filter --target wasm32-wasip1 --profile wasm-release`) run in the
//! wasmi interpreter with fuel metering, driven through its real exports in Envoy's order
//! (stream created, request headers, response headers, done, log, deleted; a tick every 100
//! requests; each batch the module dispatches answered 200) by a fake Envoy
//! ([`fake_envoy`]) that answers its host calls from the request `make bench` sends.
//!
//! It reports two deterministic counts, the same every run: `fuel`, the wasm instructions the
//! module executed (wasmi's fuel: one unit per instruction, more for bulk memory), and
//! `host calls`, the module's calls out to the host (each a crossing of the VM boundary,
//! the expensive part in Envoy: docs/performance.md). The counts are only printed if the
//! module did its job: each request went on with its untrusted identity header removed,
//! and every event it delivered parses as the collector's `IngestBatch`, passes the
//! collector's validation and describes the request it was given, numbered without holes.
//!
//! `wasm_request_cost <requests to run> <requests prepared>`: nothing is prepared per
//! request, so two runs differ only by the requests the first did not run. Batches are sent
//! on size only (a flush interval of an hour), and the clock and randomness are the fake's,
//! so nothing depends on the machine. `AUDIT_FILTER_WASM` names another module file.

mod fake_envoy;
mod module_memory;

use std::collections::BTreeMap;
use std::error::Error;
use std::path::PathBuf;

use audit_event::event::AuditEvent;
use audit_event::ingest::{IngestBatch, IngestReceipt, INGEST_PATH};
use fake_envoy::{link_imports, Answer, FakeEnvoy, PEER, REQUEST, RESPONSE_CODE};
use wasmi::{CompilationMode, Config, Engine, Extern, Instance, Linker, Module, Store, Val};

type Failure = Box<dyn Error>;

/// The plugin configuration: defaults, batches sent when full (500 events), not on time.
const CONFIGURATION: &str = r#"{"batch": {"flushIntervalMs": 3600000}}"#;
const TOKEN: &str = "probe-token";
/// A tick every this many requests (500 fill a batch).
const TICK_EVERY: usize = 100;
const BATCH: usize = 500;
const ROOT_CONTEXT: i32 = 1;
/// proxy-wasm's `Action::Continue`.
const CONTINUE: i32 = 0;

/// The module, instantiated in a store that holds the fake Envoy.
struct Vm {
    store: Store<FakeEnvoy>,
    instance: Instance,
    /// Fuel used inside each export, by export (the probe's breakdown, not a budget).
    fuel_by_export: BTreeMap<String, u64>,
}

impl Vm {
    /// Calls export `name`; its result, if it has one, as an i32.
    fn call(&mut self, name: &str, args: &[i32]) -> Result<Option<i32>, Failure> {
        let func = self
            .instance
            .get_export(&self.store, name)
            .and_then(Extern::into_func)
            .ok_or_else(|| format!("the module exports no function {name}"))?;
        let args: Vec<Val> = args.iter().map(|value| Val::I32(*value)).collect();
        let mut results = vec![Val::I32(0); func.ty(&self.store).results().len()];
        let fuel_before = self.store.get_fuel()?;
        func.call(&mut self.store, &args, &mut results).map_err(|error| format!("{name}{args:?}: {error}"))?;
        *self.fuel_by_export.entry(name.to_owned()).or_default() += fuel_before - self.store.get_fuel()?;
        Ok(results.first().and_then(Val::i32))
    }

    fn expect(&mut self, name: &str, args: &[i32], expected: i32, meaning: &str) -> Result<(), Failure> {
        match self.call(name, args)? {
            Some(result) if result == expected => Ok(()),
            other => Err(format!("{name}{args:?} returned {other:?}, expected {expected}: {meaning}").into()),
        }
    }

    fn envoy(&mut self) -> &mut FakeEnvoy {
        self.store.data_mut()
    }
}

/// What the collector has received so far, checked call by call.
#[derive(Default)]
struct Collector {
    calls: usize,
    events: usize,
    /// The sender's number of the last event received (they must follow without holes).
    last_seq: u64,
}

impl Collector {
    /// Checks each call the module dispatched, then answers it 200 as the collector would.
    fn answer(&mut self, vm: &mut Vm) -> Result<(), Failure> {
        for call in std::mem::take(&mut vm.envoy().dispatched) {
            let header = |name: &str| call.headers.get(name);
            if header(":method") != Some("POST") || header(":path") != Some(INGEST_PATH) {
                return Err(
                    format!("a call to {:?} {:?}, not POST {INGEST_PATH}", header(":method"), header(":path")).into()
                );
            }
            if header("authorization") != Some(&format!("Bearer {TOKEN}")) {
                return Err("a call without the ingest token".into());
            }
            let batch: IngestBatch = serde_json::from_slice(&call.body).map_err(|error| {
                format!("a call's body is not an IngestBatch ({error}) on cluster {}", call.cluster)
            })?;
            if batch.sender.is_none() {
                return Err("a batch without its sender's report".into());
            }
            for event in &batch.events {
                self.check(event)?;
            }
            self.calls += 1;
            self.events += batch.events.len();
            let receipt = serde_json::to_vec(&IngestReceipt { accepted: batch.events.len(), duplicates: 0 })?;
            vm.envoy().answer = Some(Answer { status: "200".into(), body: receipt.clone() });
            let body_size = receipt.len() as i32;
            vm.call("proxy_on_http_call_response", &[ROOT_CONTEXT, call.token as i32, 1, body_size, 0])?;
            vm.envoy().answer = None;
        }
        Ok(())
    }

    /// The event describes the bench's request, passes the collector's checks, and comes
    /// next in its sender's numbering.
    fn check(&mut self, event: &AuditEvent) -> Result<(), Failure> {
        event.validate().map_err(|invalid| format!("the collector would refuse an event: {invalid}"))?;
        let request = |name: &str| REQUEST.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        let payload = &event.payload;
        let response = event.response.as_ref().map(|response| i64::from(response.status));
        let claimed = event.untrusted_identity.iter().any(|claim| {
            claim.header == "x-forwarded-email" && Some(claim.value.as_str()) == request("x-forwarded-email")
        });
        let seq = event.sender.as_ref().map(|sender| sender.seq);
        let described = Some(payload.method.as_str()) == request(":method")
            && Some(payload.path.as_str()) == request(":path")
            && payload.request_id.as_deref() == request("x-request-id")
            && payload.client_ip.as_deref() == PEER.split(':').next()
            && response == Some(RESPONSE_CODE)
            && claimed
            && event.user_email.is_none();
        if !described || seq != Some(self.last_seq + 1) {
            return Err(
                format!("event #{} does not describe the request it was given: {event:?}", self.last_seq + 1).into()
            );
        }
        self.last_seq += 1;
        Ok(())
    }
}

fn wasm_path() -> PathBuf {
    std::env::var_os("AUDIT_FILTER_WASM").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/wasm32-wasip1/wasm-release/audit_filter.wasm")
    })
}

/// The module, loaded and started as Envoy starts a worker's VM: its root context created,
/// started and configured, and its announcement acknowledged (so no request is held).
fn start(collector: &mut Collector) -> Result<Vm, Failure> {
    let path = wasm_path();
    let wasm = std::fs::read(&path).map_err(|error| {
        format!(
            "{}: {error}; build it first: cargo build -p audit-filter --target wasm32-wasip1 --profile wasm-release",
            path.display()
        )
    })?;
    let mut config = Config::default();
    // Every function compiled before it runs: no translation work inside the counted part.
    config.consume_fuel(true).compilation_mode(CompilationMode::Eager);
    let engine = Engine::new(&config);
    let module = Module::new(&engine, &wasm)?;
    let mut linker = Linker::new(&engine);
    link_imports(&mut linker, &module)?;
    let mut store = Store::new(&engine, FakeEnvoy::new(CONFIGURATION, &[&format!("AUDIT_INGEST_TOKEN={TOKEN}")]));
    store.set_fuel(u64::MAX)?;
    let instance = linker.instantiate_and_start(&mut store, &module)?;
    let mut vm = Vm { store, instance, fuel_by_export: BTreeMap::new() };
    if vm.instance.get_export(&vm.store, "_initialize").is_some() {
        vm.call("_initialize", &[])?;
    }
    vm.call("proxy_on_context_create", &[ROOT_CONTEXT, 0])?;
    vm.expect("proxy_on_vm_start", &[ROOT_CONTEXT, 0], 1, "the VM starts")?;
    let size = CONFIGURATION.len() as i32;
    vm.expect("proxy_on_configure", &[ROOT_CONTEXT, size], 1, "the configuration is accepted")?;
    if vm.envoy().tick_period_ms == 0 {
        return Err("the module set no tick period: it would never deliver".into());
    }
    if vm.envoy().dispatched.is_empty() {
        return Err("the worker's sender is not announced from the configuration".into());
    }
    collector.answer(&mut vm)?;
    Ok(vm)
}

/// One request through the module, as Envoy drives a stream.
fn request(vm: &mut Vm, context: i32) -> Result<(), Failure> {
    vm.envoy().new_request();
    vm.call("proxy_on_context_create", &[context, ROOT_CONTEXT])?;
    vm.expect("proxy_on_request_headers", &[context, REQUEST.len() as i32, 1], CONTINUE, "the request goes on")?;
    if vm.envoy().request.iter().any(|(name, _)| name == "x-forwarded-email") {
        return Err("the untrusted x-forwarded-email reached the service: the module did not remove it".into());
    }
    vm.expect("proxy_on_response_headers", &[context, 0, 1], CONTINUE, "the response goes on")?;
    vm.expect("proxy_on_done", &[context], 1, "the stream is done")?;
    vm.call("proxy_on_log", &[context])?;
    vm.call("proxy_on_delete", &[context])?;
    vm.envoy().clock_nanos += 1_000_000;
    Ok(())
}

fn main() -> Result<(), Failure> {
    let requests: usize = match std::env::args().nth(1) {
        Some(count) => count.parse()?,
        None => return Err("usage: wasm_request_cost <requests to run> <requests prepared>".into()),
    };
    let mut collector = Collector::default();
    let mut vm = start(&mut collector)?;
    let announced = collector.calls;
    for n in 0..requests {
        request(&mut vm, ROOT_CONTEXT + 1 + n as i32)?;
        if (n + 1) % TICK_EVERY == 0 {
            vm.call("proxy_on_tick", &[ROOT_CONTEXT])?;
            collector.answer(&mut vm)?;
        }
    }
    let delivered = requests / BATCH * BATCH;
    if collector.events != delivered || collector.calls != announced + requests / BATCH {
        return Err(format!(
            "{requests} requests: {} events delivered in {} calls, expected {delivered} in {}",
            collector.events,
            collector.calls - announced,
            requests / BATCH
        )
        .into());
    }
    if let Some((level, message)) = vm.envoy().complaints.first() {
        return Err(format!("the module logged at level {level}: {message}").into());
    }
    let fuel = u64::MAX - vm.store.get_fuel()?;
    let envoy = vm.envoy();
    println!(
        "{requests} requests through {}, {delivered} events delivered in {} calls",
        wasm_path().display(),
        requests / BATCH
    );
    println!("fuel: {fuel}");
    println!("host calls: {}", envoy.host_calls());
    for (call, count) in &envoy.calls {
        println!("  {call}: {count}");
    }
    println!("fuel by export:");
    for (export, fuel) in &vm.fuel_by_export {
        println!("  {export}: {fuel}");
    }
    Ok(())
}
