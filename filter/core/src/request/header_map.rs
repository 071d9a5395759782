//! The request headers, and reading proxy-wasm's serialized header map (what
//! `proxy_get_header_map_pairs` hands the filter) as [`RequestHeaders`] in place. The SDK's
//! `get_map_bytes` copies every name and value into its own allocation (two per header, ~21 for a typical request, and as many
//! frees); here the host's buffer becomes the headers' text when it is valid UTF-8 (nearly
//! always), and only the byte ranges are recorded. Invalid bytes are replaced (U+FFFD), as
//! a client may send them, in names too, where the SDK would panic.
//!
//! Layout: a u32 count; per header a u32 name length and a u32 value length; then each name
//! and each value followed by a NUL. Integers little-endian.

/// The request headers, fetched in one host call. Names are lowercase, as Envoy keeps them.
/// Every name and value lives in one string (the host's buffer itself when it is valid
/// UTF-8, see [`parse_header_map`]), so a request's headers cost two allocations, not
/// two per header.
#[derive(Debug, Clone, Default)]
pub struct RequestHeaders {
    text: String,
    /// The byte ranges of each name and value in `text`, in the order they arrived.
    spans: Vec<(Span, Span)>,
}

/// `start..end` in [`RequestHeaders::text`].
type Span = (usize, usize);

impl RequestHeaders {
    #[cfg(test)]
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        let mut headers = Self::default();
        for (name, value) in &pairs {
            headers.push(name, value);
        }
        headers
    }

    /// No headers yet, with room for `headers` of `text_bytes` bytes of names and values
    /// (a host that copies the headers in one by one grows nothing).
    pub fn with_capacity(text_bytes: usize, headers: usize) -> Self {
        Self { text: String::with_capacity(text_bytes), spans: Vec::with_capacity(headers) }
    }

    /// The headers of `pairs`, as a host that hands out each name and value as bytes gives
    /// them (the native module): every byte copied into one buffer and checked as UTF-8 once
    /// (a check per name and per value, ~20 a request, cost more than the copy); only when
    /// that fails is each part replaced (U+FFFD) on its own, as a client may send them. Valid
    /// as a whole is not valid part by part when a character straddles two parts (a value
    /// ending in a lead byte, an empty or non-token name, its continuation next): each part's
    /// start must be a character boundary too, or it would read as empty.
    pub fn from_byte_pairs(pairs: &[(&[u8], &[u8])]) -> Self {
        let bytes = pairs.iter().map(|(name, value)| name.len() + value.len()).sum();
        let mut text = Vec::with_capacity(bytes);
        let mut spans = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            let name_span = (text.len(), text.len() + name.len());
            text.extend_from_slice(name);
            let value_span = (text.len(), text.len() + value.len());
            text.extend_from_slice(value);
            spans.push((name_span, value_span));
        }
        let at_boundaries = |text: &String| {
            spans.iter().all(|&((name, _), (value, _))| text.is_char_boundary(name) && text.is_char_boundary(value))
        };
        match String::from_utf8(text) {
            Ok(text) if at_boundaries(&text) => Self::from_parts(text, spans),
            _ => {
                let mut headers = Self::with_capacity(bytes, pairs.len());
                for (name, value) in pairs {
                    headers.push(&String::from_utf8_lossy(name), &String::from_utf8_lossy(value));
                }
                headers
            }
        }
    }

    /// Headers over `text`, which holds every span (checked by the caller).
    fn from_parts(text: String, spans: Vec<(Span, Span)>) -> Self {
        Self { text, spans }
    }

    /// Appends a header after those that arrived.
    pub fn push(&mut self, name: &str, value: &str) {
        let name_span = (self.text.len(), self.text.len() + name.len());
        self.text.push_str(name);
        let value_span = (self.text.len(), self.text.len() + value.len());
        self.text.push_str(value);
        self.spans.push((name_span, value_span));
    }

    /// Every header, in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.spans.iter().map(|&(name, value)| (self.text_at(name), self.text_at(value)))
    }

    /// The first value of `name` (lowercase), if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.spans.iter().find(|(key, _)| self.is_named(*key, name)).map(|&(_, value)| self.text_at(value))
    }

    /// Every value of `name`, in the order they arrived.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.spans.iter().filter(move |(key, _)| self.is_named(*key, name)).map(|&(_, value)| self.text_at(value))
    }

    /// The first value of `name` that is not blank.
    pub fn get_non_empty(&self, name: &str) -> Option<&str> {
        let values = self.spans.iter().filter(|(key, _)| self.is_named(*key, name));
        values.map(|&(_, value)| self.text_at(value).trim()).find(|value| !value.is_empty())
    }

    /// Compared as bytes: capture looks up ~15 names in every request's headers.
    fn is_named(&self, (start, end): Span, name: &str) -> bool {
        self.text.as_bytes().get(start..end) == Some(name.as_bytes())
    }

    fn text_at(&self, (start, end): Span) -> &str {
        self.text.get(start..end).unwrap_or_default()
    }
}

