//! A proxy made up by a test: records every call delivery makes, answers with what the
//! test set up (dispatch tokens 1, 2, 3, ... or a failure; the request's method; the
//! answer's body; whether a local reply can be sent).

use log::Level;

use super::host::{CollectorCall, DeliveryHost, Snapshot};

/// One call as the collector would receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentCall {
    pub token: u32,
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout_ms: u128,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct FakeHost {
    pub sent: Vec<SentCall>,
    /// When set, every dispatch fails with this status.
    pub dispatch_error: Option<String>,
    pub answer_body: String,
    pub method: Option<String>,
    /// When set, local replies fail with this status.
    pub local_reply_error: Option<String>,
    pub local_replies: Vec<LocalReply>,
    pub logs: Vec<(Level, String)>,
    pub published: Vec<Snapshot>,
    pub random_ids_taken: u8,
    /// How often delivery said the worker is done shutting down.
    pub finished_shutdowns: u32,
}

impl FakeHost {
    /// The token of the last call sent.
    pub fn last_token(&self) -> u32 {
        self.sent.last().map_or(0, |call| call.token)
    }

    /// The log lines at `level` that contain `text`.
    pub fn logged(&self, level: Level, text: &str) -> usize {
        self.logs.iter().filter(|(at, line)| *at == level && line.contains(text)).count()
    }

    pub fn last_published(&self) -> Snapshot {
        self.published.last().copied().unwrap_or_default()
    }
}

impl DeliveryHost for FakeHost {
    fn dispatch(&mut self, call: CollectorCall<'_>) -> Result<u32, String> {
        if let Some(status) = &self.dispatch_error {
            return Err(status.clone());
        }
        let token = self.last_token() + 1;
        self.sent.push(SentCall {
            token,
            cluster: call.cluster.to_string(),
            headers: call.headers.iter().map(|(name, value)| ((*name).to_string(), (*value).to_string())).collect(),
            body: call.body.to_vec(),
            timeout_ms: call.timeout.as_millis(),
        });
        Ok(token)
    }

    fn answer_body(&mut self) -> String {
        self.answer_body.clone()
    }

    fn request_method(&mut self) -> Option<String> {
        self.method.clone()
    }

    fn send_local_reply(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) -> Result<(), String> {
        if let Some(error) = &self.local_reply_error {
            return Err(error.clone());
        }
        self.local_replies.push(LocalReply {
            status,
            headers: headers.iter().map(|(name, value)| ((*name).to_string(), (*value).to_string())).collect(),
            body: body.to_vec(),
        });
        Ok(())
    }

    fn log(&mut self, level: Level, message: &str) {
        self.logs.push((level, message.to_string()));
    }

    fn publish(&mut self, snapshot: Snapshot) {
        self.published.push(snapshot);
    }

    fn random_event_id(&mut self) -> [u8; 16] {
        self.random_ids_taken += 1;
        [self.random_ids_taken; 16]
    }

    fn random_u64(&mut self) -> u64 {
        0
    }

    fn finish_shutdown(&mut self) -> Result<(), String> {
        self.finished_shutdowns += 1;
        Ok(())
    }
}
