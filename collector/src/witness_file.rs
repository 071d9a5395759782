//! `--witness-file`: every signed checkpoint is also appended, as one line (the native
//! [`CheckpointRecord`], as `tail` writes it), to a file that can live where the database's
//! operator cannot rewrite it: another disk, a mount shipped off the machine, an
//! append-only (`chattr +a`) file. `verify --witness <file>` then proves the trail was not
//! cut back or rewritten. The file is only ever appended to and synced after each write;
//! on start, the checkpoints already in it say where to continue, so a restart neither
//! repeats nor skips one.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use audit_event::chain::CheckpointRecord;
use tokio::task::JoinHandle;

use crate::store::{StoreError, TrailStore};
use crate::tail::checkpoint_record::checkpoint_of_line;

/// How often the store is asked for checkpoints signed since the last append.
pub const WITNESS_POLL: Duration = Duration::from_secs(2);

/// Most checkpoints read from the store at once.
const BATCH: usize = 1000;

/// The witness file could not be read or appended to.
#[derive(Debug, thiserror::Error)]
#[error("could not {action} the witness file {path}: {source}; check --witness-file / AUDIT_WITNESS_FILE")]
pub struct WitnessFileError {
    action: &'static str,
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// The file, and the number of the newest checkpoint in it.
pub struct WitnessFile {
    path: PathBuf,
    after: i64,
}

impl WitnessFile {
    /// Opens (creating when missing) the file and finds the newest checkpoint in it.
    pub fn open(path: &Path) -> Result<WitnessFile, WitnessFileError> {
        let error = |action, source| WitnessFileError { action, path: path.to_path_buf(), source };
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| error("create the folder of", source))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(|source| error("open", source))?;
        let mut after = 0;
        for line in std::io::BufReader::new(file).lines() {
            let line = line.map_err(|source| error("read", source))?;
            let newest = serde_json::from_str(&line).ok().and_then(|value| checkpoint_of_line(&value));
            if let Some(checkpoint) = newest {
                after = after.max(checkpoint.number);
            }
        }
        Ok(WitnessFile { path: path.to_path_buf(), after })
    }

    /// Appends every checkpoint signed since the last call; returns how many.
    pub async fn catch_up(&mut self, store: &dyn TrailStore) -> Result<usize, CatchUpError> {
        let mut appended = 0;
        loop {
            let checkpoints = store.checkpoints(self.after, BATCH).await?;
            let Some(newest) = checkpoints.last().map(|checkpoint| checkpoint.number) else {
                return Ok(appended);
            };
            let mut lines = String::new();
            for checkpoint in &checkpoints {
                let line = serde_json::to_string(&CheckpointRecord::of(checkpoint.clone()))
                    .map_err(|error| self.error("write", std::io::Error::other(error)))?;
                lines.push_str(&line);
                lines.push('\n');
            }
            self.append(lines.as_bytes())?;
            appended += checkpoints.len();
            self.after = newest;
        }
    }

    fn append(&self, bytes: &[u8]) -> Result<(), WitnessFileError> {
        let mut file =
            std::fs::OpenOptions::new().append(true).open(&self.path).map_err(|source| self.error("open", source))?;
        file.write_all(bytes).map_err(|source| self.error("append to", source))?;
        file.sync_all().map_err(|source| self.error("sync", source))
    }

    fn error(&self, action: &'static str, source: std::io::Error) -> WitnessFileError {
        WitnessFileError { action, path: self.path.clone(), source }
    }
}

/// Why a catch-up stopped.
#[derive(Debug, thiserror::Error)]
pub enum CatchUpError {
    /// Reading the checkpoints failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Appending failed.
    #[error(transparent)]
    File(#[from] WitnessFileError),
}

/// Appends new checkpoints every [`WITNESS_POLL`] until aborted; hands the file back
/// through [`WitnessTask::finish`] for a last catch-up after the store's final checkpoint.
pub struct WitnessTask(JoinHandle<()>, PathBuf);

impl WitnessTask {
    /// Starts following the store's checkpoints.
    pub fn spawn(store: Arc<dyn TrailStore>, mut file: WitnessFile) -> WitnessTask {
        let path = file.path.clone();
        WitnessTask(
            tokio::spawn(async move {
                loop {
                    match file.catch_up(store.as_ref()).await {
                        Ok(0) => {}
                        Ok(appended) => tracing::debug!(appended, "checkpoints appended to the witness file"),
                        Err(error) => tracing::warn!(cause = %error, "witness file: will retry"),
                    }
                    tokio::time::sleep(WITNESS_POLL).await;
                }
            }),
            path,
        )
    }

    /// Stops following, then appends what the store signed since (its shutdown checkpoint).
    pub async fn finish(self, store: &dyn TrailStore) {
        self.0.abort();
        let _ = self.0.await;
        let caught_up = match WitnessFile::open(&self.1) {
            Ok(mut file) => file.catch_up(store).await.map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        if let Err(cause) = caught_up {
            tracing::error!(%cause, "the last checkpoints could not be appended to the witness file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopening_finds_the_newest_checkpoint_and_skips_other_lines() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("w/witness.ndjson");
        assert_eq!(WitnessFile::open(&path).expect("created").after, 0);
        let record = |number: i64| {
            let mut record = serde_json::json!({"record": "audit-sidecar/checkpoint", "checkpoint": {
                "number": number, "lastSeq": 1, "lastHash": "", "anchorSeq": 0, "anchorHash": "",
                "issuedAtMs": 0, "prevCheckpointHash": "", "keyId": "", "signature": ""}});
            record["checkpoint"]["number"] = number.into();
            record.to_string()
        };
        std::fs::write(&path, format!("{}\nnot json\n{}\n{{\"uuid\":\"x\"}}\n", record(2), record(5))).expect("write");
        assert_eq!(WitnessFile::open(&path).expect("reopened").after, 5);
    }
}
