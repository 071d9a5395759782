//! What the collector's answer to one ingest call means for the batch that was sent.
//!
//! The line that matters is between "try again" and "this batch will never be accepted".
//! Most 4xx answers say nothing about the batch: a wrong ingest token (401, 403), a wrong
//! `collector.path` (404, 405) or a proxy in between that wants something else are
//! configuration problems that an operator fixes, after which the same batch goes through.
//! Dropping audit events because of a typo in a deployment would be the wrong trade, so
//! those are retried with backoff (and logged as errors). Only the answers that judge the
//! body itself (400 malformed, 413 too large, 422 invalid) reject the batch; the outbox then
//! narrows down which events the collector refuses, and drops only those (counted).

/// How the filter treats an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 2xx: the batch is committed.
    Acknowledged,
    /// The collector is unreachable, slow, busy or failed (no answer, 5xx, 408, 429, or
    /// anything not 2xx/4xx): keep the batch and retry after a backoff.
    Transient,
    /// A 4xx that is about the deployment, not the batch (401, 403, 404, ...): keep the
    /// batch and retry after a backoff, and tell the operator loudly.
    Misconfigured,
    /// 400, 413 or 422: the collector will never accept this body as it is.
    Rejected,
}

impl Answer {
    /// The meaning of `status`; `None` is a call reset before any answer.
    pub fn of_status(status: Option<u16>) -> Answer {
        match status {
            Some(200..=299) => Answer::Acknowledged,
            Some(400 | 413 | 422) => Answer::Rejected,
            Some(408 | 429) => Answer::Transient,
            Some(400..=499) => Answer::Misconfigured,
            _ => Answer::Transient,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_answers_that_judge_the_body_reject_a_batch() {
        let cases = [
            (Some(200), Answer::Acknowledged),
            (Some(204), Answer::Acknowledged),
            (Some(400), Answer::Rejected),
            (Some(413), Answer::Rejected),
            (Some(422), Answer::Rejected),
            (Some(401), Answer::Misconfigured),
            (Some(403), Answer::Misconfigured),
            (Some(404), Answer::Misconfigured),
            (Some(405), Answer::Misconfigured),
            (Some(408), Answer::Transient),
            (Some(429), Answer::Transient),
            (Some(500), Answer::Transient),
            (Some(503), Answer::Transient),
            (Some(504), Answer::Transient),
            (Some(302), Answer::Transient),
            (None, Answer::Transient),
        ];
        for (status, expected) in cases {
            assert_eq!(Answer::of_status(status), expected, "status {status:?}");
        }
    }
}
