//! The tail's position: the uuid of the last event it wrote to stdout (and the number of
//! the last signed checkpoint), kept in a small
//! JSON file written atomically (a temporary file in the same folder, synced, then
//! renamed over the old one), so a crash leaves either the old or the new position.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What the state file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TailState {
    /// The uuid of the last event written to stdout.
    pub last_uuid: String,
    /// The number of the last signed checkpoint written (0: none; absent in older files).
    #[serde(default)]
    pub last_checkpoint: i64,
}

/// Why the state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a tail state.
    #[error("state file {path} is not a tail state ({reason}); move it away to start over")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What serde said.
        reason: String,
    },
}

/// Reads the state, `None` when the file does not exist yet.
pub fn load(path: &Path) -> Result<Option<TailState>, StateError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StateError::Io { path: path.to_path_buf(), source }),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|error| StateError::Corrupt { path: path.to_path_buf(), reason: error.to_string() })
}

/// Replaces the state atomically.
pub fn save(path: &Path, state: &TailState) -> Result<(), StateError> {
    let io = |source| StateError::Io { path: path.to_path_buf(), source };
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let body = serde_json::to_vec(state).map_err(|error| io(std::io::Error::other(error)))?;
    let mut file = std::fs::File::create(&temporary).map_err(io)?;
    file.write_all(&body).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_state_loads_back_and_a_missing_file_is_no_state() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("tail.state");
        assert_eq!(load(&path).expect("missing is fine"), None);
        let state = TailState { last_uuid: "abc".to_owned(), last_checkpoint: 3 };
        save(&path, &state).expect("save");
        assert_eq!(load(&path).expect("load"), Some(state));
        std::fs::write(&path, "garbage").expect("write");
        assert!(matches!(load(&path), Err(StateError::Corrupt { .. })));
    }
}
