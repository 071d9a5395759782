//! The WAL checkpointer: a thread with its own connection that copies the WAL's pages into
//! the database file (SQLite's PASSIVE checkpoint, which never blocks the writer or the
//! readers), so the writer thread neither copies them nor waits for the database file's
//! fsync. SQLite's own automatic checkpoint runs inside the commit that crosses its
//! threshold, on the writer: a tenth of the writer's CPU per event and its longest stalls
//! (docs/performance.md). Commits stay exactly as durable: each is in the WAL, synced
//! (`synchronous=FULL`), before it is acknowledged; a checkpoint only moves committed pages.
//!
//! The writer's WAL hook ([`install`]) tells this thread each time another
//! [`CHECKPOINT_EVERY_PAGES`] pages have been committed. A checkpoint running beside the
//! writer cannot leave the WAL empty while commits keep coming (the WAL starts over only
//! when a commit finds every page of it copied), so the hook bounds it: at
//! [`WRITER_CHECKPOINT_TIMES`] that many pages the writer checkpoints itself, as SQLite
//! would, copying only what this thread has not yet copied, and the next commit starts the
//! WAL over.

use std::ffi::c_int;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::Connection;

use super::super::schema::WAL_AUTOCHECKPOINT_PAGES;
use crate::store::StoreError;

/// Pages committed between two checkpoints of this thread: SQLite's automatic checkpoint
/// interval of the write connection (`schema.rs`), so each page rewritten by many commits
/// is still copied once per that many pages.
const CHECKPOINT_EVERY_PAGES: c_int = WAL_AUTOCHECKPOINT_PAGES as c_int;

/// The writer checkpoints itself when the WAL holds this many times
/// [`CHECKPOINT_EVERY_PAGES`] (~160 MB of WAL at 4 KiB pages): the bound on the WAL's size,
/// whether or not this thread keeps up.
const WRITER_CHECKPOINT_TIMES: c_int = 4;

/// The checkpointer thread; it ends once the writer's connection (and with it the WAL
/// hook that wakes it) is gone.
pub struct Checkpointer {
    thread: JoinHandle<()>,
}

impl Checkpointer {
    /// Waits for the thread to end (after the write connection was dropped).
    pub fn join(self) -> Result<(), StoreError> {
        self.thread.join().map_err(|_| StoreError::WriterPanicked)
    }
}

/// Opens the checkpointer's connection to the database `writer` writes, starts its thread
/// and installs the WAL hook on `writer` that wakes it (replacing SQLite's automatic
/// checkpoint on that connection).
pub fn install(writer: &mut Connection) -> Result<Checkpointer, StoreError> {
    install_every(writer, CHECKPOINT_EVERY_PAGES)
}

/// [`install`], waking the thread every `every_pages` committed pages (the writer's own
/// checkpoint at four times that).
fn install_every(writer: &mut Connection, every_pages: c_int) -> Result<Checkpointer, StoreError> {
    let path = writer
        .path()
        .filter(|path| !path.is_empty())
        .ok_or_else(|| StoreError::Task("the write connection has no file to checkpoint".to_owned()))?;
    let path = Path::new(path);
    let open_error = |source| StoreError::Open { path: path.to_path_buf(), source };
    let conn = Connection::open(path).map_err(open_error)?;
    // A checkpoint syncs the WAL before copying and the database file after, as this
    // connection's `synchronous` says: FULL, as the writer's.
    conn.pragma_update(None, "synchronous", "FULL").map_err(open_error)?;
    // One pending wake-up is enough: a checkpoint copies everything committed before it.
    let (wake, woken) = sync_channel::<()>(1);
    // Held by whoever checkpoints: SQLite refuses a second checkpoint at once (busy) rather
    // than wait, and the writer's own must wait for the thread's to end, or the WAL could
    // grow past its bound while the thread copies.
    let round = Arc::new(Mutex::new(()));
    let thread_round = Arc::clone(&round);
    let thread = std::thread::Builder::new()
        .name("audit-wal-ckpt".to_owned())
        .spawn(move || checkpoint_loop(&conn, &woken, &thread_round))
        .map_err(|error| StoreError::Task(format!("could not start the checkpointer thread: {error}")))?;
    let mut woken_at: c_int = 0;
    writer.wal_hook(Some(move |wal: &mut Wal, pages: c_int| {
        on_commit(wal, pages, every_pages, &mut woken_at, &wake, &round);
        // The commit has happened whatever a checkpoint here did: never fail it.
        Ok(())
    }))?;
    Ok(Checkpointer { thread })
}

