//! The one Envoy callback the unit tests reach (the log, from [`crate::guard`]), defined
//! here so the test binary links without Envoy; it keeps what was logged.

use std::sync::Mutex;

use crate::abi::ModuleBuffer;

static LOGGED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Everything logged so far by any test.
pub fn logged() -> Vec<String> {
    LOGGED.lock().map(|lines| lines.clone()).unwrap_or_default()
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_log(_level: u32, message: ModuleBuffer) {
    // SAFETY: the module lends the message for the call.
    let bytes = unsafe { crate::envoy::envoy_bytes(message.ptr, message.length) };
    if let Ok(mut lines) = LOGGED.lock() {
        lines.push(String::from_utf8_lossy(bytes).into_owned());
    }
}
