-- The SQLite trail's schema, all of it (`schema.rs` runs it on a new database and sets
-- `PRAGMA user_version` to its version). Version 13 was the shape the thirteen migrations of
-- the builds before it arrived at; version 15 adds `user_name` and its index, which
-- `prepare_schema` adds to a version 13 database (`UPGRADE_13_TO_15`), and turns version
-- 14's generated `user_name` into that plain column (`UPGRADE_14_TO_13`, then that step).
-- Version 16 trades the two `(user, timestamp)` indexes for the per-user rollup
-- `activity_user_hourly` (`UPGRADE_15_TO_16`). Version 17 adds the minute rollup
-- `activity_minutely` for the edges of a chart's window (`UPGRADE_16_TO_17`). A change is a
-- new version: this file, `SCHEMA_VERSION` in
-- `schema.rs`, and how a database of the version before gets there (a step in
-- `prepare_schema`, or a refusal that names the last build that upgrades it).

-- The trail. `seq` is the rowid, assigned at commit: the order of GET /audit and its
-- cursor. `body` is the event's canonical JSON, served as stored. `user_id` is what
-- PactFlow's `userUuid` filter matches (the event's `user_id`, else its `db_user_id` as
-- text), filled by ingest from the event it has already parsed; `verify` checks it against
-- the body. `chain_prev` / `chain_hash`: the event's link in the hash chain (32-byte
-- SHA-256), written with the event.
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
    body TEXT NOT NULL,
    chain_prev BLOB,
    chain_hash BLOB,
    user_id TEXT,
    -- Version 15: what GET /audit's `user_name` filter matches, the event's `user_name`,
    -- filled by ingest from the event it has already parsed, like `user_id` (version 14
    -- generated it with json_extract over every body at insert: +10% instructions per
    -- event); `verify` checks it against the body.
    user_name TEXT
) STRICT;

-- One `(column, seq)` index per equality filter of GET /audit, so a filtered page is a
-- range search that comes out in seq order (no sort, no full scan).
CREATE INDEX events_by_type ON events (type, seq);
CREATE INDEX events_by_user_id ON events (user_id, seq);
CREATE INDEX events_by_user_email ON events (user_email, seq);
CREATE INDEX events_by_method ON events (method, seq);
CREATE INDEX events_by_status ON events (status, seq);
CREATE INDEX events_by_user_name ON events (user_name, seq);
-- A numbered page (`pageNumber`) finds where it starts by walking this small index instead
-- of the table, whose leaves hold the bodies; it carries the timestamp so `since`/`until`
-- are tested on it too. Appended at its right edge on ingest, like the table.
CREATE INDEX events_by_seq_time ON events (seq, timestamp_ms);
-- Retention's range, a `since` page's first seq, and the partial minutes at the edges of an
-- activity window, counted from the index alone (it carries what the chart counts by). A
-- user's partial hours take their seq range from it (its entries carry the rowid) and then
-- that user's events from `(user_id, seq)` or `(user_email, seq)`.
CREATE INDEX events_by_timestamp ON events (timestamp_ms, status, method, type);

-- The tamper-evident trail (docs/verifying.md).
-- `chain_anchor`: one row, the last event retention purged and its hash, where the kept
-- chain starts. `checkpoints`: the signed checkpoints, never updated or deleted;
-- `next_public_key` is set on a key handover (`rotate-key`): the raw public key that signs
-- every checkpoint after it.
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
    signature BLOB NOT NULL,
    next_public_key BLOB
) STRICT;

-- `purge_guard` and the triggers: events cannot be updated at all, and can be deleted only
-- while `purge_guard.purging` is 1. The retention purge sets it and clears it again inside
-- its own transaction, so no other connection ever sees it set. A flag in a table rather
-- than TEMP triggers, because a TEMP trigger exists only on the connection that made it: it
-- would not stop the `sqlite3` shell or any other program that opens the file. This guards
-- against mistakes; against someone who edits the file on purpose (and can drop triggers)
-- the defence is the signed checkpoints, which `audit-collector verify` checks.
CREATE TABLE purge_guard (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    purging INTEGER NOT NULL CHECK (purging IN (0, 1))
) STRICT;
INSERT INTO purge_guard (id, purging) VALUES (1, 0);
CREATE TRIGGER events_content_is_immutable
BEFORE UPDATE OF seq, uuid, timestamp_ms, type, db_user_id, user_email, method, status, ingested_at_ms, body ON events
BEGIN SELECT RAISE(ABORT, 'audit events are immutable: the trail has no update path'); END;
CREATE TRIGGER events_user_id_is_immutable BEFORE UPDATE OF user_id ON events
BEGIN SELECT RAISE(ABORT, 'audit events are immutable: the trail has no update path'); END;
CREATE TRIGGER events_user_name_is_immutable BEFORE UPDATE OF user_name ON events
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

