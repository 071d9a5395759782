//! The functions Envoy looks up in the module (`envoy_dynamic_module_on_*`), with the C
//! signatures the pinned binary casts them to (`envoy-1.40-hook-signatures.txt`). Each is a
//! trampoline: it turns Envoy's pointers into the safe layer's types and runs the body
//! through [`guarded`], so a panic lets the request through (and is counted) instead of
//! unwinding into Envoy. Hooks this filter has no use for are exported as no-ops, so the
//! module loads whichever of them Envoy requires.
//!
//! Pointers: Envoy holds a configuration only as its id in the [`CONFIGS`] registry (the id's
//! value is the pointer it gets back), looked up in every configuration hook: a scheduled
//! event or callout answer delivered after `config_destroy` finds nothing, is logged and
//! counted, and touches no freed memory. Each stream is a `Box<Option<AuditStream>>` (None:
//! the stream is not audited, e.g. its set-up panicked) holding its own `Arc` of the
//! configuration.

use std::ffi::c_void;
use std::os::raw::c_char;
use std::sync::Arc;

use log::Level;

use crate::abi::{self, EnvoyBuffer, EnvoyHttpHeader, HttpFilterConfigEnvoyPtr, HttpFilterEnvoyPtr};
use crate::config_registry::Registry;
use crate::envoy::{self, envoy_bytes, CalloutAnswer, ConfigHandle, Stream};
use crate::guard::{caught, guarded};
use crate::held::RESUME;
use crate::module_config::ModuleConfig;
use crate::stream::{AtHeaders, AuditStream};
use crate::ticker::TICK;
use audit_filter_core::worker::delivery::LOGGED_BODY_BYTES;

type Filter = Option<AuditStream>;

/// Every live configuration, by the id Envoy holds.
pub(crate) static CONFIGS: Registry<ModuleConfig> = Registry::new();

/// The id Envoy holds as the configuration's pointer (never null: ids start at 1).
fn config_pointer(id: u64) -> *const c_void {
    std::ptr::without_provenance(usize::try_from(id).unwrap_or(0))
}

/// The live configuration Envoy names by `config` in `hook`; None (logged, counted) if it
/// was destroyed already or never made.
fn live_config(hook: &str, config: *const c_void) -> Option<Arc<ModuleConfig>> {
    let found = CONFIGS.get(config.addr() as u64);
    if found.is_none() {
        envoy::log(
            Level::Warn,
            &format!(
                "audit-filter: {hook} named a configuration that is not live (destroyed already); ignored ({} so far)",
                CONFIGS.ignored()
            ),
        );
    }
    found
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const c_char {
    abi::ABI_VERSION.as_ptr()
}

/// # Safety
/// Envoy passes its configuration object and two buffers valid during the call.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    config_envoy: HttpFilterConfigEnvoyPtr,
    _name: EnvoyBuffer,
    config: EnvoyBuffer,
) -> *const c_void {
    guarded("on_http_filter_config_new", std::ptr::null(), || {
        // SAFETY: valid during this call, per the ABI; copied by the parser.
        let json = unsafe { envoy_bytes(config.ptr, config.length) };
        // SAFETY: the configuration object lives until `config_destroy`.
        let handle = unsafe { ConfigHandle::new(config_envoy) };
        match ModuleConfig::new(handle, json) {
            Ok(config) => config_pointer(CONFIGS.insert(config)),
            Err(err) => {
                envoy::log(Level::Error, &format!("audit-filter: invalid filter configuration: {err}"));
                std::ptr::null()
            }
        }
    })
}

/// `config` is the id `config_new` returned; a second destroy, or an unknown id, is ignored.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(config: *const c_void) {
    guarded("on_http_filter_config_destroy", (), || {
        if config.is_null() {
            return;
        }
        // Unregistered first: no later hook can reach it. Streams still running keep their
        // own counts; the last one frees it.
        let Some(config) = CONFIGS.remove(config.addr() as u64) else {
            envoy::log(Level::Warn, "audit-filter: config_destroy named a configuration that is not live; ignored");
            return;
        };
        config.shut_down();
    });
}

/// Called by Envoy on its main thread with the id from `config_new`.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_scheduled(
    _config_envoy: HttpFilterConfigEnvoyPtr,
    config: *const c_void,
    event_id: u64,
) {
    guarded("on_http_filter_config_scheduled", (), || {
        let Some(config) = live_config("on_http_filter_config_scheduled", config) else { return };
        if event_id == TICK {
            config.on_tick();
        }
    });
}

