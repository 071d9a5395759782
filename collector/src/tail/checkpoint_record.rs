//! A signed checkpoint as a line of the tail's stream, so the SIEM that keeps the events
//! also keeps the signatures, out of reach of whoever runs the collector's database; and
//! the way back: [`checkpoint_of_line`] finds the checkpoint in a line of any format, which
//! is what `verify --witness` reads.
//!
//! - native: the [`CheckpointRecord`] itself, `{"record":"audit-sidecar/checkpoint","checkpoint":{…}}`.
//! - OCSF: an API Activity (6003) "Create" by the collector, `api.operation`
//!   `audit-sidecar/checkpoint`, `metadata.uid` `checkpoint-<number>`; the record verbatim
//!   under `unmapped`, since OCSF has no class for a signed log checkpoint.
//! - ECS: `event.kind` `event`, `event.category` `configuration`, `event.type` `creation`,
//!   `event.action` `audit-checkpoint-signed`; the record verbatim under the custom
//!   `audit_sidecar` field set (the namespace the event mapping uses too).
//!
//! The record is carried whole in every format: the signature covers its exact values, so a
//! mapping that renamed or dropped any of them could not be verified.

use audit_event::chain::{Checkpoint, CheckpointRecord, CHECKPOINT_RECORD};
use audit_event::timestamp::format_rfc3339_millis;
use serde_json::{json, Value};

use super::ecs::{ECS_VERSION, NAMESPACE as ECS_FIELD_SET};
use super::format::OutputFormat;
use super::ocsf::OCSF_VERSION;

/// The OCSF API Activity class, and its `Create` activity.
const API_ACTIVITY: u64 = 6003;
const CREATE: u64 = 1;

/// The line (without newline) for `checkpoint` in `format`.
pub fn render(format: OutputFormat, checkpoint: &Checkpoint) -> String {
    let record = CheckpointRecord::of(checkpoint.clone());
    let record_value = serde_json::to_value(&record).unwrap_or(Value::Null);
    let message = format!(
        "audit-sidecar signed checkpoint {}: the trail up to seq {} (hash {}), key {}",
        checkpoint.number, checkpoint.last_seq, checkpoint.last_hash, checkpoint.key_id
    );
    let line = match format {
        OutputFormat::Native => record_value,
        OutputFormat::Ocsf => json!({
            "class_uid": API_ACTIVITY,
            "class_name": "API Activity",
            "category_uid": 6,
            "category_name": "Application Activity",
            "activity_id": CREATE,
            "activity_name": "Create",
            "type_uid": API_ACTIVITY * 100 + CREATE,
            "type_name": "API Activity: Create",
            "severity_id": 1,
            "severity": "Informational",
            "time": checkpoint.issued_at_ms,
            "status_id": 1,
            "status": "Success",
            "message": message,
            "actor": {"app_name": "audit-collector"},
            "src_endpoint": {"svc_name": "audit-collector"},
            "api": {"operation": CHECKPOINT_RECORD, "service": {"name": "audit-sidecar"}},
            "metadata": {
                "uid": format!("checkpoint-{}", checkpoint.number),
                "version": OCSF_VERSION,
                "product": {"name": "audit-sidecar", "vendor_name": "audit-sidecar", "version": env!("CARGO_PKG_VERSION")},
                "log_name": CHECKPOINT_RECORD,
            },
            "unmapped": record_value,
        }),
        OutputFormat::Ecs => json!({
            "@timestamp": format_rfc3339_millis(checkpoint.issued_at_ms.saturating_mul(1_000_000)),
            "message": message,
            "event": {
                "id": format!("checkpoint-{}", checkpoint.number),
                "kind": "event",
                "category": ["configuration"],
                "type": ["creation"],
                "action": "audit-checkpoint-signed",
                "outcome": "success",
                "dataset": "audit_sidecar.checkpoint",
                "sequence": checkpoint.number,
            },
            "ecs": {"version": ECS_VERSION},
            "observer": {"product": "audit-sidecar", "type": "audit"},
            ECS_FIELD_SET: record_value,
        }),
    };
    line.to_string()
}

/// The checkpoint a line carries, in whichever format tail wrote it; `None` for an event
/// or anything else.
pub fn checkpoint_of_line(line: &Value) -> Option<Checkpoint> {
    [Some(line), line.get("unmapped"), line.get(ECS_FIELD_SET)].into_iter().flatten().find_map(|candidate| {
        if candidate.get("record").and_then(Value::as_str) != Some(CHECKPOINT_RECORD) {
            return None;
        }
        serde_json::from_value::<CheckpointRecord>(candidate.clone()).ok().map(|record| record.checkpoint)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            number: 3,
            last_seq: 30,
            last_hash: "ab".repeat(32),
            anchor_seq: 0,
            anchor_hash: "00".repeat(32),
            issued_at_ms: 1_575_929_724_864,
            prev_checkpoint_hash: "cd".repeat(32),
            key_id: "7fda9c9c4cac27f9".into(),
            signature: "ef".repeat(64),
            next_public_key: Some("12".repeat(32)),
        }
    }

    #[test]
    fn every_format_carries_the_whole_checkpoint_and_reads_back() {
        for format in [OutputFormat::Native, OutputFormat::Ocsf, OutputFormat::Ecs] {
            let line: Value = serde_json::from_str(&render(format, &checkpoint())).expect("one JSON line");
            assert_eq!(checkpoint_of_line(&line), Some(checkpoint()), "{format:?}: {line}");
        }
    }

    #[test]
    fn the_mappings_say_what_the_line_is() {
        let ocsf: Value = serde_json::from_str(&render(OutputFormat::Ocsf, &checkpoint())).expect("JSON");
        assert_eq!((ocsf["class_uid"].as_u64(), ocsf["type_uid"].as_u64()), (Some(6003), Some(600_301)));
        assert_eq!(ocsf["metadata"]["uid"], "checkpoint-3");
        assert_eq!(ocsf["time"], 1_575_929_724_864_i64);
        let ecs: Value = serde_json::from_str(&render(OutputFormat::Ecs, &checkpoint())).expect("JSON");
        assert_eq!(ecs["event"]["action"], "audit-checkpoint-signed");
        assert_eq!(ecs["@timestamp"], "2019-12-09T22:15:24.864+00:00");
    }

    #[test]
    fn an_event_or_a_look_alike_is_not_a_checkpoint() {
        assert_eq!(checkpoint_of_line(&json!({"uuid": "x", "type": "T"})), None);
        assert_eq!(checkpoint_of_line(&json!({"record": "something-else", "checkpoint": {}})), None);
        assert_eq!(checkpoint_of_line(&json!({"record": CHECKPOINT_RECORD, "checkpoint": {"number": 1}})), None);
    }
}
