//! The Envoy callbacks the unit tests reach, defined here so the test binary links without
//! Envoy: the log (from [`crate::guard`]), which keeps what was logged, and the stream and
//! configuration schedulers, which record each commit and delete in order so tests can check
//! that none is committed after it was deleted. A fake scheduler's pointer is the stream's
//! (or configuration's) own, so each test uses addresses of its own.

use std::ffi::c_void;
use std::sync::Mutex;

use crate::abi::ModuleBuffer;

static LOGGED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// What happened to a fake scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedulerCall {
    Commit(usize, u64),
    Delete(usize),
}

static SCHEDULER_CALLS: Mutex<Vec<SchedulerCall>> = Mutex::new(Vec::new());

/// Everything logged so far by any test.
pub fn logged() -> Vec<String> {
    LOGGED.lock().map(|lines| lines.clone()).unwrap_or_default()
}

/// The calls made so far to the scheduler at `address`, in order.
pub fn scheduler_calls(address: usize) -> Vec<SchedulerCall> {
    let calls = SCHEDULER_CALLS.lock().map(|calls| calls.clone()).unwrap_or_default();
    calls
        .into_iter()
        .filter(|call| matches!(call, SchedulerCall::Commit(at, _) | SchedulerCall::Delete(at) if *at == address))
        .collect()
}

fn record(call: SchedulerCall) {
    if let Ok(mut calls) = SCHEDULER_CALLS.lock() {
        calls.push(call);
    }
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_log(_level: u32, message: ModuleBuffer) {
    // SAFETY: the module lends the message for the call.
    let bytes = unsafe { crate::envoy::envoy_bytes(message.ptr, message.length) };
    if let Ok(mut lines) = LOGGED.lock() {
        lines.push(String::from_utf8_lossy(bytes).into_owned());
    }
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_scheduler_new(filter: *mut c_void) -> *mut c_void {
    filter
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_scheduler_commit(scheduler: *mut c_void, event_id: u64) {
    record(SchedulerCall::Commit(scheduler.addr(), event_id));
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_scheduler_delete(scheduler: *mut c_void) {
    record(SchedulerCall::Delete(scheduler.addr()));
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(config: *mut c_void) -> *mut c_void {
    config
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(scheduler: *mut c_void, event_id: u64) {
    record(SchedulerCall::Commit(scheduler.addr(), event_id));
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(scheduler: *mut c_void) {
    record(SchedulerCall::Delete(scheduler.addr()));
}
