-- The PostgreSQL schema of the trail (version 1). The argument for why it keeps one order
-- with any number of collector replicas is in docs/postgres.md.

-- Every uuid the trail has taken, sealed or not: the one place ingest is idempotent, across
-- all replicas. Kept after its event is purged (so a retried old event is still a duplicate
-- and a purged cursor is "expired", not "unknown") until 30 days past the purge horizon.
CREATE TABLE trail_uuids (
    uuid TEXT PRIMARY KEY,
    timestamp_ms BIGINT NOT NULL
);
CREATE INDEX trail_uuids_by_timestamp ON trail_uuids (timestamp_ms);

-- Acknowledged events waiting for the sealer: committed (so never lost) but not yet in
-- the trail's order. `arrival` only picks which rows a sealing transaction takes first.
CREATE TABLE unsequenced (
    arrival BIGSERIAL PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    timestamp_ms BIGINT NOT NULL,
    type TEXT NOT NULL,
    db_user_id BIGINT,
    user_email TEXT,
    user_id TEXT,
    method TEXT NOT NULL,
    status INTEGER,
    ingested_at_ms BIGINT NOT NULL,
    body TEXT NOT NULL,
    canonical BYTEA NOT NULL
);

-- The sealed trail: what every reader reads. Only the sealer inserts, only retention
-- deletes, nothing updates.
CREATE TABLE events (
    seq BIGINT PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    timestamp_ms BIGINT NOT NULL,
    type TEXT NOT NULL,
    db_user_id BIGINT,
    user_email TEXT,
    user_id TEXT,
    method TEXT NOT NULL,
    status INTEGER,
    ingested_at_ms BIGINT NOT NULL,
    body TEXT NOT NULL,
    chain_prev BYTEA NOT NULL,
    chain_hash BYTEA NOT NULL
);
CREATE INDEX events_by_timestamp ON events (timestamp_ms);
CREATE INDEX events_by_type ON events (type, seq);
CREATE INDEX events_by_user_id ON events (user_id, seq);
CREATE INDEX events_by_user_email ON events (user_email, seq);
CREATE INDEX events_by_method ON events (method, seq);
CREATE INDEX events_by_status ON events (status, seq);

-- The head of the chain: the one row every sealing, purging and checkpointing transaction
-- locks first, so they run one at a time whichever replica runs them.
CREATE TABLE chain_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash BYTEA NOT NULL
);
INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, '\x0000000000000000000000000000000000000000000000000000000000000000');

-- The last event retention purged, when it purged any.
CREATE TABLE chain_anchor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    purged_at_ms BIGINT NOT NULL
);

-- Who seals: the replica whose epoch this is, until `expires_at` (database time). Taking
-- the lease increments the epoch; every sealing transaction renews it WHERE the epoch is
-- still its own, so a replica that lost the lease cannot seal.
CREATE TABLE sealer_lease (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch BIGINT NOT NULL,
    holder TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
INSERT INTO sealer_lease (id, epoch, holder, expires_at) VALUES (1, 0, '', '-infinity');

CREATE TABLE checkpoints (
    number BIGINT PRIMARY KEY,
    last_seq BIGINT NOT NULL,
    last_hash BYTEA NOT NULL,
    anchor_seq BIGINT NOT NULL,
    anchor_hash BYTEA NOT NULL,
    issued_at_ms BIGINT NOT NULL,
    prev_checkpoint_hash BYTEA NOT NULL,
    key_id TEXT NOT NULL,
    signature BYTEA NOT NULL
);

CREATE TABLE purge_count (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    events BIGINT NOT NULL
);
INSERT INTO purge_count (id, events) VALUES (1, 0);

CREATE TABLE api_tokens (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    scope TEXT NOT NULL CHECK (scope IN ('read', 'ingest', 'admin')),
    digest BYTEA NOT NULL UNIQUE,
    created_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT
);
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at_ms IS NULL;

-- The trail has no update path: an UPDATE of an event is refused by the database itself.
CREATE FUNCTION audit_events_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are immutable: the trail has no update path';
END
$$;
CREATE TRIGGER events_are_immutable BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION audit_events_are_immutable();
