//! The native host's per-request work, for the instruction budget of `make test`
//! (`tests/instructions/`): the module's real entry points (`on_http_filter_new`, request
//! headers, `stream_complete`, destroy) on the request `make bench` sends, and the per-worker
//! delivery (the configuration's tick sends each full batch as a callout, answered 200),
//! driven by a fake Envoy defined here: the callbacks the module calls, answering from one
//! fixed request. What is counted is the module's own instructions (the core's capture and
//! JSON included), not Envoy's side of the ABI.
//!
//! `native_request_cost <requests to run> <requests prepared>`: nothing is prepared per request, so
//! two runs differ only by the requests the first did not run. Batches are sent on size only
//! (a flush interval of an hour), so the count does not depend on the clock.
// A probe: a failed expectation is its report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::c_void;
use std::os::raw::c_char;
use std::sync::Mutex;

use audit_filter_native::abi::{EnvoyBuffer, EnvoyHttpHeader, ModuleBuffer, ModuleHttpHeader};

/// The request `make bench` sends, with the headers Envoy adds before the filter sees it.
const REQUEST: [(&str, &str); 10] = [
    (":method", "GET"),
    (":path", "/pacticipants/Foo/versions/1.0.0"),
    (":authority", "127.0.0.1:10000"),
    (":scheme", "http"),
    ("user-agent", "pact_broker-client/1.75.1 (ruby 3.2.2; x86_64-linux)"),
    ("x-forwarded-email", "alice@example.com"),
    ("x-forwarded-for", "127.0.0.1"),
    ("x-forwarded-proto", "http"),
    ("x-request-id", "2f7c1c9e-5b0e-4a53-9a43-7b8f2d1e6a10"),
    ("x-envoy-expected-rq-timeout-ms", "15000"),
];
const PEER: &str = "127.0.0.1:51234";
const CONFIG: &str = r#"{"batch": {"flushIntervalMs": 3600000}}"#;
/// A tick every this many requests (500 fill a batch).
const TICK_EVERY: usize = 100;

/// Callouts made and not answered yet.
static CALLOUTS: Mutex<Vec<u64>> = Mutex::new(Vec::new());

fn text(buffer: ModuleBuffer) -> &'static [u8] {
    if buffer.ptr.is_null() {
        return &[];
    }
    // SAFETY: the module lends the buffer for the call; compared within it only.
    unsafe { std::slice::from_raw_parts(buffer.ptr.cast::<u8>(), buffer.length) }
}

fn envoy_buffer(value: &'static str) -> EnvoyBuffer {
    EnvoyBuffer { ptr: value.as_ptr().cast::<c_char>(), length: value.len() }
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_log(_level: u32, _message: ModuleBuffer) {}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_get_headers_size(_filter: *mut c_void, _header_type: u32) -> usize {
    REQUEST.len()
}

#[no_mangle]
unsafe extern "C" fn envoy_dynamic_module_callback_http_get_headers(
    _filter: *mut c_void,
    _header_type: u32,
    result: *mut EnvoyHttpHeader,
) -> bool {
    for (index, (name, value)) in REQUEST.iter().enumerate() {
        let header = EnvoyHttpHeader {
            key_ptr: name.as_ptr().cast(),
            key_length: name.len(),
            value_ptr: value.as_ptr().cast(),
            value_length: value.len(),
        };
        // SAFETY: the module passes room for `get_headers_size` headers.
        unsafe { result.add(index).write(header) };
    }
    true
}

#[no_mangle]
unsafe extern "C" fn envoy_dynamic_module_callback_http_get_header(
    _filter: *mut c_void,
    _header_type: u32,
    key: ModuleBuffer,
    result: *mut EnvoyBuffer,
    index: usize,
    optional_size: *mut usize,
) -> bool {
    let matching: Vec<&str> =
        REQUEST.iter().filter(|(name, _)| name.as_bytes() == text(key)).map(|(_, v)| *v).collect();
    // SAFETY: out-parameters the module passes (the size one may be null).
    unsafe {
        if !optional_size.is_null() {
            optional_size.write(matching.len());
        }
        match matching.get(index) {
            Some(value) => {
                result.write(envoy_buffer(value));
                true
            }
            None => {
                result.write(EnvoyBuffer { ptr: std::ptr::null(), length: 0 });
                false
            }
        }
    }
}

/// The fake keeps its one request as it is (a removal is answered done).
#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_set_header(
    _filter: *mut c_void,
    _header_type: u32,
    _key: ModuleBuffer,
    _value: ModuleBuffer,
) -> bool {
    true
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_send_response(
    _filter: *mut c_void,
    _status_code: u32,
    _headers: *mut ModuleHttpHeader,
    _headers_size: usize,
    _body: ModuleBuffer,
    _details: ModuleBuffer,
) {
    panic!("the bench's request is never refused");
}

#[no_mangle]
unsafe extern "C" fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
    _filter: *mut c_void,
    attribute_id: u32,
    result: *mut EnvoyBuffer,
) -> bool {
    // `source.address`; no other string attribute is asked for this request.
    let found = attribute_id == 24;
    // SAFETY: the module's out-parameter.
    unsafe { result.write(if found { envoy_buffer(PEER) } else { EnvoyBuffer { ptr: std::ptr::null(), length: 0 } }) };
    found
}