-- The uuids retention purged, filled by a trigger in the purge's own transaction, so an
-- expired `from` is a 410 and not an unknown 404. It keeps purged uuids for 30 days of
-- event time after the newest purged one. The same trigger counts purged events in
-- `purge_count` (the `audit_events_purged_total` metric, kept across restarts).
CREATE TABLE expired_events (
    uuid TEXT PRIMARY KEY,
    timestamp_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX expired_events_by_timestamp ON expired_events (timestamp_ms);
CREATE TABLE purge_count (events INTEGER NOT NULL) STRICT;
INSERT INTO purge_count (events) VALUES (0);
CREATE TRIGGER events_remember_purged AFTER DELETE ON events BEGIN
    INSERT OR IGNORE INTO expired_events (uuid, timestamp_ms) VALUES (old.uuid, old.timestamp_ms);
    DELETE FROM expired_events WHERE timestamp_ms < old.timestamp_ms - 30 * 86400000;
    UPDATE purge_count SET events = events + 1;
END;

-- The hourly activity rollup behind GET /audit/activity (`activity_rollup.rs`): the writer
-- adds each batch's events (`count_stored`), this trigger takes purged events back out.
-- A missing status is -1.
CREATE TABLE activity_hourly (
    hour INTEGER NOT NULL,
    type TEXT NOT NULL,
    method TEXT NOT NULL,
    status INTEGER NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (hour, type, method, status)
) STRICT, WITHOUT ROWID;
CREATE TRIGGER events_uncount_activity AFTER DELETE ON events BEGIN
    UPDATE activity_hourly SET events = events - 1
    WHERE hour = old.timestamp_ms / 3600000 AND type = old.type AND method = old.method
      AND status = IFNULL(old.status, -1);
END;

-- Version 17: the same counts per minute, for the partial hours at the edges of a window
-- (`since`/`until` off the hour): each is at most 59 minutes of these rows, and only its
-- partial minute is counted from `events_by_timestamp` (counting a partial hour there cost
-- up to ~72,000 index entries at 10M events, grouped per row: 16.7 ms). Written like
-- `activity_hourly` (`count_stored`: a batch's events fall in a minute or two, so a few
-- upserts a batch), taken back out by its purge trigger; the purge deletes the rows it
-- brings to zero.
CREATE TABLE activity_minutely (
    minute INTEGER NOT NULL,
    type TEXT NOT NULL,
    method TEXT NOT NULL,
    status INTEGER NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (minute, type, method, status)
) STRICT, WITHOUT ROWID;
CREATE TRIGGER events_uncount_minute_activity AFTER DELETE ON events BEGIN
    UPDATE activity_minutely SET events = events - 1
    WHERE minute = old.timestamp_ms / 60000 AND type = old.type AND method = old.method
      AND status = IFNULL(old.status, -1);
END;

-- Version 16: the hourly counts per user, behind a chart of one user (`userUuid` or
-- `user_email`): `kind` 1 counts by `user_id`, 2 by `user_email`; events without that
-- column are not counted under it. The key starts with the hour, so a batch's upserts land
-- on the few pages of the newest hours instead of one page per user in each of two indexes
-- (the `(user, timestamp, status, method)` indexes of version 15, which cost every insert
-- two b-tree inserts: docs/viewer.md, "What the indexes cost"); a user's chart seeks one
-- key prefix per hour of its window. Written like `activity_hourly` (`count_stored`), and
-- taken back out by the same purge.
CREATE TABLE activity_user_hourly (
    hour INTEGER NOT NULL,
    kind INTEGER NOT NULL CHECK (kind IN (1, 2)),
    user TEXT NOT NULL,
    type TEXT NOT NULL,
    method TEXT NOT NULL,
    status INTEGER NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (hour, kind, user, type, method, status)
) STRICT, WITHOUT ROWID;
CREATE TRIGGER events_uncount_user_activity AFTER DELETE ON events BEGIN
    UPDATE activity_user_hourly SET events = events - 1
    WHERE hour = old.timestamp_ms / 3600000 AND kind = 1 AND user = old.user_id AND type = old.type
      AND method = old.method AND status = IFNULL(old.status, -1);
    UPDATE activity_user_hourly SET events = events - 1
    WHERE hour = old.timestamp_ms / 3600000 AND kind = 2 AND user = old.user_email AND type = old.type
      AND method = old.method AND status = IFNULL(old.status, -1);
END;

-- Completeness by the receiver (`senders.rs`): per filter worker (sender), what it last
-- reported, how many of its events are stored, and which of its numbers are accounted for:
-- all up to `contiguous`, and the ranges in `sender_pending` above it (usually none).
-- `claimed_upto`: the oldest heartbeat count of the sender not yet accounted for (0 for
-- none; `completeness::ledger::Claim`), so a lost last batch is a gap while it runs.
-- `final_count`: the final count a sender shutting down reported (NULL: it has not said it
-- is stopping); `completeness::accounting` records it as finished once that is accounted
-- for. Holes
-- and silent senders become events of the trail; these tables only keep the accounting
-- that decides when.
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
    contiguous_at_ms INTEGER NOT NULL,
    claimed_upto INTEGER NOT NULL DEFAULT 0,
    claimed_at_ms INTEGER NOT NULL DEFAULT 0,
    claimed_seen_at_ms INTEGER NOT NULL DEFAULT 0,
    final_count INTEGER
) STRICT, WITHOUT ROWID;
CREATE TABLE sender_pending (
    sender TEXT NOT NULL REFERENCES senders (id),
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    first_at_ms INTEGER NOT NULL,
    last_at_ms INTEGER NOT NULL,
    seen_at_ms INTEGER NOT NULL,
    PRIMARY KEY (sender, first_seq)
) STRICT, WITHOUT ROWID;

-- Bearer tokens made by `audit-collector token create`, kept only as SHA-256 digests;
-- revoked tokens stay listed with their revocation time.
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    scope TEXT NOT NULL CHECK (scope IN ('read', 'ingest', 'admin')),
    digest BLOB NOT NULL UNIQUE,
    created_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER
) STRICT;
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at_ms IS NULL;