impl PartialEq for RequestHeaders {
    fn eq(&self, other: &Self) -> bool {
        self.pairs().eq(other.pairs())
    }
}

/// The headers in `buffer`; None when it is not a well-formed map (never seen from Envoy).
pub fn parse_header_map(buffer: Vec<u8>) -> Option<RequestHeaders> {
    if buffer.is_empty() {
        return Some(RequestHeaders::default());
    }
    let spans = spans(&buffer)?;
    match String::from_utf8(buffer) {
        Ok(text) => Some(RequestHeaders::from_parts(text, spans)),
        Err(invalid) => {
            let bytes = invalid.into_bytes();
            let text = |(start, end): Span| String::from_utf8_lossy(&bytes[start..end]);
            let mut headers = RequestHeaders::default();
            for (name, value) in spans {
                headers.push(&text(name), &text(value));
            }
            Some(headers)
        }
    }
}

/// Where each name and value is in `buffer`, all checked to lie within it.
fn spans(buffer: &[u8]) -> Option<Vec<(Span, Span)>> {
    let u32_at = |at: usize| -> Option<usize> {
        let bytes: [u8; 4] = buffer.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(bytes)).ok()
    };
    let count = u32_at(0)?;
    // Each header takes 8 bytes of sizes and 2 NULs: a count the buffer cannot hold is bad.
    if count > buffer.len() / 10 {
        return None;
    }
    let mut spans = Vec::with_capacity(count);
    let mut at = 4 + count * 8;
    let mut next = |len: usize| -> Option<Span> {
        let span = (at, at.checked_add(len)?);
        at = span.1.checked_add(1)?;
        (at <= buffer.len()).then_some(span)
    };
    for header in 0..count {
        let name = next(u32_at(4 + header * 8)?)?;
        let value = next(u32_at(8 + header * 8)?)?;
        spans.push((name, value));
    }
    Some(spans)
}