/// # Safety
/// Called by Envoy on its main thread; the arrays are valid during the call.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_http_callout_done(
    _config_envoy: HttpFilterConfigEnvoyPtr,
    config: *const c_void,
    callout_id: u64,
    result: u32,
    headers: *mut EnvoyHttpHeader,
    headers_size: usize,
    body_chunks: *mut EnvoyBuffer,
    body_chunks_size: usize,
) {
    guarded("on_http_filter_config_http_callout_done", (), || {
        // A call of a destroyed configuration was answered as a reset when it was handed
        // over (retired.rs): its late answer is ignored.
        let Some(config) = live_config("on_http_filter_config_http_callout_done", config) else { return };
        // SAFETY: the arrays are valid during the call (copied here).
        let answer = unsafe {
            CalloutAnswer::read(result, headers, headers_size, body_chunks, body_chunks_size, LOGGED_BODY_BYTES)
        };
        config.on_answer(callout_id, answer);
    });
}

/// # Safety
/// `config` is a live configuration; `filter_envoy` this stream's Envoy filter.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_new(
    config: *const c_void,
    filter_envoy: HttpFilterEnvoyPtr,
) -> *const c_void {
    let audited = caught("on_http_filter_new", || {
        if config.is_null() {
            return None;
        }
        // This stream takes a count of its own of the configuration.
        let config = live_config("on_http_filter_new", config)?;
        // SAFETY: this hook's stream.
        let stream = unsafe { Stream::new(filter_envoy) };
        Some(AuditStream::new(config, &stream))
    });
    // A stream Envoy cannot make a filter for would be closed: an unaudited one goes on.
    Box::into_raw(Box::new(audited.flatten())).cast::<c_void>()
}

/// # Safety
/// `filter` is what `filter_new` returned, used by one hook at a time.
unsafe fn stream_filter<'a>(filter: *const c_void) -> Option<&'a mut AuditStream> {
    // SAFETY: by the caller's contract; no other reference to it is live.
    unsafe { filter.cast::<Filter>().cast_mut().as_mut()?.as_mut() }
}

/// # Safety
/// Envoy passes this stream's pointers.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    filter_envoy: HttpFilterEnvoyPtr,
    filter: *const c_void,
    _end_of_stream: bool,
) -> u32 {
    guarded("on_http_filter_request_headers", abi::REQUEST_HEADERS_CONTINUE, || {
        // SAFETY: this hook's stream.
        let mut stream = unsafe { Stream::new(filter_envoy) };
        // The borrow of the filter ends before the reply is sent: Envoy may end the stream,
        // and call `stream_complete` on it, inside the reply.
        let reply = {
            // SAFETY: this stream's filter, used by this hook only.
            let Some(audit) = (unsafe { stream_filter(filter) }) else { return abi::REQUEST_HEADERS_CONTINUE };
            audit.on_request_headers(&mut stream)
        };
        match reply {
            AtHeaders::Forward => abi::REQUEST_HEADERS_CONTINUE,
            // Resumed in `on_http_filter_scheduled` once the main thread wakes it.
            AtHeaders::Hold => abi::REQUEST_HEADERS_STOP_ITERATION,
            AtHeaders::Refuse(reply) => {
                reply.send(&mut stream);
                abi::REQUEST_HEADERS_STOP_ITERATION
            }
        }
    })
}

/// # Safety
/// Envoy passes this stream's pointers.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    filter_envoy: HttpFilterEnvoyPtr,
    filter: *const c_void,
) {
    // SAFETY: this hook's stream and its filter, used by this hook only.
    let (stream, audit) = unsafe { (Stream::new(filter_envoy), stream_filter(filter)) };
    let Some(audit) = audit else { return };
    if caught("on_http_filter_stream_complete", || audit.on_stream_complete(&stream)).is_none() {
        guarded("on_http_filter_stream_complete", (), || audit.count_lost(&stream));
    }
}

/// # Safety
/// `filter` is what `filter_new` returned, destroyed once.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_destroy(filter: *const c_void) {
    if filter.is_null() {
        return;
    }
    // SAFETY: from `Box::into_raw` in `filter_new`.
    let filter = unsafe { Box::from_raw(filter.cast::<Filter>().cast_mut()) };
    guarded("on_http_filter_destroy", (), || drop(filter));
}

// The hooks below are exported so the module loads whichever Envoy requires; the audit
// filter does nothing in them (every result is "continue").

