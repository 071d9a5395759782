//! The safe layer over [`crate::abi`]: every pointer and length Envoy hands over becomes a
//! slice borrowed for the hook call it came with (the borrow checker then keeps it from
//! outliving the call, or a setter that would invalidate it); every callback's failure
//! becomes an `Option` or a `Result`. The rest of the module calls Envoy only through here.

use std::marker::PhantomData;
use std::os::raw::c_char;

use crate::abi::{self, EnvoyBuffer, EnvoyHttpHeader, ModuleBuffer, ModuleHttpHeader};

/// Bytes Envoy owns, borrowed for `'a`; a null pointer is the empty slice.
///
/// # Safety
/// `ptr` must be null or point to `length` readable bytes that live for `'a`.
pub unsafe fn envoy_bytes<'a>(ptr: *const c_char, length: usize) -> &'a [u8] {
    if ptr.is_null() || length == 0 {
        return &[];
    }
    // SAFETY: non-null and `length` readable bytes for `'a`, by the caller's contract.
    unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), length) }
}

/// A module buffer lending `bytes` to Envoy for one callback.
pub fn lend(bytes: &[u8]) -> ModuleBuffer {
    ModuleBuffer { ptr: bytes.as_ptr().cast::<c_char>(), length: bytes.len() }
}

fn lend_header(name: &str, value: &[u8]) -> ModuleHttpHeader {
    ModuleHttpHeader {
        key_ptr: name.as_ptr().cast::<c_char>(),
        key_length: name.len(),
        value_ptr: value.as_ptr().cast::<c_char>(),
        value_length: value.len(),
    }
}

/// Writes `message` to Envoy's log (component `dynamic_modules`).
pub fn log(level: log::Level, message: &str) {
    let level = match level {
        log::Level::Error => abi::LOG_LEVEL_ERROR,
        log::Level::Warn => abi::LOG_LEVEL_WARN,
        log::Level::Info => abi::LOG_LEVEL_INFO,
        log::Level::Debug | log::Level::Trace => abi::LOG_LEVEL_DEBUG,
    };
    // SAFETY: the message is lent for the call only.
    unsafe { abi::envoy_dynamic_module_callback_log(level, lend(message.as_bytes())) }
}

/// How many request headers [`Stream::request_headers`] reads into a buffer on the stack.
const STACK_HEADERS: usize = 32;

/// One HTTP stream, for the length of the hook call it was handed to (`'hook`).
pub struct Stream<'hook> {
    raw: abi::HttpFilterEnvoyPtr,
    hook: PhantomData<&'hook ()>,
}

