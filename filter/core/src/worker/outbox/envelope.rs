//! The batch body, `{"events":[e1,e2,...]}`, written from the bytes each event was
//! serialized to at capture (no re-parsing). The one place that knows the envelope.

use audit_event::SenderReport;

const PREFIX: &[u8] = b"{\"events\":[";
const SUFFIX: &[u8] = b"]}";

/// A batch body being written.
pub(super) struct Envelope {
    body: Vec<u8>,
    events: usize,
}

impl Envelope {
    /// An empty envelope with room for `events_bytes` of events.
    pub(super) fn with_capacity(events_bytes: usize) -> Envelope {
        let mut body = Vec::with_capacity(PREFIX.len() + events_bytes + SUFFIX.len());
        body.extend_from_slice(PREFIX);
        Envelope { body, events: 0 }
    }

    /// The body of a batch of one event.
    pub(super) fn of_one(json: &[u8]) -> Vec<u8> {
        let mut envelope = Envelope::with_capacity(json.len());
        envelope.push(json);
        envelope.finish()
    }

    pub(super) fn events(&self) -> usize {
        self.events
    }

    /// The size of the finished body if `json` were added.
    pub(super) fn size_with(&self, json: &[u8]) -> usize {
        self.body.len() + usize::from(self.events > 0) + json.len() + SUFFIX.len()
    }

    pub(super) fn push(&mut self, json: &[u8]) {
        if self.events > 0 {
            self.body.push(b',');
        }
        self.body.extend_from_slice(json);
        self.events += 1;
    }

    pub(super) fn finish(mut self) -> Vec<u8> {
        self.body.extend_from_slice(SUFFIX);
        self.body
    }
}

/// Adds the sender's report to a finished batch body: `{"events":[...],"sender":{...}}`.
/// Made at send time, so a retried batch reports the count of when it was retried.
pub fn add_sender_report(body: &mut Vec<u8>, report: &SenderReport) {
    if body.last() != Some(&b'}') {
        return;
    }
    let Ok(json) = serde_json::to_vec(report) else { return };
    body.pop();
    body.extend_from_slice(b",\"sender\":");
    body.extend_from_slice(&json);
    body.push(b'}');
}
