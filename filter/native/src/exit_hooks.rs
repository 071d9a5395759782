//! The module as an Envoy bootstrap extension (`envoy.bootstrap.dynamic_modules`, the same
//! `libaudit_filter_native.so`; envoy-native.yaml configures it): its only use is the
//! shutdown hook, which Envoy runs on its main thread when it exits and waits on
//! ([`crate::envoy_exit`]). Envoy 1.40 requires every bootstrap hook to be exported, so the
//! others are no-ops; the C signatures are the ABI's (`abi.h` of the pinned version: the
//! reference material lists these hooks by name only). Each body runs behind the guard.

use std::ffi::c_void;

use crate::abi::{self, BootstrapConfigEnvoyPtr, EnvoyBuffer, EnvoyHttpHeader, EventCallback};
use std::sync::Arc;

use crate::envoy_exit::{self, Completion, ExitingConfig};
use crate::guard::{caught, guarded};
use crate::hooks::CONFIGS;

/// What Envoy holds as the extension's configuration and extension: nothing is kept per
/// extension, but Envoy takes a null pointer as a failure.
const NOT_NULL: *const c_void = std::ptr::dangling();

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_bootstrap_extension_config_new(
    config_envoy: BootstrapConfigEnvoyPtr,
    _name: EnvoyBuffer,
    _config: EnvoyBuffer,
) -> *const c_void {
    guarded("on_bootstrap_extension_config_new", std::ptr::null(), || {
        // Envoy starts no listener until every bootstrap extension said it is ready; this
        // one needs nothing first.
        // SAFETY: Envoy's configuration object, valid during this hook.
        unsafe { abi::envoy_dynamic_module_callback_bootstrap_extension_config_signal_init_complete(config_envoy) };
        NOT_NULL
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_bootstrap_extension_config_destroy(_config: *const c_void) {}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_bootstrap_extension_new(
    _config: *const c_void,
    _extension_envoy: *mut c_void,
) -> *const c_void {
    NOT_NULL
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_bootstrap_extension_destroy(_extension: *const c_void) {}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_bootstrap_extension_server_initialized(
    _extension_envoy: *mut c_void,
    _extension: *const c_void,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_bootstrap_extension_worker_thread_initialized(
    _extension_envoy: *mut c_void,
    _extension: *const c_void,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_bootstrap_extension_drain_started(
    _extension_envoy: *mut c_void,
    _extension: *const c_void,
) {
}

fn exiting_configs() -> Vec<Arc<dyn ExitingConfig>> {
    CONFIGS.all().into_iter().map(|config| config as Arc<dyn ExitingConfig>).collect()
}

/// Envoy is exiting: every live filter configuration sends what its workers hold with their
/// final reports; `completion` (Envoy's, called once) lets Envoy stop its loop. If the body
/// panics, Envoy is let go at once: an exit must never hang.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_bootstrap_extension_shutdown(
    _extension_envoy: *mut c_void,
    _extension: *const c_void,
    completion: EventCallback,
    completion_context: *mut c_void,
) {
    let completion = Completion::new(completion, completion_context);
    if caught("on_bootstrap_extension_shutdown", || envoy_exit::begin(exiting_configs, completion)).is_none() {
        envoy_exit::let_go();
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_bootstrap_extension_config_scheduled(
    _config_envoy: BootstrapConfigEnvoyPtr,
    _config: *const c_void,
    _event_id: u64,
) {
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn envoy_dynamic_module_on_bootstrap_extension_http_callout_done(
    _config_envoy: BootstrapConfigEnvoyPtr,
    _config: *const c_void,
    _callout_id: u64,
    _result: u32,
    _headers: *mut EnvoyHttpHeader,
    _headers_size: usize,
    _body_chunks: *mut EnvoyBuffer,
    _body_chunks_size: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_bootstrap_extension_timer_fired(
    _config_envoy: BootstrapConfigEnvoyPtr,
    _config: *const c_void,
    _timer: *mut c_void,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_bootstrap_extension_file_changed(
    _config_envoy: BootstrapConfigEnvoyPtr,
    _config: *const c_void,
    _path: EnvoyBuffer,
    _events: u32,
) {
}

/// Never called: the extension registers no admin handler. 404 should Envoy call it.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_bootstrap_extension_admin_request(
    _config_envoy: BootstrapConfigEnvoyPtr,
    _config: *const c_void,
    _method: EnvoyBuffer,
    _path: EnvoyBuffer,
    _body: EnvoyBuffer,
) -> u32 {
    404
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_bootstrap_extension_cluster_add_or_update(
    _config_envoy: BootstrapConfigEnvoyPtr,
    _config: *const c_void,
    _cluster_name: EnvoyBuffer,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_bootstrap_extension_cluster_removal(
    _config_envoy: BootstrapConfigEnvoyPtr,
    _config: *const c_void,
    _cluster_name: EnvoyBuffer,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_bootstrap_extension_listener_add_or_update(
    _config_envoy: BootstrapConfigEnvoyPtr,
    _config: *const c_void,
    _listener_name: EnvoyBuffer,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_bootstrap_extension_listener_removal(
    _config_envoy: BootstrapConfigEnvoyPtr,
    _config: *const c_void,
    _listener_name: EnvoyBuffer,
) {
}
