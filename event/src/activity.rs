//! The body of `GET /audit/activity`: events per hour or per day (UTC) split by outcome,
//! for the viewer's activity chart. Only buckets with events are listed, oldest first.

use serde::{Deserialize, Serialize};

/// The path of the activity aggregate.
pub const ACTIVITY_PATH: &str = "/audit/activity";

/// The body of `GET /audit/activity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityPage {
    /// `hour` or `day`.
    pub bucket: String,
    /// The buckets that have events, oldest first.
    pub buckets: Vec<ActivityCount>,
}

/// The events of one bucket, by outcome (from the response status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityCount {
    /// The bucket's first instant, RFC 3339 in UTC.
    pub start: String,
    /// Every event of the bucket.
    pub total: i64,
    /// Status 100 to 399.
    pub success: i64,
    /// Status 401.
    pub failed_login: i64,
    /// Status 403.
    pub forbidden: i64,
    /// Any other status of 400 or more, or no response.
    pub error: i64,
}