#[no_mangle]
unsafe extern "C" fn envoy_dynamic_module_callback_http_filter_get_attribute_int(
    _filter: *mut c_void,
    attribute_id: u32,
    result: *mut u64,
) -> bool {
    // `response.code`.
    let found = attribute_id == 15;
    // SAFETY: the module's out-parameter.
    unsafe { result.write(if found { 200 } else { 0 }) };
    found
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_get_worker_index(_filter: *mut c_void) -> u32 {
    0
}

#[no_mangle]
unsafe extern "C" fn envoy_dynamic_module_callback_http_filter_config_define_counter(
    _config: *mut c_void,
    _name: ModuleBuffer,
    _labels: *mut ModuleBuffer,
    _labels_length: usize,
    id: *mut usize,
) -> u32 {
    // SAFETY: the module's out-parameter.
    unsafe { id.write(0) };
    0
}

#[no_mangle]
unsafe extern "C" fn envoy_dynamic_module_callback_http_filter_config_define_gauge(
    _config: *mut c_void,
    _name: ModuleBuffer,
    _labels: *mut ModuleBuffer,
    _labels_length: usize,
    id: *mut usize,
) -> u32 {
    // SAFETY: the module's out-parameter.
    unsafe { id.write(0) };
    0
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_increment_counter(
    _config: *mut c_void,
    _id: usize,
    _labels: *mut ModuleBuffer,
    _labels_length: usize,
    _value: u64,
) -> u32 {
    0
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_set_gauge(
    _config: *mut c_void,
    _id: usize,
    _labels: *mut ModuleBuffer,
    _labels_length: usize,
    _value: u64,
) -> u32 {
    0
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_scheduler_new(filter: *mut c_void) -> *mut c_void {
    filter
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_scheduler_commit(_scheduler: *mut c_void, _event_id: u64) {}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_scheduler_delete(_scheduler: *mut c_void) {}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_continue_decoding(_filter: *mut c_void) {}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_get_concurrency() -> u32 {
    1
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(config: *mut c_void) -> *mut c_void {
    config
}

/// The module's tick thread commits here: the probe ticks by itself instead (counted alike
/// in every run).
#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(_scheduler: *mut c_void, _id: u64) {}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(_scheduler: *mut c_void) {}

#[no_mangle]
unsafe extern "C" fn envoy_dynamic_module_callback_http_filter_config_http_callout(
    _config: *mut c_void,
    callout_id: *mut u64,
    _cluster: ModuleBuffer,
    _headers: *mut ModuleHttpHeader,
    _headers_size: usize,
    _body: ModuleBuffer,
    _timeout_ms: u64,
) -> u32 {
    let mut callouts = CALLOUTS.lock().unwrap();
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    callouts.push(id);
    // SAFETY: the module's out-parameter.
    unsafe { callout_id.write(id) };
    0
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_bootstrap_extension_config_signal_init_complete(_config: *mut c_void) {}

/// A fake Envoy object: only its address is used (as the configuration's, or the stream's).
static CONFIG_ENVOY: u8 = 0;
static STREAM_ENVOY: u8 = 0;

fn pointer(object: &'static u8) -> *mut c_void {
    std::ptr::from_ref(object).cast_mut().cast()
}

/// Answers every callout made so far with 200, as the collector would; returns how many.
fn answer_callouts(config: *const c_void) -> usize {
    let answered = std::mem::take(&mut *CALLOUTS.lock().unwrap());
    let count = answered.len();
    let (name, value) = (":status", "200");
    for id in answered {
        let mut status = EnvoyHttpHeader {
            key_ptr: name.as_ptr().cast(),
            key_length: name.len(),
            value_ptr: value.as_ptr().cast(),
            value_length: value.len(),
        };
        // SAFETY: the module's hook, with arrays valid during the call.
        unsafe {
            audit_filter_native::hooks::envoy_dynamic_module_on_http_filter_config_http_callout_done(
                pointer(&CONFIG_ENVOY),
                config,
                id,
                0,
                &mut status,
                1,
                std::ptr::null_mut(),
                0,
            );
        }
    }
    count
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    use audit_filter_native::hooks::*;
    let requests: usize = match std::env::args().nth(1) {
        Some(count) => count.parse()?,
        None => return Err("usage: native_request_cost <requests to run> <requests prepared>".into()),
    };
    // SAFETY: set before the module starts any thread; only this process reads it.
    unsafe { std::env::set_var("AUDIT_INGEST_TOKEN", "probe-token") };
    let (name, json) = ("audit_sidecar", CONFIG);
    // SAFETY: the module's hook, with buffers valid during the call.
    let config = unsafe {
        envoy_dynamic_module_on_http_filter_config_new(
            pointer(&CONFIG_ENVOY),
            EnvoyBuffer { ptr: name.as_ptr().cast(), length: name.len() },
            EnvoyBuffer { ptr: json.as_ptr().cast(), length: json.len() },
        )
    };
    assert!(!config.is_null(), "the configuration is accepted");
    // The announcements, acknowledged: no request is held.
    let announced = answer_callouts(config);
    assert!(announced > 0, "the worker's sender is announced from the configuration");
    let mut calls = 0;
    for n in 0..requests {
        // SAFETY: the module's hooks, in Envoy's order, on one fake stream.
        unsafe {
            let filter = envoy_dynamic_module_on_http_filter_new(config, pointer(&STREAM_ENVOY));
            let status = envoy_dynamic_module_on_http_filter_request_headers(pointer(&STREAM_ENVOY), filter, true);
            assert_eq!(status, 0, "the request goes on");
            envoy_dynamic_module_on_http_filter_stream_complete(pointer(&STREAM_ENVOY), filter);
            envoy_dynamic_module_on_http_filter_destroy(filter);
        }
        if (n + 1) % TICK_EVERY == 0 {
            envoy_dynamic_module_on_http_filter_config_scheduled(pointer(&CONFIG_ENVOY), config, 1);
            calls += answer_callouts(config);
        }
    }
    assert_eq!(calls, requests / 500, "each 500 requests fill one batch, sent at the next tick");
    println!("{requests} requests through the module, delivered in {calls} calls");
    Ok(())
}