impl Stream<'_> {
    /// # Safety
    /// `raw` must be the `filter_envoy_ptr` of the hook being run, used only during it.
    pub unsafe fn new(raw: abi::HttpFilterEnvoyPtr) -> Self {
        Stream { raw, hook: PhantomData }
    }

    /// Every request header, in order, as Envoy holds them (borrowed until a setter runs).
    /// Envoy writes them into a buffer on the stack (a heap one past [`STACK_HEADERS`]): one
    /// allocation a call, not two (this runs twice a request).
    pub fn request_headers(&self) -> Vec<(&[u8], &[u8])> {
        let mut on_stack = [EnvoyHttpHeader::EMPTY; STACK_HEADERS];
        let mut on_heap = Vec::new();
        // SAFETY: `raw` is this hook's stream.
        let size =
            unsafe { abi::envoy_dynamic_module_callback_http_get_headers_size(self.raw, abi::HEADER_TYPE_REQUEST) };
        let raw_headers: &mut [EnvoyHttpHeader] = match on_stack.get_mut(..size) {
            Some(slice) => slice,
            None => {
                on_heap.resize(size, EnvoyHttpHeader::EMPTY);
                &mut on_heap
            }
        };
        // SAFETY: `raw` is this hook's stream; the array has room for `size` headers.
        let filled = size > 0
            && unsafe {
                abi::envoy_dynamic_module_callback_http_get_headers(
                    self.raw,
                    abi::HEADER_TYPE_REQUEST,
                    raw_headers.as_mut_ptr(),
                )
            };
        if !filled {
            return Vec::new();
        }
        // SAFETY: Envoy filled each entry with buffers valid until the end of the hook or
        // the next setter, which needs `&mut self`.
        raw_headers.iter().map(|header| unsafe { header.pair() }).collect()
    }

    /// The first value of the request header `name` (lowercase), even an empty one.
    pub fn request_header(&self, name: &str) -> Option<&[u8]> {
        let mut value = EnvoyBuffer { ptr: std::ptr::null(), length: 0 };
        let mut count = 0usize;
        // SAFETY: `raw` is this hook's stream; the name is lent for the call; the value is
        // valid until the end of the hook or the next setter, which needs `&mut self`.
        unsafe {
            abi::envoy_dynamic_module_callback_http_get_header(
                self.raw,
                abi::HEADER_TYPE_REQUEST,
                lend(name.as_bytes()),
                &mut value,
                0,
                &mut count,
            );
            (count > 0).then(|| envoy_bytes(value.ptr, value.length))
        }
    }

    /// Removes every value of the request header `name`; false if Envoy could not.
    pub fn remove_request_header(&mut self, name: &str) -> bool {
        let none = ModuleBuffer { ptr: std::ptr::null(), length: 0 };
        // SAFETY: `raw` is this hook's stream; a null value removes the header.
        unsafe {
            abi::envoy_dynamic_module_callback_http_set_header(
                self.raw,
                abi::HEADER_TYPE_REQUEST,
                lend(name.as_bytes()),
                none,
            )
        }
    }

    /// A string attribute (`abi::ATTRIBUTE_*`), borrowed for the hook.
    pub fn attribute_string(&self, id: u32) -> Option<&[u8]> {
        let mut value = EnvoyBuffer { ptr: std::ptr::null(), length: 0 };
        // SAFETY: `raw` is this hook's stream; Envoy writes a buffer valid during the hook.
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_get_attribute_string(self.raw, id, &mut value)
                .then(|| envoy_bytes(value.ptr, value.length))
        }
    }

    /// An integer attribute (`abi::ATTRIBUTE_*`).
    pub fn attribute_int(&self, id: u32) -> Option<u64> {
        let mut value = 0u64;
        // SAFETY: `raw` is this hook's stream; Envoy writes one integer.
        unsafe { abi::envoy_dynamic_module_callback_http_filter_get_attribute_int(self.raw, id, &mut value) }
            .then_some(value)
    }

    /// The index of the worker (thread) running this stream.
    /// A scheduler that runs `on_http_filter_scheduled` for this stream on its worker.
    pub fn new_scheduler(&self) -> Option<StreamScheduler> {
        // SAFETY: `raw` is this hook's stream.
        let raw = unsafe { abi::envoy_dynamic_module_callback_http_filter_scheduler_new(self.raw) };
        (!raw.is_null()).then_some(StreamScheduler { raw })
    }

    /// Resumes the request this filter stopped (called in the stream's own hook, on its worker).
    pub fn continue_decoding(&mut self) {
        // SAFETY: `raw` is this hook's stream.
        unsafe { abi::envoy_dynamic_module_callback_http_filter_continue_decoding(self.raw) }
    }

    pub fn worker_index(&self) -> u32 {
        // SAFETY: `raw` is this hook's stream.
        unsafe { abi::envoy_dynamic_module_callback_http_filter_get_worker_index(self.raw) }
    }

    /// Answers the request from the module; it never reaches the service.
    pub fn send_local_reply(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        let mut lent: Vec<ModuleHttpHeader> =
            headers.iter().map(|(name, value)| lend_header(name, value.as_bytes())).collect();
        // SAFETY: `raw` is this hook's stream; headers and body are lent for the call.
        unsafe {
            abi::envoy_dynamic_module_callback_http_send_response(
                self.raw,
                u32::from(status),
                lent.as_mut_ptr(),
                lent.len(),
                lend(body),
                lend(b"audit_sidecar_refused"),
            );
        }
    }
}

