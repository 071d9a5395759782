//! The Envoy 1.40 dynamic-module ABI (ABI version `v0.2.0`), as raw C declarations: only the
//! types and callbacks this module uses, written from the ABI facts in
//! `../shared/reference/envoy-dynamic-modules/` (which name every callback the pinned binary
//! exports and the C types its hooks are cast to). Nothing here is safe to call directly:
//! [`crate::envoy`] is the layer above that turns pointers and lengths into borrowed slices.
//!
//! Envoy checks only the version string; a declaration that does not match the binary would
//! not be caught at load, so each one is exercised by the end-to-end tests in real Envoy.

use std::os::raw::c_char;

/// The ABI version this module was written against; Envoy logs
/// `Dynamic module ABI version v0.2.0 matched.` when it loads it.
pub const ABI_VERSION: &std::ffi::CStr = c"v0.2.0";

/// A buffer Envoy owns, valid only during the hook call that handed it over.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct EnvoyBuffer {
    pub ptr: *const c_char,
    pub length: usize,
}

/// A buffer the module owns, lent to Envoy for the length of one callback.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ModuleBuffer {
    pub ptr: *const c_char,
    pub length: usize,
}

/// One header in an Envoy header map, both halves owned by Envoy.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct EnvoyHttpHeader {
    pub key_ptr: *const c_char,
    pub key_length: usize,
    pub value_ptr: *const c_char,
    pub value_length: usize,
}

/// One header the module passes to Envoy (a local reply's, a callout's).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ModuleHttpHeader {
    pub key_ptr: *const c_char,
    pub key_length: usize,
    pub value_ptr: *const c_char,
    pub value_length: usize,
}

/// `envoy_dynamic_module_type_event_cb`: a callback Envoy hands the module (with its
/// context) for the module to call once, e.g. when its shutdown work is done.
pub type EventCallback = Option<unsafe extern "C" fn(context: *mut std::ffi::c_void)>;

/// The bootstrap extension configuration's Envoy object (valid until its `config_destroy`).
pub type BootstrapConfigEnvoyPtr = *mut std::ffi::c_void;

/// `envoy_dynamic_module_type_http_header_type`: which header map of the stream.
pub const HEADER_TYPE_REQUEST: u32 = 0;

/// `envoy_dynamic_module_type_attribute_id` values used here.
pub const ATTRIBUTE_RESPONSE_CODE: u32 = 15;
/// `response.code_details`: Envoy's reason for the response (`http1.codec_error`, ...).
pub const ATTRIBUTE_RESPONSE_CODE_DETAILS: u32 = 16;
pub const ATTRIBUTE_SOURCE_ADDRESS: u32 = 24;

/// `envoy_dynamic_module_type_log_level`.
pub const LOG_LEVEL_DEBUG: u32 = 1;
pub const LOG_LEVEL_INFO: u32 = 2;
pub const LOG_LEVEL_WARN: u32 = 3;
pub const LOG_LEVEL_ERROR: u32 = 4;

/// `envoy_dynamic_module_type_metrics_result_Success`.
pub const METRICS_SUCCESS: u32 = 0;
/// `envoy_dynamic_module_type_http_callout_init_result_Success`.
pub const CALLOUT_INIT_SUCCESS: u32 = 0;
/// `envoy_dynamic_module_type_http_callout_result_Success`.
pub const CALLOUT_RESULT_SUCCESS: u32 = 0;

/// `envoy_dynamic_module_type_on_http_filter_request_headers_status`: Continue, StopIteration.
pub const REQUEST_HEADERS_CONTINUE: u32 = 0;
pub const REQUEST_HEADERS_STOP_ITERATION: u32 = 1;
/// `envoy_dynamic_module_type_on_http_filter_request_body_status`: Continue, StopIterationAndBuffer.
pub const REQUEST_BODY_CONTINUE: u32 = 0;
pub const REQUEST_BODY_STOP_ITERATION_AND_BUFFER: u32 = 1;
/// `envoy_dynamic_module_type_on_http_filter_request_trailers_status`: Continue, StopIteration.
pub const REQUEST_TRAILERS_CONTINUE: u32 = 0;
pub const REQUEST_TRAILERS_STOP_ITERATION: u32 = 1;

