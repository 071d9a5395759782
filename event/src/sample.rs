//! Realistic audit events, as the filter sends them for Pact Broker traffic (feature
//! `sample`): an identified user, a typed route with params, a request id, a token
//! fingerprint, a response; about 800 bytes of JSON each, varied so SQLite and the page
//! serializer see real-looking rows. One definition for every measurement: `make bench`'s
//! load and trails (`bench/tools`) and the collector's instruction budget
//! (`collector/examples/ingest_cost.rs`).

use std::collections::BTreeMap;

use crate::event_uuid::encode_event_uuid;
use crate::timestamp::format_rfc3339_millis;
use crate::{AuditEvent, RequestPayload, ResponseSummary};

/// The uuid of event `index` of run `run_id`: unique per (run, index), valid base64url, and
/// as scattered as the filter's random uuids (a sequential id would make the collector's
/// uuid index an append, cheaper than anything it sees in production).
pub fn uuid(run_id: u32, index: u64) -> String {
    let key = (u64::from(run_id) << 40) ^ index;
    let mut bytes = [0u8; 16];
    // splitmix64 is a bijection, so distinct keys (index < 2^40) give distinct first halves.
    bytes[..8].copy_from_slice(&splitmix64(key).to_be_bytes());
    bytes[8..].copy_from_slice(&splitmix64(key ^ 0x5EED_A0D1_7000_0000).to_be_bytes());
    encode_event_uuid(bytes)
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Event number `index` of run `run_id`, captured at `timestamp_ms`.
pub fn realistic(run_id: u32, index: u64, timestamp_ms: i64) -> AuditEvent {
    let service = index % 40;
    let version = format!("1.{}.{}", index % 13, index % 997);
    let user = index % 50;
    let (event_type, method, path, mut params) = match index % 4 {
        0 => (
            "PactBroker::Api::Resources::Tag",
            "PUT",
            format!("/pacticipants/service-{service}/versions/{version}/tags/main"),
            params(&[("tag_name", "main"), ("resource_name", "pacticipant_version_tag")]),
        ),
        1 => (
            "PactBroker::Api::Resources::Pact",
            "PUT",
            format!("/pacts/provider/service-{}/consumer/service-{service}/version/{version}", (service + 1) % 40),
            params(&[("resource_name", "pact")]),
        ),
        2 => (
            "PactBroker::Api::Resources::Version",
            "GET",
            format!("/pacticipants/service-{service}/versions/{version}"),
            params(&[("resource_name", "pacticipant_version")]),
        ),
        _ => (
            "PactBroker::Api::Resources::Pacticipant",
            "GET",
            format!("/pacticipants/service-{service}"),
            params(&[("resource_name", "pacticipant")]),
        ),
    };
    params.insert("pacticipant_name".to_owned(), format!("service-{service}"));
    if index % 4 != 3 {
        params.insert("pacticipant_version_number".to_owned(), version);
    }
    let status = if index.is_multiple_of(97) {
        401
    } else if method == "PUT" {
        201
    } else {
        200
    };
    AuditEvent {
        uuid: uuid(run_id, index),
        timestamp: format_rfc3339_millis(timestamp_ms.saturating_mul(1_000_000)),
        event_type: event_type.to_owned(),
        db_user_id: Some(1000 + user as i64),
        user_email: Some(format!("user{user}@example.com")),
        payload: RequestPayload {
            path,
            query_string: if index.is_multiple_of(5) { "latest=true&token=***".to_owned() } else { String::new() },
            method: method.to_owned(),
            user_agent: Some("pact_broker-client/1.75.1 (ruby 3.2.2; x86_64-linux) Faraday v2.9".to_owned()),
            referer: None,
            params,
            client_ip: Some(format!("10.20.{}.{}", user / 10, user + 2)),
            request_id: Some(format!("{:08x}-6c38-4935-bfa1-{:012x}", index as u32, index.wrapping_mul(2654435761))),
            host: Some("pact-broker.internal.example.com".to_owned()),
        },
        user_id: Some((1000 + user).to_string()),
        user_name: Some(format!("user{user}")),
        identity_source: Some("header:x-forwarded-email".to_owned()),
        token_fingerprint: Some(format!("hmac-sha256:{}", &uuid(user as u32, 7)[..22])),
        response: Some(ResponseSummary::new(status, 1.0 + (index % 1000) as f64 / 137.0)),
        gap: None,
        sender: None,
        untrusted_identity: Vec::new(),
        truncated_fields: Vec::new(),
        alerts: Vec::new(),
    }
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_events_are_valid_and_their_uuids_distinct() {
        let events: Vec<_> = (0..2000).map(|index| realistic(3, index, 1_700_000_000_000)).collect();
        for event in &events {
            assert_eq!(event.validate(), Ok(()), "{}", event.uuid);
        }
        let uuids: std::collections::BTreeSet<_> = events.iter().map(|event| &event.uuid).collect();
        assert_eq!(uuids.len(), events.len());
    }
}