impl EnvoyHttpHeader {
    const EMPTY: EnvoyHttpHeader =
        EnvoyHttpHeader { key_ptr: std::ptr::null(), key_length: 0, value_ptr: std::ptr::null(), value_length: 0 };

    /// # Safety
    /// Both buffers must be valid for `'a`.
    unsafe fn pair<'a>(&self) -> (&'a [u8], &'a [u8]) {
        // SAFETY: by the caller's contract.
        unsafe { (envoy_bytes(self.key_ptr, self.key_length), envoy_bytes(self.value_ptr, self.value_length)) }
    }
}

/// The filter configuration's Envoy object: metrics, the scheduler and callouts. Envoy
/// calls the configuration's hooks on its main thread, and only those use this handle.
#[derive(Clone, Copy)]
pub struct ConfigHandle {
    raw: abi::HttpFilterConfigEnvoyPtr,
}

// SAFETY: the handle is only dereferenced (by Envoy) in callbacks made from the main-thread
// configuration hooks (`config_new`, `config_scheduled`, `config_http_callout_done`); worker
// threads only carry it inside the shared configuration.
unsafe impl Send for ConfigHandle {}
// SAFETY: as above.
unsafe impl Sync for ConfigHandle {}

/// Why a call to the collector could not be sent (Envoy's `http_callout_init_result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalloutRefused(pub u32);

impl std::fmt::Display for CalloutRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reason = match self.0 {
            1 => "MissingRequiredHeaders",
            2 => "ClusterNotFound",
            3 => "DuplicateCalloutId",
            4 => "CannotCreateRequest",
            _ => "unknown",
        };
        write!(f, "{reason} ({})", self.0)
    }
}

impl ConfigHandle {
    /// # Safety
    /// `raw` must be the `filter_config_envoy_ptr` Envoy passed to `config_new`, used only
    /// from configuration hooks while the configuration lives.
    pub unsafe fn new(raw: abi::HttpFilterConfigEnvoyPtr) -> Self {
        ConfigHandle { raw }
    }

    /// Defines a counter (only possible in `config_new`).
    pub fn define_counter(&self, name: &str) -> Option<usize> {
        let mut id = 0usize;
        // SAFETY: `raw` is the live configuration; the name is lent for the call.
        let result = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_define_counter(
                self.raw,
                lend(name.as_bytes()),
                std::ptr::null_mut(),
                0,
                &mut id,
            )
        };
        (result == abi::METRICS_SUCCESS).then_some(id)
    }

    /// Defines a gauge (only possible in `config_new`).
    pub fn define_gauge(&self, name: &str) -> Option<usize> {
        let mut id = 0usize;
        // SAFETY: as for `define_counter`.
        let result = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_define_gauge(
                self.raw,
                lend(name.as_bytes()),
                std::ptr::null_mut(),
                0,
                &mut id,
            )
        };
        (result == abi::METRICS_SUCCESS).then_some(id)
    }

    pub fn increment_counter(&self, id: usize, by: u64) {
        // SAFETY: `raw` is the live configuration; `id` came from `define_counter`.
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_increment_counter(
                self.raw,
                id,
                std::ptr::null_mut(),
                0,
                by,
            );
        }
    }

    pub fn set_gauge(&self, id: usize, value: u64) {
        // SAFETY: `raw` is the live configuration; `id` came from `define_gauge`.
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_set_gauge(
                self.raw,
                id,
                std::ptr::null_mut(),
                0,
                value,
            );
        }
    }

    /// Sends one HTTP request to `cluster`; its answer arrives in
    /// `on_http_filter_config_http_callout_done` with the returned id.
    pub fn http_callout(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<u64, CalloutRefused> {
        let mut lent: Vec<ModuleHttpHeader> =
            headers.iter().map(|(name, value)| lend_header(name, value.as_bytes())).collect();
        let mut callout_id = 0u64;
        // SAFETY: `raw` is the live configuration; every buffer is lent for the call.
        let result = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_http_callout(
                self.raw,
                &mut callout_id,
                lend(cluster.as_bytes()),
                lent.as_mut_ptr(),
                lent.len(),
                lend(body),
                timeout_ms,
            )
        };
        if result == abi::CALLOUT_INIT_SUCCESS {
            Ok(callout_id)
        } else {
            Err(CalloutRefused(result))
        }
    }

    /// The number of Envoy's workers. The handle is only proof of being in a configuration
    /// hook, which Envoy runs on its main thread, the only thread the ABI allows this on.
    pub fn worker_count(&self) -> u32 {
        // SAFETY: no arguments; called on the main thread (see above).
        unsafe { abi::envoy_dynamic_module_callback_get_concurrency() }
    }

    /// A scheduler that runs `on_http_filter_config_scheduled` on the main thread.
    pub fn new_scheduler(&self) -> Option<Scheduler> {
        // SAFETY: `raw` is the live configuration.
        let raw = unsafe { abi::envoy_dynamic_module_callback_http_filter_config_scheduler_new(self.raw) };
        (!raw.is_null()).then_some(Scheduler { raw })
    }
}