/// The serialized map of `pairs`, as the host writes it (tests and the host fake).
#[cfg(any(test, feature = "fuzzing"))]
pub fn serialize_header_map<'a>(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone) -> Vec<u8> {
    let count = pairs.clone().count();
    let bytes: usize = pairs.clone().map(|(name, value)| name.len() + value.len() + 10).sum();
    let mut out = Vec::with_capacity(4 + bytes);
    out.extend_from_slice(&(count as u32).to_le_bytes());
    for (name, value) in pairs.clone() {
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    }
    for (name, value) in pairs {
        for part in [name, value] {
            out.extend_from_slice(part);
            out.push(0);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// What the filter did before: the SDK's `deserialize_map_bytes` (a copy per name and
    /// per value), then each value decoded lossily, its buffer kept when valid. Names are
    /// decoded the same way (the SDK panicked on an invalid one, so no such request was
    /// ever captured).
    pub(super) fn sdk_path(buffer: &[u8]) -> Vec<(String, String)> {
        let size = |at: usize| u32::from_le_bytes(buffer[at..at + 4].try_into().unwrap_or_default()) as usize;
        let text = |bytes: Vec<u8>| {
            String::from_utf8(bytes).unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned())
        };
        let count = size(0);
        let mut at = 4 + count * 8;
        let mut pairs = Vec::with_capacity(count);
        for header in 0..count {
            let name = buffer[at..at + size(4 + header * 8)].to_vec();
            at += name.len() + 1;
            let value = buffer[at..at + size(8 + header * 8)].to_vec();
            at += value.len() + 1;
            pairs.push((text(name), text(value)));
        }
        pairs
    }

    fn owned(headers: &RequestHeaders) -> Vec<(String, String)> {
        headers.pairs().map(|(name, value)| (name.to_string(), value.to_string())).collect()
    }

    /// Header maps from a fixed generator: 0 to 40 headers, empty and long parts, NULs,
    /// non-ASCII, and invalid UTF-8 in names and values.
    fn generated_maps() -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
        const PARTS: &[&[u8]] = &[
            b"",
            b":path",
            b"x-forwarded-for",
            b"/pacticipants/Foo",
            "caf\u{e9} \u{65e5}".as_bytes(),
            b"\xff\xfe bad",
            b"ends in \xc3",
            b"a\0b",
            b"Mozilla/5.0 (X11; Linux x86_64)",
        ];
        let mut state = 18u64;
        let mut next = move || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize
        };
        (0..2000)
            .map(|_| {
                let headers = next() % 41;
                (0..headers)
                    .map(|_| {
                        let mut part = || PARTS[next() % PARTS.len()].repeat(1 + next() % 3);
                        (part(), part())
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_generated_map_reads_as_the_sdk_path_read_it() {
        for (case, pairs) in generated_maps().iter().enumerate() {
            let buffer = serialize_header_map(pairs.iter().map(|(name, value)| (name.as_slice(), value.as_slice())));
            let expected = sdk_path(&buffer);
            let parsed = parse_header_map(buffer).map(|headers| owned(&headers));
            assert_eq!(parsed.as_ref(), Some(&expected), "case {case}: {pairs:?}");
        }
    }

    #[test]
    fn every_generated_map_from_byte_pairs_reads_as_the_sdk_path_read_it() {
        for (case, pairs) in generated_maps().iter().enumerate() {
            let borrowed: Vec<(&[u8], &[u8])> =
                pairs.iter().map(|(name, value)| (name.as_slice(), value.as_slice())).collect();
            let expected = sdk_path(&serialize_header_map(borrowed.iter().copied()));
            assert_eq!(owned(&RequestHeaders::from_byte_pairs(&borrowed)), expected, "case {case}: {pairs:?}");
        }
    }

    #[test]
    fn a_character_split_across_two_parts_is_replaced_in_each_not_read_as_empty() {
        let pairs: [(&[u8], &[u8]); 2] = [(b"x-user-id", b"caf\xc3"), (b"", b"\xa9 tail")];
        let expected =
            [("x-user-id", "caf\u{fffd}"), ("", "\u{fffd} tail")].map(|(n, v)| (n.to_string(), v.to_string()));
        assert_eq!(owned(&RequestHeaders::from_byte_pairs(&pairs)), expected);
    }

    #[test]
    fn an_empty_buffer_is_no_headers_and_a_malformed_one_is_refused() {
        assert_eq!(parse_header_map(Vec::new()), Some(RequestHeaders::default()));
        let good = serialize_header_map([(&b":path"[..], &b"/"[..])].into_iter());
        for cut in 1..good.len() {
            assert_eq!(parse_header_map(good[..cut].to_vec()), None, "cut at {cut} of {}", good.len());
        }
        let mut huge_count = good.clone();
        huge_count[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse_header_map(huge_count), None, "a count the buffer cannot hold");
        let mut huge_length = good;
        huge_length[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse_header_map(huge_length), None, "a length past the end");
    }

    #[test]
    fn pushed_headers_follow_the_ones_that_arrived() {
        let buffer = serialize_header_map([(&b"x-a"[..], &b"1"[..])].into_iter());
        let mut headers = parse_header_map(buffer).unwrap_or_default();
        headers.push("x-forwarded-email", "ann@example.com");
        assert_eq!(
            owned(&headers),
            [("x-a".into(), "1".into()), ("x-forwarded-email".into(), "ann@example.com".into())]
        );
    }
}

/// Not a test: the instruction count of reading the bench request's header map, the SDK's
/// way and this module's, for `valgrind --tool=callgrind` (`HEADERS=sdk` or `HEADERS=buffer`, with `ITER=0` and
/// `ITER=1000`: the difference over 1000); the whole request path is budgeted by
/// `filter/core/examples/request_cost.rs` (tests/instructions/).
#[cfg(test)]
mod cost_probe {
    use super::*;

    #[test]
    #[ignore = "a cost probe for callgrind, not a check"]
    fn header_map_cost_probe() {
        let request: [(&[u8], &[u8]); 10] = [
            (b":method", b"GET"),
            (b":path", b"/pacticipants/Foo/versions/1.0.0"),
            (b":authority", b"127.0.0.1:10000"),
            (b":scheme", b"http"),
            (b"user-agent", b"pact_broker-client/1.75.1 (ruby 3.2.2; x86_64-linux)"),
            (b"x-forwarded-for", b"127.0.0.1"),
            (b"x-forwarded-proto", b"http"),
            (b"x-request-id", b"2f7c1c9e-5b0e-4a53-9a43-7b8f2d1e6a10"),
            (b"x-envoy-expected-rq-timeout-ms", b"15000"),
            (b"x-forwarded-email", b"alice@example.com"),
        ];
        let serialized = serialize_header_map(request.iter().copied());
        let sdk = std::env::var("HEADERS").is_ok_and(|way| way == "sdk");
        let reads: usize = std::env::var("ITER").ok().and_then(|value| value.parse().ok()).unwrap_or(1000);
        let mut found = 0;
        for _ in 0..reads {
            // The host's buffer is a fresh allocation either way.
            let buffer = std::hint::black_box(serialized.clone());
            found += if sdk {
                let pairs = super::tests::sdk_path(&buffer);
                pairs.iter().find(|(name, _)| name == "user-agent").map_or(0, |(_, value)| value.len())
            } else {
                parse_header_map(buffer).and_then(|headers| headers.get("user-agent").map(str::len)).unwrap_or(0)
            };
        }
        println!("{reads} reads, {found} bytes found");
    }
}
