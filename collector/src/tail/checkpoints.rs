//! The tail as a witness: besides the events, it follows `GET /audit/checkpoints` and
//! writes each new signed checkpoint as a line of its own ([`super::checkpoint_record`]),
//! so the SIEM keeps the signatures too and `verify --witness` can later prove the trail
//! was not cut short or rewritten. A checkpoint line can come just before the last events
//! it covers (it is read after the page it follows). A trail that serves no checkpoints
//! (PactFlow's own `/audit`: 404) is followed for its events alone.

use audit_event::chain::CheckpointPage;

use super::checkpoint_record::render;
use super::client::{FetchError, TrailClient};
use super::format::OutputFormat;

/// Which checkpoints have been written.
pub struct CheckpointFollower {
    /// The number of the newest checkpoint written (0: none yet).
    pub after: i64,
    /// False when the trail serves no checkpoints, or `--no-checkpoints` was given.
    enabled: bool,
}

impl CheckpointFollower {
    /// A follower that writes checkpoints numbered above `after`.
    pub fn new(after: i64, enabled: bool) -> CheckpointFollower {
        CheckpointFollower { after, enabled }
    }

    /// The lines of every checkpoint signed since the last call (empty when none).
    pub fn new_lines(
        &mut self,
        client: &TrailClient,
        base: &str,
        format: OutputFormat,
        pause: std::time::Duration,
    ) -> Result<String, FetchError> {
        let mut lines = String::new();
        if !self.enabled {
            return Ok(lines);
        }
        let mut url = Some(format!("{base}/audit/checkpoints?after={}", self.after));
        while let Some(next) = url.take() {
            let page: CheckpointPage = match client.fetch_json(&next, pause) {
                Ok(page) => page,
                Err(FetchError::Rejected { status: 404, .. }) => {
                    tracing::info!("this trail serves no signed checkpoints; following its events only");
                    self.enabled = false;
                    return Ok(lines);
                }
                Err(error) => return Err(error),
            };
            for checkpoint in &page.checkpoints {
                if checkpoint.number > self.after {
                    lines.push_str(&render(format, checkpoint));
                    lines.push('\n');
                    self.after = checkpoint.number;
                }
            }
            url = page.links.next.map(|link| link.href);
        }
        Ok(lines)
    }
}
