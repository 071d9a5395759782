-- The schema of a database the thirteen migrations of commit 49c9d93 made (version 13), as
-- SQLite kept it (`sqlite_master`, in creation order), with its two one-row tables: the
-- fixture of `schema.rs`'s test that such a database opens and has the shape of a new one.

CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        uuid TEXT NOT NULL UNIQUE,
        timestamp_ms INTEGER NOT NULL,
        type TEXT NOT NULL,
        db_user_id INTEGER,
        user_email TEXT,
        method TEXT NOT NULL,
        status INTEGER,
        ingested_at_ms INTEGER NOT NULL,
        body TEXT NOT NULL
    , chain_prev BLOB, chain_hash BLOB, user_id TEXT) STRICT;
CREATE TABLE chain_anchor (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL,
        hash BLOB NOT NULL,
        purged_at_ms INTEGER NOT NULL
    ) STRICT;
CREATE TABLE checkpoints (
        number INTEGER PRIMARY KEY,
        last_seq INTEGER NOT NULL,
        last_hash BLOB NOT NULL,
        anchor_seq INTEGER NOT NULL,
        anchor_hash BLOB NOT NULL,
        issued_at_ms INTEGER NOT NULL,
        prev_checkpoint_hash BLOB NOT NULL,
        key_id TEXT NOT NULL,
        signature BLOB NOT NULL
    , next_public_key BLOB) STRICT;
CREATE TABLE purge_guard (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        purging INTEGER NOT NULL CHECK (purging IN (0, 1))
    ) STRICT;
CREATE TABLE expired_events (
        uuid TEXT PRIMARY KEY,
        timestamp_ms INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
CREATE TABLE purge_count (events INTEGER NOT NULL) STRICT;
CREATE TABLE activity_hourly (
        hour INTEGER NOT NULL,
        type TEXT NOT NULL,
        method TEXT NOT NULL,
        status INTEGER NOT NULL,
        events INTEGER NOT NULL,
        PRIMARY KEY (hour, type, method, status)
    ) STRICT, WITHOUT ROWID;
CREATE TABLE senders (
        id TEXT PRIMARY KEY,
        first_heard_ms INTEGER NOT NULL,
        last_heard_ms INTEGER NOT NULL,
        reported_at_ms INTEGER NOT NULL,
        captured INTEGER NOT NULL,
        heartbeat_ms INTEGER NOT NULL,
        delivered INTEGER NOT NULL,
        stopped_at_ms INTEGER,
        contiguous INTEGER NOT NULL,
        contiguous_at_ms INTEGER NOT NULL
    , claimed_upto INTEGER NOT NULL DEFAULT 0, claimed_at_ms INTEGER NOT NULL DEFAULT 0, claimed_seen_at_ms INTEGER NOT NULL DEFAULT 0, final_count INTEGER) STRICT, WITHOUT ROWID;
CREATE TABLE sender_pending (
        sender TEXT NOT NULL REFERENCES senders (id),
        first_seq INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        first_at_ms INTEGER NOT NULL,
        last_at_ms INTEGER NOT NULL,
        seen_at_ms INTEGER NOT NULL,
        PRIMARY KEY (sender, first_seq)
    ) STRICT, WITHOUT ROWID;
CREATE TABLE "api_tokens" (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        scope TEXT NOT NULL CHECK (scope IN ('read', 'ingest', 'admin')),
        digest BLOB NOT NULL UNIQUE,
        created_at_ms INTEGER NOT NULL,
        revoked_at_ms INTEGER
    ) STRICT;
CREATE INDEX events_by_type ON events (type, seq);
CREATE INDEX events_by_user_email ON events (user_email, seq);
CREATE INDEX events_by_method ON events (method, seq);
CREATE INDEX events_by_status ON events (status, seq);
CREATE INDEX expired_events_by_timestamp ON expired_events (timestamp_ms);
CREATE INDEX events_by_user_id ON events (user_id, seq);
CREATE INDEX events_by_seq_time ON events (seq, timestamp_ms);
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at_ms IS NULL;
CREATE INDEX events_by_timestamp ON events (timestamp_ms, status, method, type);
CREATE INDEX events_by_user_id_time ON events (user_id, timestamp_ms, status, method);
CREATE INDEX events_by_user_email_time ON events (user_email, timestamp_ms, status, method);
CREATE TRIGGER events_content_is_immutable
    BEFORE UPDATE OF seq, uuid, timestamp_ms, type, db_user_id, user_email, method, status, ingested_at_ms, body ON events
    BEGIN SELECT RAISE(ABORT, 'audit events are immutable: the trail has no update path'); END;
CREATE TRIGGER events_chain_is_written_once
    BEFORE UPDATE OF chain_prev, chain_hash ON events WHEN OLD.chain_hash IS NOT NULL
    BEGIN SELECT RAISE(ABORT, 'an event''s chain link is written once and never changed'); END;
CREATE TRIGGER events_are_deleted_only_by_retention
    BEFORE DELETE ON events WHEN (SELECT purging FROM purge_guard WHERE id = 1) IS NOT 1
    BEGIN SELECT RAISE(ABORT, 'audit events are deleted only by the retention purge'); END;
CREATE TRIGGER checkpoints_are_immutable BEFORE UPDATE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'checkpoints are immutable'); END;
CREATE TRIGGER checkpoints_are_never_deleted BEFORE DELETE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'checkpoints are never deleted'); END;
CREATE TRIGGER anchor_moves_only_in_a_purge_insert BEFORE INSERT ON chain_anchor
    WHEN (SELECT purging FROM purge_guard WHERE id = 1) IS NOT 1
    BEGIN SELECT RAISE(ABORT, 'the retention anchor is written only by the retention purge'); END;
CREATE TRIGGER anchor_moves_only_in_a_purge_update BEFORE UPDATE ON chain_anchor
    WHEN (SELECT purging FROM purge_guard WHERE id = 1) IS NOT 1
    BEGIN SELECT RAISE(ABORT, 'the retention anchor is written only by the retention purge'); END;
CREATE TRIGGER anchor_is_never_deleted BEFORE DELETE ON chain_anchor
    BEGIN SELECT RAISE(ABORT, 'the retention anchor is never deleted'); END;
CREATE TRIGGER events_remember_purged AFTER DELETE ON events BEGIN
        INSERT OR IGNORE INTO expired_events (uuid, timestamp_ms) VALUES (old.uuid, old.timestamp_ms);
        DELETE FROM expired_events WHERE timestamp_ms < old.timestamp_ms - 30 * 86400000;
        UPDATE purge_count SET events = events + 1;
    END;
CREATE TRIGGER events_user_id_is_immutable BEFORE UPDATE OF user_id ON events
    BEGIN SELECT RAISE(ABORT, 'audit events are immutable: the trail has no update path'); END;
CREATE TRIGGER events_uncount_activity AFTER DELETE ON events BEGIN
        UPDATE activity_hourly SET events = events - 1
        WHERE hour = old.timestamp_ms / 3600000 AND type = old.type AND method = old.method
          AND status = IFNULL(old.status, -1);
    END;
INSERT INTO purge_guard (id, purging) VALUES (1, 0);
INSERT INTO purge_count (events) VALUES (0);
