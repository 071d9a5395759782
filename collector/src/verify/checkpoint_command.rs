//! `audit-collector checkpoint`: asks a running collector to sign a checkpoint now
//! (`POST /audit/checkpoints`, an `admin` token), so an auditor can close the uncovered
//! tail and then verify every event as signed. Prints the checkpoint as a witness line
//! (the native [`audit_event::chain::CheckpointRecord`]), which can be kept as a witness.

use audit_event::chain::{Checkpoint, CheckpointRecord};
use clap::Args;

/// The flags of `audit-collector checkpoint`.
#[derive(Debug, Args)]
pub struct CheckpointArgs {
    /// The /audit URL of the collector (or of the service Envoy fronts), e.g.
    /// http://broker.example/audit.
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// A token with the `admin` scope (`audit-collector token create --scope admin`).
    #[arg(long, env = "AUDIT_ADMIN_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub token: String,
}

/// Why no checkpoint was signed.
#[derive(Debug, thiserror::Error)]
#[error("POST {url}: {reason}")]
pub struct CheckpointCommandError {
    url: String,
    reason: String,
}

/// Signs a checkpoint; returns the line to print (a checkpoint record, then a newline).
pub fn run_checkpoint(args: &CheckpointArgs) -> Result<String, CheckpointCommandError> {
    let url = format!("{}/checkpoints", args.url.trim().trim_end_matches('/'));
    let failed = |reason: String| CheckpointCommandError { url: url.clone(), reason };
    let mut response = ureq::post(&url)
        .header("Authorization", &format!("Bearer {}", args.token))
        .header("Accept", "application/json")
        .config()
        .http_status_as_error(false)
        .build()
        .send_empty()
        .map_err(|error| failed(error.to_string()))?;
    let status = response.status();
    let text = response.body_mut().read_to_string().map_err(|error| failed(error.to_string()))?;
    if !status.is_success() {
        return Err(failed(format!("{status}: {text}")));
    }
    let checkpoint: Checkpoint =
        serde_json::from_str(&text).map_err(|error| failed(format!("not a checkpoint: {error}")))?;
    let line = serde_json::to_string(&CheckpointRecord::of(checkpoint)).map_err(|error| failed(error.to_string()))?;
    Ok(format!("{line}\n"))
}