/// After each commit: `pages` is the WAL's length in pages; `woken_at` the length at the
/// last wake-up (the WAL starting over makes `pages` smaller).
fn on_commit(
    wal: &mut Wal,
    pages: c_int,
    every_pages: c_int,
    woken_at: &mut c_int,
    wake: &SyncSender<()>,
    round: &Mutex<()>,
) {
    if pages < *woken_at {
        *woken_at = 0;
    }
    if pages >= WRITER_CHECKPOINT_TIMES * every_pages {
        let _round = round.lock().unwrap_or_else(PoisonError::into_inner);
        // Busy only if another program checkpoints: the next commit tries again.
        if let Err(error) = wal.checkpoint_v2(CheckpointMode::PASSIVE) {
            tracing::debug!(cause = %error, pages, "the writer's own checkpoint did not run");
        }
    } else if pages - *woken_at >= every_pages {
        *woken_at = pages;
        // Full: a wake-up is already pending, which covers these pages too.
        let _ = wake.try_send(());
    }
}

fn checkpoint_loop(conn: &Connection, woken: &Receiver<()>, round: &Mutex<()>) {
    while woken.recv().is_ok() {
        let _round = round.lock().unwrap_or_else(PoisonError::into_inner);
        match conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
            Ok((wal_pages, copied)) => tracing::trace!(wal_pages, copied, "checkpoint"),
            // The writer's own checkpoint bounds the WAL meanwhile; say why this one failed.
            Err(error) => tracing::warn!(cause = %error, "a WAL checkpoint failed; the writer will checkpoint"),
        }
    }
    tracing::debug!("write connection closed; checkpointer stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::schema::open_for_writing;

    /// Bytes of one WAL frame: its header and a page (the schema's 4 KiB pages).
    const FRAME_BYTES: u64 = 24 + 4096;

    fn file_len(path: &Path) -> u64 {
        std::fs::metadata(path).map_or(0, |meta| meta.len())
    }

    #[test]
    fn the_thread_copies_the_wal_into_the_database_and_the_wal_stays_bounded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.db");
        let mut writer = open_for_writing(&path).expect("open");
        writer.execute_batch("CREATE TABLE scratch (blob BLOB NOT NULL)").expect("scratch table");
        let every_pages = 50;
        let checkpointer = install_every(&mut writer, every_pages).expect("checkpointer");
        let database_before = file_len(&path);
        let commit = |writer: &Connection| {
            // ~60 pages a commit: past the wake-up's threshold on the first one.
            writer.execute("INSERT INTO scratch (blob) VALUES (zeroblob(240000))", []).expect("insert");
        };
        commit(&writer);
        // The copy happens on the other thread: wait for it, a bounded number of times.
        let mut polls = 0;
        while file_len(&path) <= database_before && polls < 1000 {
            std::thread::sleep(std::time::Duration::from_millis(10));
            polls += 1;
        }
        assert!(
            file_len(&path) > database_before,
            "the checkpointer copied nothing into the database file ({database_before} bytes before and after)"
        );
        // Without the writer's own checkpoint the WAL would hold all 40 commits (~2,400 pages).
        for _ in 0..40 {
            commit(&writer);
        }
        let wal = dir.path().join("audit.db-wal");
        let bound = u64::try_from(WRITER_CHECKPOINT_TIMES * every_pages + 2 * 60).expect("pages") * FRAME_BYTES + 32;
        assert!(file_len(&wal) <= bound, "the WAL grew to {} bytes, over {bound}", file_len(&wal));
        let stored: i64 = writer.query_row("SELECT count(*) FROM scratch", [], |row| row.get(0)).expect("count");
        assert_eq!(stored, 41);
        drop(writer);
        checkpointer.join().expect("the checkpointer ends with the write connection");
    }
}
