-- Version 2 of the PostgreSQL schema: completeness by the receiver, as on SQLite
-- (migrations 7 and 10 there), and the key handover of checkpoints (SQLite's 8).

-- Per filter worker (sender): what it last reported, how many of its events are stored,
-- and which of its numbers are accounted for: all up to `contiguous`, the ranges in
-- `sender_pending` above it, and the oldest heartbeat count still outstanding
-- (`claimed_upto`, 0 for none). Changed only under the sender's advisory lock
-- (`store::postgres::senders`), so batches on different replicas and the check account
-- one after the other.
CREATE TABLE senders (
    id TEXT PRIMARY KEY,
    first_heard_ms BIGINT NOT NULL,
    last_heard_ms BIGINT NOT NULL,
    reported_at_ms BIGINT NOT NULL,
    captured BIGINT NOT NULL,
    heartbeat_ms BIGINT NOT NULL,
    delivered BIGINT NOT NULL,
    stopped_at_ms BIGINT,
    contiguous BIGINT NOT NULL,
    contiguous_at_ms BIGINT NOT NULL,
    claimed_upto BIGINT NOT NULL DEFAULT 0,
    claimed_at_ms BIGINT NOT NULL DEFAULT 0,
    claimed_seen_at_ms BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE sender_pending (
    sender TEXT NOT NULL REFERENCES senders (id),
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    first_at_ms BIGINT NOT NULL,
    last_at_ms BIGINT NOT NULL,
    seen_at_ms BIGINT NOT NULL,
    PRIMARY KEY (sender, first_seq)
);

-- Key rotation: the handover checkpoint, signed by the old key, names the raw public key
-- that signs every checkpoint after it.
ALTER TABLE checkpoints ADD COLUMN next_public_key BYTEA;
