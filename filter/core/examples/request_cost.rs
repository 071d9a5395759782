//! The filter's per-request work in its host-agnostic core, for the instruction budget of
//! `make test` (`tests/instructions/`): capture (typing, identity, redaction, bounds) and
//! the event's JSON, on the request `make bench` sends, through the host fake (which, like
//! Envoy, hands the header map over serialized). Either host (wasm, native) adds its own
//! boundary crossings on top; this is the part both share.
//!
//! `request_cost <requests to run> <requests prepared>`: nothing is prepared per request, so
//! two runs differ only by the requests the first did not run.

use audit_filter_core::fuzzing::{capture_event, write_event, FakeRequest, FilterConfig};

/// The request `make bench` sends, with the headers Envoy adds before the filter sees it.
fn bench_request() -> FakeRequest {
    FakeRequest::default()
        .header(":method", "GET")
        .header(":path", "/pacticipants/Foo/versions/1.0.0")
        .header(":authority", "127.0.0.1:10000")
        .header(":scheme", "http")
        .header("user-agent", "pact_broker-client/1.75.1 (ruby 3.2.2; x86_64-linux)")
        .header("x-forwarded-email", "alice@example.com")
        .header("x-forwarded-for", "127.0.0.1")
        .header("x-forwarded-proto", "http")
        .header("x-request-id", "2f7c1c9e-5b0e-4a53-9a43-7b8f2d1e6a10")
        .header("x-envoy-expected-rq-timeout-ms", "15000")
        .property("source.address", b"127.0.0.1:51234")
        .int_property("request.time", 1_575_929_724_864_123_456)
        .int_property("request.duration", 1_500_000)
        .int_property("response.code", 200)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let requests: usize = match std::env::args().nth(1) {
        Some(count) => count.parse()?,
        None => return Err("usage: request_cost <requests to run> <requests prepared>".into()),
    };
    let request = bench_request();
    let config = FilterConfig::from_json(b"{}")?;
    let mut bytes = 0;
    for n in 0..requests {
        let event = capture_event(&request, &config, None, [n as u8; 16]);
        let mut json = Vec::with_capacity(1024);
        write_event(&mut json, &event)?;
        bytes += std::hint::black_box(json).len();
    }
    println!("{requests} events, {bytes} bytes of JSON");
    Ok(())
}