/// The configuration's scheduler: [`Scheduler::commit`] from any thread runs the
/// configuration's `scheduled` hook on Envoy's main thread. Deleted when dropped.
pub struct Scheduler {
    raw: abi::ConfigSchedulerPtr,
}

// SAFETY: Envoy documents `scheduler_commit` as callable from any thread (it posts to the
// main thread's dispatcher); the pointer is deleted once, on drop.
unsafe impl Send for Scheduler {}
// SAFETY: as above.
unsafe impl Sync for Scheduler {}

impl Scheduler {
    pub fn commit(&self, event_id: u64) {
        // SAFETY: `raw` lives until drop.
        unsafe { abi::envoy_dynamic_module_callback_http_filter_config_scheduler_commit(self.raw, event_id) }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        // SAFETY: created by `scheduler_new`, deleted once.
        unsafe { abi::envoy_dynamic_module_callback_http_filter_config_scheduler_delete(self.raw) }
    }
}

/// What came back from the collector for one callout: the `:status` (None when the call
/// was reset or timed out) and the start of the body, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalloutAnswer {
    pub status: Option<u16>,
    pub body_start: String,
}

impl CalloutAnswer {
    /// Reads the answer Envoy passed to `on_http_filter_config_http_callout_done`, keeping at
    /// most `max_body` bytes of the body.
    ///
    /// # Safety
    /// `headers` and `chunks` must be null or arrays of the given sizes whose buffers are
    /// valid during the call.
    pub unsafe fn read(
        result: u32,
        headers: *const EnvoyHttpHeader,
        headers_size: usize,
        chunks: *const EnvoyBuffer,
        chunks_size: usize,
        max_body: usize,
    ) -> CalloutAnswer {
        // SAFETY: by the caller's contract (null gives no entries).
        let (headers, chunks) = unsafe { (array(headers, headers_size), array(chunks, chunks_size)) };
        let status = (result == abi::CALLOUT_RESULT_SUCCESS)
            .then(|| {
                headers.iter().find_map(|header| {
                    // SAFETY: each header's buffers are valid during the call.
                    let (name, value) = unsafe { header.pair() };
                    (name == b":status").then(|| std::str::from_utf8(value).ok()?.trim().parse().ok()).flatten()
                })
            })
            .flatten();
        let mut body = Vec::new();
        for chunk in chunks {
            let room = max_body.saturating_sub(body.len());
            // SAFETY: each chunk is valid during the call.
            let bytes = unsafe { envoy_bytes(chunk.ptr, chunk.length) };
            body.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
        CalloutAnswer { status, body_start: String::from_utf8_lossy(&body).into_owned() }
    }
}

/// # Safety
/// `ptr` must be null or point to `size` initialized values valid for `'a`.
unsafe fn array<'a, T>(ptr: *const T, size: usize) -> &'a [T] {
    if ptr.is_null() || size == 0 {
        return &[];
    }
    // SAFETY: by the caller's contract.
    unsafe { std::slice::from_raw_parts(ptr, size) }
}

/// A stream's scheduler: [`StreamScheduler::commit`] from any thread runs
/// `on_http_filter_scheduled` on the stream's worker; dropping it deletes it.
pub struct StreamScheduler {
    raw: abi::StreamSchedulerPtr,
}

// SAFETY: the ABI allows `commit` from any thread (Envoy posts the event to the worker and
// holds the stream weakly); the owner serializes `commit` and the delete (`HeldRequest`).
unsafe impl Send for StreamScheduler {}
// SAFETY: as above: `commit` takes `&self` and is thread-safe in Envoy.
unsafe impl Sync for StreamScheduler {}

impl StreamScheduler {
    pub fn commit(&self, event_id: u64) {
        // SAFETY: `raw` is live until dropped.
        unsafe { abi::envoy_dynamic_module_callback_http_filter_scheduler_commit(self.raw, event_id) }
    }
}

impl Drop for StreamScheduler {
    fn drop(&mut self) {
        // SAFETY: made by `scheduler_new`, deleted once.
        unsafe { abi::envoy_dynamic_module_callback_http_filter_scheduler_delete(self.raw) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envoy_header(name: &'static str, value: &'static str) -> EnvoyHttpHeader {
        EnvoyHttpHeader {
            key_ptr: name.as_ptr().cast(),
            key_length: name.len(),
            value_ptr: value.as_ptr().cast(),
            value_length: value.len(),
        }
    }

    fn chunk(bytes: &'static str) -> EnvoyBuffer {
        EnvoyBuffer { ptr: bytes.as_ptr().cast(), length: bytes.len() }
    }

    #[test]
    fn a_null_or_empty_buffer_is_the_empty_slice() {
        // SAFETY: null and zero-length inputs are never read.
        unsafe {
            assert_eq!(envoy_bytes(std::ptr::null(), 5), b"");
            assert_eq!(envoy_bytes(b"abc".as_ptr().cast(), 0), b"");
            assert_eq!(envoy_bytes(b"abc".as_ptr().cast(), 2), b"ab");
        }
    }

    #[test]
    fn a_callout_answer_gives_its_status_and_the_start_of_its_body() {
        let headers = [envoy_header("content-type", "text/plain"), envoy_header(":status", "503")];
        let chunks = [chunk("over"), chunk("loaded, retry later")];
        // SAFETY: the arrays and their buffers live for the call.
        let answer = unsafe { CalloutAnswer::read(0, headers.as_ptr(), 2, chunks.as_ptr(), 2, 10) };
        assert_eq!(answer, CalloutAnswer { status: Some(503), body_start: "overloaded".into() });
    }

    #[test]
    fn a_reset_callout_has_no_status_even_with_headers() {
        let headers = [envoy_header(":status", "200")];
        // SAFETY: as above; the chunk array is null.
        let answer = unsafe { CalloutAnswer::read(1, headers.as_ptr(), 1, std::ptr::null(), 3, 10) };
        assert_eq!(answer, CalloutAnswer { status: None, body_start: String::new() });
    }

    #[test]
    fn a_status_that_is_not_a_number_is_no_status() {
        let headers = [envoy_header(":status", "two hundred")];
        // SAFETY: as above.
        let answer = unsafe { CalloutAnswer::read(0, headers.as_ptr(), 1, std::ptr::null(), 0, 10) };
        assert_eq!(answer.status, None);
    }
}
