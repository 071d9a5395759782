//! The filter's configuration parser on arbitrary bytes: it must answer `Ok` or a
//! `ConfigError` that names what is wrong, never panic. An accepted configuration must
//! also hold the rules `from_json` promises, and capture a request with it.
#![no_main]

use audit_filter_core::fuzzing::{capture_event, FakeRequest, FilterConfig, MIN_MAX_FIELD_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = match FilterConfig::from_json(data) {
        Ok(config) => config,
        Err(error) => {
            assert!(!error.to_string().is_empty(), "an error that says nothing");
            return;
        }
    };
    assert!(config.batch.max_events > 0 && config.buffer.max_events >= config.batch.max_events);
    assert!(config.limits.max_field_bytes >= MIN_MAX_FIELD_BYTES);
    let request = FakeRequest::default()
        .header(":method", "GET")
        .header(":path", "/pacticipants/Foo?token=abc")
        .header("x-forwarded-email", "ann@example.com")
        .property("source.address", b"10.0.0.1:5000");
    let event = capture_event(&request, &config, None, [1; 16]);
    assert!(!event.event_type.is_empty(), "every event has a type");
});
