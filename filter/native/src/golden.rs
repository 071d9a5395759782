//! The core's golden cases through this host's view of Envoy: each of the 3000 generated
//! requests is presented as the native hooks present a request (header slices, the peer and
//! status as attributes, the module's own times) and must give the event the core's digests
//! pin, byte for byte. Verified `jwt_authn` claims, which this ABI cannot read from the
//! dynamic metadata, reach the view as the headers `claim_to_headers` writes (named in
//! `identity.jwt.claimHeaders`) when every claim is text; the cases with a number or boolean
//! claim are left out: how Envoy renders those into a header is not the fake's to guess
//! (docs/not-done.md).

use audit_filter_core::config::FilterConfig;
use audit_filter_core::request::capture::capture_event;
use audit_filter_core::request::capture_golden::golden_mismatches;
use audit_filter_core::request::host::{FakeRequest, RequestView};
use audit_filter_core::request::metadata::ClaimValue;

use crate::request_view::NativeRequest;

/// The headers `jwt_authn`'s `claim_to_headers` would write for `claims`, and the
/// configuration naming them (`identity.jwt.claimHeaders`); None unless every claim is text:
/// how Envoy renders a number or boolean claim into a header is Envoy's, not something this
/// fake can know (those cases are left out).
fn claim_headers(
    claims: &[(String, ClaimValue)],
    config: &FilterConfig,
) -> Option<(Vec<(String, String)>, FilterConfig)> {
    let mut config = config.clone();
    let mut headers = Vec::new();
    for (claim, value) in claims {
        let ClaimValue::Text(text) = value else { return None };
        let header = format!("x-jwt-{claim}");
        config.identity.jwt.claim_headers.insert(claim.clone(), header.clone());
        headers.push((header, text.clone()));
    }
    Some((headers, config))
}

#[test]
fn every_golden_case_gives_the_cores_event_through_the_native_view() {
    let mut left_out: Vec<usize> = Vec::new();
    let (mut case, mut through_claim_headers) = (0usize, 0usize);
    let mismatches = golden_mismatches(&mut |request: &FakeRequest, config, key, random| {
        // Verified claims reach the native view as the headers `claim_to_headers` writes.
        let mut claimed = None;
        if request.property(&["metadata"]).is_some() {
            let claims = request.verified_jwt_claims(&config.identity.jwt).unwrap_or_default();
            claimed = claim_headers(&claims, config);
            if claimed.is_none() {
                left_out.push(case);
            } else {
                through_claim_headers += 1;
            }
        }
        case += 1;
        let mut headers: Vec<(&[u8], &[u8])> =
            request.headers.iter().map(|(name, value)| (name.as_bytes(), value.as_bytes())).collect();
        let config = match &claimed {
            Some((claim_headers, claimed_config)) => {
                headers.extend(claim_headers.iter().map(|(name, value)| (name.as_bytes(), value.as_bytes())));
                claimed_config
            }
            None => config,
        };
        let peer = request.property(&["source", "address"]);
        let view = NativeRequest {
            headers,
            stripped: &[],
            peer: peer.as_deref(),
            status: request.property_i64(&["response", "code"]).and_then(|code| u64::try_from(code).ok()),
            code_details: &|| request.property(&["response", "code_details"]),
            // Times aside: a case without `request.time` falls back to the host's clock,
            // which is the fake's fixed one in the core and the real one here; the module
            // gives the fake's, so the events are compared on everything else.
            request_time_ns: request.property_i64(&["request", "time"]).or(Some(request.now_unix_nanos)),
            duration_ns: request.property_i64(&["request", "duration"]),
        };
        capture_event(&view, config, key, random)
    });
    assert_eq!(case, 3000, "every golden case ran");
    let unexplained: Vec<&(usize, String)> = mismatches.iter().filter(|(case, _)| !left_out.contains(case)).collect();
    assert!(
        unexplained.is_empty(),
        "{} golden cases give another event through the native view; the first: {:?}",
        unexplained.len(),
        unexplained.first()
    );
    let compared = case - left_out.len();
    assert!(compared > 2000, "only {compared} cases were compared");
    assert!(through_claim_headers > 200, "only {through_claim_headers} cases had their claims as headers");
    eprintln!(
        "{compared} golden cases give the same event through the native view ({through_claim_headers} with their \
         jwt claims as claim_to_headers writes them); of the {} with number or boolean claims, {} differ",
        left_out.len(),
        mismatches.len()
    );
}
