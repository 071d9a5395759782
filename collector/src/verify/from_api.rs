//! Verifying through the HTTP API, as an auditor without access to the database does:
//! `GET /audit/checkpoints` (all pages) first, then every `GET /audit` page from the
//! oldest event, recomputing each event's link from the event as served (without its
//! `chain` key). Checkpoints are read first so that every event they cover is already
//! stored when the pages are walked.

use audit_event::chain::{ChainLink, CheckpointPage, CHAIN_KEY};
use audit_event::page::MAX_PAGE_SIZE;
use audit_event::AuditPage;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::problem::TrailProblem;
use super::report::TrailReport;
use super::walk::{check_checkpoints, ChainWalker, TrailEvent};
use super::VerifyError;
use crate::chain::canonical::canonical_json;
use crate::chain::link::digest_from_hex;
use crate::chain::signing::TrailVerifier;

/// Verifies the trail served at `audit_url` (e.g. `http://broker.example/audit`).
pub fn verify_api(audit_url: &str, token: &str, key: &TrailVerifier) -> Result<TrailReport, VerifyError> {
    let base = audit_url.trim_end_matches('/');
    let mut checkpoints = Vec::new();
    let mut next = Some(format!("{base}/checkpoints"));
    while let Some(url) = next {
        let page: CheckpointPage = get_json(&url, token)?;
        checkpoints.extend(page.checkpoints);
        next = page.links.next.map(|link| link.href);
    }
    check_checkpoints(&checkpoints, key)?;
    let mut walker = ChainWalker::new(&checkpoints);
    let mut next = Some(format!("{base}?pageSize={MAX_PAGE_SIZE}"));
    while let Some(url) = next {
        let page: AuditPage<Value> = get_json(&url, token)?;
        for event in page.events {
            walker.next(&served_event(event)?)?;
        }
        next = page.links.next.map(|link| link.href);
    }
    Ok(walker.finish()?)
}

/// An event as served: its `chain` key taken out, the rest canonicalized.
fn served_event(mut event: Value) -> Result<TrailEvent, TrailProblem> {
    let uuid = event.get("uuid").and_then(Value::as_str).unwrap_or("?").to_owned();
    let link = event
        .as_object_mut()
        .and_then(|object| object.remove(CHAIN_KEY))
        .and_then(|link| serde_json::from_value::<ChainLink>(link).ok())
        .ok_or_else(|| TrailProblem::Unreadable {
            seq: 0,
            detail: format!("event {uuid} has no `{CHAIN_KEY}` link"),
        })?;
    Ok(TrailEvent {
        seq: link.seq,
        prev_hash: digest_from_hex(&link.prev_hash),
        hash: digest_from_hex(&link.hash),
        canonical: canonical_json(&event),
    })
}

fn get_json<T: DeserializeOwned>(url: &str, token: &str) -> Result<T, VerifyError> {
    let failed = |error: String| VerifyError::Read(format!("GET {url}: {error}"));
    let mut response = ureq::get(url)
        .header("Authorization", &format!("Bearer {token}"))
        .header("Accept", "application/json")
        .call()
        .map_err(|error| failed(error.to_string()))?;
    let text = response.body_mut().read_to_string().map_err(|error| failed(error.to_string()))?;
    serde_json::from_str(&text).map_err(|error| failed(format!("not the expected JSON: {error}")))
}