/// The opaque pointers: Envoy's objects (`*_envoy_ptr`) and the module's (`*_module_ptr`).
pub type HttpFilterConfigEnvoyPtr = *mut std::ffi::c_void;
pub type HttpFilterEnvoyPtr = *mut std::ffi::c_void;
pub type ConfigSchedulerPtr = *mut std::ffi::c_void;
pub type StreamSchedulerPtr = *mut std::ffi::c_void;

extern "C" {
    pub fn envoy_dynamic_module_callback_log(level: u32, message: ModuleBuffer);

    pub fn envoy_dynamic_module_callback_http_get_headers_size(filter: HttpFilterEnvoyPtr, header_type: u32) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_headers(
        filter: HttpFilterEnvoyPtr,
        header_type: u32,
        result_headers: *mut EnvoyHttpHeader,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_get_header(
        filter: HttpFilterEnvoyPtr,
        header_type: u32,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
        index: usize,
        optional_size: *mut usize,
    ) -> bool;
    /// A null `value` removes the header.
    pub fn envoy_dynamic_module_callback_http_set_header(
        filter: HttpFilterEnvoyPtr,
        header_type: u32,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_send_response(
        filter: HttpFilterEnvoyPtr,
        status_code: u32,
        headers: *mut ModuleHttpHeader,
        headers_size: usize,
        body: ModuleBuffer,
        details: ModuleBuffer,
    );
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
        filter: HttpFilterEnvoyPtr,
        attribute_id: u32,
        result: *mut EnvoyBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_int(
        filter: HttpFilterEnvoyPtr,
        attribute_id: u32,
        result: *mut u64,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_filter_get_worker_index(filter: HttpFilterEnvoyPtr) -> u32;

    pub fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        config: HttpFilterConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *mut ModuleBuffer,
        label_names_length: usize,
        counter_id: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_define_gauge(
        config: HttpFilterConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *mut ModuleBuffer,
        label_names_length: usize,
        gauge_id: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_increment_counter(
        config: HttpFilterConfigEnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_set_gauge(
        config: HttpFilterConfigEnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;

    /// A stream's scheduler: `commit` from any thread runs `on_http_filter_scheduled` on the
    /// stream's worker (Envoy keeps only a weak reference to the stream: a commit after the
    /// stream ended does nothing); deleted by the module.
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_new(filter: HttpFilterEnvoyPtr) -> StreamSchedulerPtr;
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_commit(scheduler: StreamSchedulerPtr, event_id: u64);
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_delete(scheduler: StreamSchedulerPtr);
    /// Resumes a request stopped at its headers (or body); on the stream's worker only.
    pub fn envoy_dynamic_module_callback_http_filter_continue_decoding(filter: HttpFilterEnvoyPtr);

    /// The number of worker threads Envoy runs; main thread only.
    pub fn envoy_dynamic_module_callback_get_concurrency() -> u32;

    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(
        config: HttpFilterConfigEnvoyPtr,
    ) -> ConfigSchedulerPtr;
    /// May be called from any thread: Envoy runs the event on its main thread.
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
        scheduler: ConfigSchedulerPtr,
        event_id: u64,
    );
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(scheduler: ConfigSchedulerPtr);

    pub fn envoy_dynamic_module_callback_http_filter_config_http_callout(
        config: HttpFilterConfigEnvoyPtr,
        callout_id: *mut u64,
        cluster_name: ModuleBuffer,
        headers: *mut ModuleHttpHeader,
        headers_size: usize,
        body: ModuleBuffer,
        timeout_milliseconds: u64,
    ) -> u32;

    /// Tells Envoy the bootstrap extension is ready: Envoy registers an init target for
    /// every dynamic-module bootstrap extension and starts no listener before this call.
    pub fn envoy_dynamic_module_callback_bootstrap_extension_config_signal_init_complete(
        config: BootstrapConfigEnvoyPtr,
    );
}
