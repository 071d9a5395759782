//! The bench's ablation of the filter (feature `cost-stages`, never in the shipped wasm):
//! a build that stops each request after one stage, so `make bench` can measure in real
//! Envoy what each stage adds over the no-op filter. The stage is chosen per Envoy by the
//! VM's environment (`AUDIT_BENCH_STAGE`, set by `bench/tools`'s `stage-*` variants).

/// How far the filter goes with each request; every stage does all the earlier ones' work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostStage {
    /// The SDK's contexts are created and called; nothing is read from the host.
    Callbacks,
    /// Plus `on_http_request_headers` as the full filter does it (the identity header
    /// lookups, stripping an untrusted one, fail-closed's check); `on_log` does nothing.
    RequestHeaders,
    /// Plus `on_log`'s host reads (the header map, the properties below, the clock and the
    /// uuid's randomness); nothing is built from them.
    HostReads,
    /// Plus the event: capture, route typing, identity, bounds; then dropped.
    Capture,
    /// Plus the event's JSON; then dropped.
    Json,
    /// The whole filter: the event goes to the outbox and is delivered.
    Full,
}

/// The environment variable that picks the stage.
pub const STAGE_ENV: &str = "AUDIT_BENCH_STAGE";

/// The properties `capture_event` reads in `on_log` (`source.address` too, unless stripping
/// read it first), which the `HostReads` stage reads and drops. A test keeps it in step.
pub const CAPTURE_PROPERTIES: [&[&str]; 5] =
    [&["source", "address"], &["metadata"], &["request", "time"], &["response", "code"], &["request", "duration"]];

impl CostStage {
    /// The stage named by `value` (`callbacks`, `request-headers`, `host-reads`, `capture`,
    /// `json`, `full`);
    /// unset means the whole filter.
    pub fn parse(value: Option<&str>) -> Result<CostStage, String> {
        Ok(match value {
            None | Some("full") => CostStage::Full,
            Some("callbacks") => CostStage::Callbacks,
            Some("request-headers") => CostStage::RequestHeaders,
            Some("host-reads") => CostStage::HostReads,
            Some("capture") => CostStage::Capture,
            Some("json") => CostStage::Json,
            Some(other) => {
                return Err(format!(
                    "must be callbacks, request-headers, host-reads, capture, json or full, not `{other}`"
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::config::FilterConfig;
    use crate::request::capture::capture_event;
    use crate::request::host::{FakeRequest, RequestHeaders, RequestView};

    /// A request view that notes each property capture asks for.
    struct Recording {
        request: FakeRequest,
        read: RefCell<Vec<String>>,
    }

    impl RequestView for Recording {
        fn request_headers(&self) -> RequestHeaders {
            self.request.request_headers()
        }

        fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
            self.read.borrow_mut().push(path.join("."));
            RequestView::property(&self.request, path)
        }

        fn now_unix_nanos(&self) -> i64 {
            self.request.now_unix_nanos
        }
    }

    #[test]
    fn the_host_reads_stage_reads_what_capture_reads() {
        let request = FakeRequest::default()
            .header(":method", "GET")
            .header(":path", "/pacticipants/Foo/versions/1.0.0")
            .header("x-forwarded-email", "alice@example.com")
            .property("source.address", b"10.0.0.7:51234")
            .int_property("request.time", 1_575_929_724_864_123_456)
            .int_property("response.code", 200)
            .int_property("request.duration", 1_500_000);
        let config = FilterConfig::from_json(b"").unwrap();
        let recording = Recording { request, read: RefCell::new(Vec::new()) };
        capture_event(&recording, &config, None, [7; 16]);
        let mut read = recording.read.take();
        read.sort();
        read.dedup();
        let mut expected: Vec<String> = CAPTURE_PROPERTIES.iter().map(|path| path.join(".")).collect();
        expected.sort();
        assert_eq!(read, expected);
    }

    #[test]
    fn stages_are_named_and_a_wrong_name_is_refused() {
        assert_eq!(CostStage::parse(None), Ok(CostStage::Full));
        assert_eq!(CostStage::parse(Some("host-reads")), Ok(CostStage::HostReads));
        let refused = CostStage::parse(Some("half")).unwrap_err();
        assert!(refused.contains("`half`"), "{refused}");
    }
}