/// Whether this stream's request is held (its body and trailers wait with its headers).
///
/// # Safety
/// `filter` is this stream's filter, used by this hook only.
unsafe fn held(hook: &str, filter: *const c_void) -> bool {
    // SAFETY: by the caller's contract.
    guarded(hook, false, || unsafe { stream_filter(filter) }.is_some_and(|audit| audit.is_paused()))
}

/// # Safety
/// Envoy passes this stream's pointers.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    _: HttpFilterEnvoyPtr,
    filter: *const c_void,
    _: bool,
) -> u32 {
    // SAFETY: this hook's filter.
    if unsafe { held("on_http_filter_request_body", filter) } {
        abi::REQUEST_BODY_STOP_ITERATION_AND_BUFFER
    } else {
        abi::REQUEST_BODY_CONTINUE
    }
}

/// # Safety
/// Envoy passes this stream's pointers.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
    _: HttpFilterEnvoyPtr,
    filter: *const c_void,
) -> u32 {
    // SAFETY: this hook's filter.
    if unsafe { held("on_http_filter_request_trailers", filter) } {
        abi::REQUEST_TRAILERS_STOP_ITERATION
    } else {
        abi::REQUEST_TRAILERS_CONTINUE
    }
}

/// A held request is woken (its scheduler committed by the main thread): it goes on.
///
/// # Safety
/// Envoy passes this stream's pointers, on its worker.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    filter_envoy: HttpFilterEnvoyPtr,
    filter: *const c_void,
    event_id: u64,
) {
    guarded("on_http_filter_scheduled", (), || {
        if event_id != RESUME {
            return;
        }
        // SAFETY: this stream's filter, used by this hook only; the borrow ends before
        // Envoy is called (it may run the rest of the stream inside `continue_decoding`).
        let resume = unsafe { stream_filter(filter) }.is_some_and(AuditStream::take_paused);
        if resume {
            // SAFETY: this hook's stream.
            let mut stream = unsafe { Stream::new(filter_envoy) };
            stream.continue_decoding();
        }
    });
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    _: HttpFilterEnvoyPtr,
    _: *const c_void,
    _: bool,
) -> u32 {
    0
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_body(
    _: HttpFilterEnvoyPtr,
    _: *const c_void,
    _: bool,
) -> u32 {
    0
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
    _: HttpFilterEnvoyPtr,
    _: *const c_void,
) -> u32 {
    0
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_local_reply(
    _: HttpFilterEnvoyPtr,
    _: *const c_void,
    _: u32,
    _: EnvoyBuffer,
    _: bool,
) -> u32 {
    0
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_new(
    _: EnvoyBuffer,
    _: EnvoyBuffer,
) -> *const c_void {
    std::ptr::null()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_destroy(_: *const c_void) {}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
    _: HttpFilterEnvoyPtr,
    _: *const c_void,
    _: u64,
    _: u32,
    _: *mut EnvoyHttpHeader,
    _: usize,
    _: *mut EnvoyBuffer,
    _: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
    _: HttpFilterEnvoyPtr,
    _: *const c_void,
    _: u64,
    _: *mut EnvoyHttpHeader,
    _: usize,
    _: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
    _: HttpFilterEnvoyPtr,
    _: *const c_void,
    _: u64,
    _: *const EnvoyBuffer,
    _: usize,
    _: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
    _: HttpFilterEnvoyPtr,
    _: *const c_void,
    _: u64,
    _: *mut EnvoyHttpHeader,
    _: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
    _: HttpFilterEnvoyPtr,
    _: *const c_void,
    _: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
    _: HttpFilterEnvoyPtr,
    _: *const c_void,
    _: u64,
    _: u32,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    _: HttpFilterEnvoyPtr,
    _: *const c_void,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    _: HttpFilterEnvoyPtr,
    _: *const c_void,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_headers(
    _: HttpFilterConfigEnvoyPtr,
    _: *const c_void,
    _: u64,
    _: *mut EnvoyHttpHeader,
    _: usize,
    _: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_data(
    _: HttpFilterConfigEnvoyPtr,
    _: *const c_void,
    _: u64,
    _: *const EnvoyBuffer,
    _: usize,
    _: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_trailers(
    _: HttpFilterConfigEnvoyPtr,
    _: *const c_void,
    _: u64,
    _: *mut EnvoyHttpHeader,
    _: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_complete(
    _: HttpFilterConfigEnvoyPtr,
    _: *const c_void,
    _: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_reset(
    _: HttpFilterConfigEnvoyPtr,
    _: *const c_void,
    _: u64,
    _: u32,
) {
}
