//! Whether the trail is being sealed, as any replica sees it: some replica holds the sealer
//! lease and renewed it within its lifetime, and the oldest acknowledged event still in
//! `unsequenced` has waited less than a bound. Either failing means acknowledged events are
//! not becoming readable: the replica's `/healthz` answers 503 with the reason, its log
//! says why, and `/metrics` shows both figures (`audit_sealer_lease_live`,
//! `audit_unsealed_oldest_seconds`) whatever the verdict.

use std::time::Duration;

use deadpool_postgres::GenericClient;

use super::super::StoreError;

/// How long the oldest acknowledged event may wait for its seal before the replicas report
/// unhealthy. Normally it waits one sealing round (tens of milliseconds); a sealer that died
/// is replaced within the lease (3 s). Thirty seconds is a sealer that cannot keep up.
pub const BACKLOG_BOUND: Duration = Duration::from_secs(30);

/// What the database says about sealing, now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealerHealth {
    /// A replica holds the lease and its last renewal has not expired.
    pub lease_live: bool,
    /// How long the oldest unsealed event has waited, by the clocks of the replica that
    /// took it and of this one (0 when none waits).
    pub oldest_unsealed_ms: i64,
}

impl SealerHealth {
    /// Reads the lease and the head of the queue; `now_ms` is this replica's clock.
    pub async fn read(client: &impl GenericClient, now_ms: i64) -> Result<SealerHealth, StoreError> {
        let row = client
            .query_one(
                "SELECT (SELECT expires_at > now() FROM sealer_lease WHERE id = 1),
                        (SELECT ingested_at_ms FROM unsequenced ORDER BY arrival LIMIT 1)",
                &[],
            )
            .await?;
        let lease_live: Option<bool> = row.try_get(0)?;
        let oldest: Option<i64> = row.try_get(1)?;
        Ok(SealerHealth {
            lease_live: lease_live.unwrap_or(false),
            oldest_unsealed_ms: oldest.map_or(0, |ingested_at_ms| now_ms.saturating_sub(ingested_at_ms).max(0)),
        })
    }

    /// Why the trail is not being sealed, when it is not (`bound`: [`BACKLOG_BOUND`]).
    pub fn problem(&self, bound: Duration) -> Option<String> {
        let bound_ms = i64::try_from(bound.as_millis()).unwrap_or(i64::MAX);
        if !self.lease_live {
            Some(
                "no live sealer holds the lease: acknowledged events are not becoming readable; \
                 check that a collector replica is running on this database"
                    .to_owned(),
            )
        } else if self.oldest_unsealed_ms > bound_ms {
            Some(format!(
                "the oldest acknowledged event has waited {:.1} s for its seal, more than the {} s bound: \
                 sealing is not keeping up with ingest",
                self.oldest_unsealed_ms as f64 / 1000.0,
                bound.as_secs_f64()
            ))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_lease_and_an_old_backlog_are_each_a_problem_that_says_why() {
        let bound = Duration::from_secs(30);
        let healthy = SealerHealth { lease_live: true, oldest_unsealed_ms: 30_000 };
        assert_eq!(healthy.problem(bound), None);
        let dead = SealerHealth { lease_live: false, oldest_unsealed_ms: 0 }.problem(bound).unwrap_or_default();
        assert!(dead.starts_with("no live sealer holds the lease"), "{dead}");
        let behind = SealerHealth { lease_live: true, oldest_unsealed_ms: 30_001 }.problem(bound).unwrap_or_default();
        assert!(behind.contains("waited 30.0 s") && behind.contains("30 s bound"), "{behind}");
    }
}
