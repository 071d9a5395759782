//! `audit-collector tail`: follows a trail (this collector's, or PactFlow's own `/audit`)
//! and writes each event as one JSON line to stdout, for a SIEM shipper to read.
//!
//! It reads `GET /audit` page by page, following `_links.next`; at the end of the stream
//! it polls `from=<last uuid>` and drops that first, re-read event. After each page is
//! written and flushed, the uuid of its last event goes to the state file (atomically), so
//! a restarted tail continues after it. Delivery is at least once across a crash: an event
//! can be printed again only if the process dies between the flush and the state write;
//! `event.id` / `metadata.uid` (the uuid) lets the SIEM drop such a repeat.
//!
//! Layout: [`format`] (native, [`ocsf`], [`ecs`]), [`fields`] (what the mappings read from
//! an event, and what they leave for extension fields), [`state`] (the position file),
//! [`client`] (the HTTP calls and which answers are worth retrying).

pub mod checkpoint_record;
pub mod checkpoints;
pub mod client;
pub mod ecs;
pub mod fields;
pub mod format;
pub mod ocsf;
pub mod state;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use self::checkpoints::CheckpointFollower;
use self::client::{FetchError, TrailClient};
use self::format::OutputFormat;
use self::state::{StateError, TailState};

/// The arguments of `audit-collector tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// The service (or collector) whose /audit to follow, e.g. https://broker.example.
    #[arg(long, env = "AUDIT_TAIL_URL", value_name = "URL")]
    pub url: String,

    /// A bearer token with the `read` scope.
    #[arg(long, env = "AUDIT_TAIL_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub token: String,

    /// Start at this event (inclusive) when there is no state file yet; by default the
    /// oldest event kept.
    #[arg(long, value_name = "UUID")]
    pub from: Option<String>,

    /// Keep the position here and resume from it (written atomically after each page).
    #[arg(long, env = "AUDIT_TAIL_STATE_FILE", value_name = "PATH")]
    pub state_file: Option<PathBuf>,

    /// What to print per event.
    #[arg(long, value_enum, default_value_t = OutputFormat::Native)]
    pub format: OutputFormat,

    /// Seconds between polls once the end of the trail is reached.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub poll_interval_secs: u64,

    /// Stop at the end of the trail instead of polling (for scripts and tests).
    #[arg(long)]
    pub exit_at_end: bool,

    /// Stop after printing this many events.
    #[arg(long, value_name = "N")]
    pub max_events: Option<u64>,

    /// Print events only. By default every signed checkpoint is printed too, as a line of
    /// its own, so the SIEM keeps a witness that `verify --witness` can check the trail
    /// against.
    #[arg(long)]
    pub no_checkpoints: bool,
}

/// Why the tail stopped.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    /// The server refused in a way that retrying cannot fix.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The state file.
    #[error(transparent)]
    State(#[from] StateError),
    /// Writing to stdout failed (e.g. the shipper exited).
    #[error("could not write to stdout: {0}")]
    Output(#[from] std::io::Error),
    /// `--url` is unusable.
    #[error("--url `{0}` must be an http:// or https:// URL of the service, e.g. https://broker.example")]
    InvalidUrl(String),
}

/// Follows the trail until `--exit-at-end` / `--max-events` say stop, or a fatal error.
pub fn run(args: &TailArgs, out: &mut impl Write) -> Result<(), TailError> {
    let base = args.url.trim().trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(TailError::InvalidUrl(args.url.clone()));
    }
    let client = TrailClient::new(&args.token);
    let poll = Duration::from_secs(args.poll_interval_secs.max(1));
    let resumed = match &args.state_file {
        Some(path) => state::load(path)?,
        None => None,
    };
    let page_url = |from: Option<&str>| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(from) = from {
            query.append_pair("from", from);
        }
        query.append_pair("pageSize", "100");
        format!("{base}/audit?{}", query.finish())
    };
    let mut checkpoints =
        CheckpointFollower::new(resumed.as_ref().map_or(0, |state| state.last_checkpoint), !args.no_checkpoints);
    let mut last_uuid = resumed.map(|state| state.last_uuid);
    if let Some(uuid) = &last_uuid {
        tracing::info!(last_uuid = %uuid, "resuming after the last event written");
    }
    let mut url = match (&last_uuid, &args.from) {
        (Some(last), _) => page_url(Some(last)),
        (None, from) => page_url(from.as_deref()),
    };
    let mut drop_first = last_uuid.clone();
    let mut written: u64 = 0;
    loop {
        let page = client.fetch_page(&url, poll)?;
        let mut events: &[Value] = &page.events;
        if let (Some(first), Some(again)) = (events.first(), drop_first.take()) {
            if first.get("uuid").and_then(Value::as_str) == Some(again.as_str()) {
                events = &events[1..];
            }
        }
        if let Some(max) = args.max_events {
            let room = usize::try_from(max.saturating_sub(written)).unwrap_or(usize::MAX);
            events = &events[..events.len().min(room)];
        }
        // One write per page, then the position: a crash repeats at most this page.
        let mut lines = String::new();
        for event in events {
            lines.push_str(&args.format.render(event));
            lines.push('\n');
        }
        let checkpoint_lines = checkpoints.new_lines(&client, base, args.format, poll)?;
        lines.push_str(&checkpoint_lines);
        if !lines.is_empty() {
            out.write_all(lines.as_bytes())?;
            out.flush()?;
            written += u64::try_from(events.len()).unwrap_or(u64::MAX);
            if let Some(last) = events.last().and_then(|event| event.get("uuid")).and_then(Value::as_str) {
                last_uuid = Some(last.to_owned());
            }
            if let (Some(path), Some(uuid)) = (&args.state_file, &last_uuid) {
                state::save(path, &TailState { last_uuid: uuid.clone(), last_checkpoint: checkpoints.after })?;
            }
        }
        if args.max_events.is_some_and(|max| written >= max) {
            return Ok(());
        }
        match page.next {
            Some(next) => url = next,
            None => {
                if args.exit_at_end {
                    return Ok(());
                }
                std::thread::sleep(poll);
                url = page_url(last_uuid.as_deref().or(args.from.as_deref()));
                drop_first.clone_from(&last_uuid);
            }
        }
    }
}
