//! Activity over time, the part both stores share: events per hour or per day (UTC), split
//! by outcome, for the viewer's chart (`GET /audit/activity`). [`WindowPlan`] says which part
//! of a window comes from the hourly rollup and which is counted from `events`, and
//! [`outcome_of`] turns the counts into the answer, so SQLite (`sqlite/activity.rs`) and
//! PostgreSQL (`postgres/activity.rs`) give the same answers; each writes its own SQL.

use std::collections::BTreeMap;

use super::query::EventFilters;

/// Milliseconds in an hour: the rollup's grain.
pub const HOUR_MS: i64 = 3_600_000;

/// Milliseconds in a minute: the grain of SQLite's edge rollup (`activity_minutely`), which
/// counts the partial hours at a window's edges.
pub const MINUTE_MS: i64 = 60_000;

/// The most buckets one answer holds; a wider request is refused, not cut short.
pub const MAX_BUCKETS: usize = 10_000;

/// The width of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketWidth {
    /// One UTC hour.
    Hour,
    /// One UTC day.
    Day,
}

impl BucketWidth {
    /// Hours per bucket.
    pub fn hours(self) -> i64 {
        match self {
            BucketWidth::Hour => 1,
            BucketWidth::Day => 24,
        }
    }
}

/// Counts of one bucket, by outcome (from the response status).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeCounts {
    /// Status 100 to 399.
    pub success: i64,
    /// Status 401: a failed or missing login.
    pub failed_login: i64,
    /// Status 403: authenticated, not allowed.
    pub forbidden: i64,
    /// Any other status of 400 or more, status 0 (no response) and no status.
    pub error: i64,
}

impl OutcomeCounts {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: OutcomeCounts) {
        self.success += other.success;
        self.failed_login += other.failed_login;
        self.forbidden += other.forbidden;
        self.error += other.error;
    }

    /// Every event of the bucket.
    pub fn total(&self) -> i64 {
        self.success + self.failed_login + self.forbidden + self.error
    }
}

/// One non-empty bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityBucket {
    /// The bucket's first millisecond (UTC).
    pub start_ms: i64,
    /// What happened in it.
    pub counts: OutcomeCounts,
}

/// What an activity query found.
#[derive(Debug, PartialEq, Eq)]
pub enum ActivityOutcome {
    /// The non-empty buckets, oldest first.
    Buckets(Vec<ActivityBucket>),
    /// More than [`MAX_BUCKETS`] buckets have events.
    TooManyBuckets,
}

/// Where the counts of a window come from: whole hours from the rollup, the rest counted
/// from `events`. The same for every store, so both give the same answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowPlan {
    /// Hours `[first, last)` summed from the rollup, when the window holds a whole one.
    pub rollup_hours: Option<(i64, i64)>,
    /// Millisecond ranges `[since, until)` counted from `events`.
    pub counted: Vec<(i64, i64)>,
}

impl WindowPlan {
    /// The plan for `filters`, the rollups also counting per `user_id` and per `user_email`
    /// (SQLite's `activity_user_hourly`, PostgreSQL's `activity_user_id_hourly` and
    /// `activity_user_email_hourly`): one of those filters is summed from them like the
    /// others; the user name, or both user filters at once, are counted.
    pub fn with_user_rollup(filters: &EventFilters) -> WindowPlan {
        let beyond_rollup = filters.user_name.is_some() || (filters.user_id.is_some() && filters.user_email.is_some());
        WindowPlan::split(filters, beyond_rollup)
    }

    /// Whole hours from the rollup and the edges counted, or (`count_all`) all counted.
    fn split(filters: &EventFilters, count_all: bool) -> WindowPlan {
        let since = filters.since_ms.unwrap_or(i64::MIN);
        let until = filters.until_ms.unwrap_or(i64::MAX);
        if count_all {
            let counted = if since < until { vec![(since, until)] } else { Vec::new() };
            return WindowPlan { rollup_hours: None, counted };
        }
        let UnitSplit { whole, rest } = whole_units(since, until, HOUR_MS);
        WindowPlan { rollup_hours: whole, counted: rest }
    }
}

/// A millisecond range `[since, until)` split at multiples of a unit ([`whole_units`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSplit {
    /// The whole units inside it, `[first, last)` in units, when it holds one.
    pub whole: Option<(i64, i64)>,
    /// The non-empty millisecond ranges left over: before and after the whole units, each
    /// shorter than a unit; or the whole range when it holds no whole unit (then shorter
    /// than two).
    pub rest: Vec<(i64, i64)>,
}

/// `[since, until)` (milliseconds) split at multiples of `unit_ms`.
pub fn whole_units(since: i64, until: i64, unit_ms: i64) -> UnitSplit {
    let first = since.saturating_add(unit_ms - 1).div_euclid(unit_ms);
    let last = until.div_euclid(unit_ms);
    let (whole, rest) = if first >= last {
        (None, vec![(since, until)])
    } else {
        (Some((first, last)), vec![(since, first.saturating_mul(unit_ms)), (last.saturating_mul(unit_ms), until)])
    };
    UnitSplit { whole, rest: rest.into_iter().filter(|(since, until)| since < until).collect() }
}

/// The answer from the per-bucket counts both stores gather: empty buckets dropped, refused
/// above [`MAX_BUCKETS`], oldest first.
pub fn outcome_of(mut buckets: BTreeMap<i64, OutcomeCounts>, width: BucketWidth) -> ActivityOutcome {
    buckets.retain(|_, counts| counts.total() > 0);
    if buckets.len() > MAX_BUCKETS {
        return ActivityOutcome::TooManyBuckets;
    }
    let bucket_ms = width.hours() * HOUR_MS;
    ActivityOutcome::Buckets(
        buckets
            .into_iter()
            .map(|(bucket, counts)| ActivityBucket { start_ms: bucket.saturating_mul(bucket_ms), counts })
            .collect(),
    )
}
