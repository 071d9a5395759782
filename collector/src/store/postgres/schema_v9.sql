-- Version 9 of the PostgreSQL schema: each event is written once, at ingest, and the sealer
-- writes only a narrow row. Up to version 8 ingest wrote each event into `unsequenced` and the
-- one sealer moved it into `events` with its nine b-trees, in ONE backend: that backend was
-- the trail's ceiling (docs/postgres.md, "Where the sealer's time goes"). Now:
-- - ingest (any replica, any number of connections at once) inserts the whole row into
--   `events`, keyed by a `position` taken from the sequence `event_positions`, in the statement
--   that first inserts its uuids (so its transaction has an id before it takes a position);
-- - the sealer reads the sequence's last value H, takes a transaction id after it, and waits
--   until no older transaction runs (sealer.rs, `high_water`): no position at or below H can
--   appear later. It numbers the committed positions above the head's, up to H, in position
--   order, with contiguous `seq`, and writes one narrow row each into `event_seals` (seq,
--   position, chain link), under the lease and the `chain_head` lock;
-- - readers read `events` joined to `event_seals`: an event without its seal row is not in the
--   trail yet. Seq order is position order, so every position range they walk is a seq range.
-- The argument is docs/postgres.md's "How the order is decided".

-- Nothing may seal, purge or ingest while the trail changes shape (the ALTERs below take this
-- lock anyway; taking it first keeps the order of locks plain).
LOCK TABLE events, unsequenced, chain_head IN ACCESS EXCLUSIVE MODE;

-- Counting moves from the insert into `events` (ingest, now) to the insert of seal rows.
DROP TRIGGER events_count_activity ON events;
DROP FUNCTION audit_activity_count();

-- The positions ingest takes. An existing trail keeps its numbers: position = seq. CACHE 1 (the
-- default) on purpose: a session caching values could use one below the last value the sealer
-- read as final.
CREATE SEQUENCE event_positions AS BIGINT CACHE 1;
ALTER TABLE events RENAME COLUMN seq TO position;

-- The order and the chain: one narrow row per sealed event. Only the sealer (and `migrate`)
-- inserts, only retention deletes, nothing updates.
CREATE TABLE event_seals (
    seq BIGINT PRIMARY KEY,
    position BIGINT NOT NULL UNIQUE,
    chain_prev BYTEA NOT NULL,
    chain_hash BYTEA NOT NULL
);
INSERT INTO event_seals (seq, position, chain_prev, chain_hash)
    SELECT position, position, chain_prev, chain_hash FROM events ORDER BY position;
ALTER TABLE events DROP COLUMN chain_prev, DROP COLUMN chain_hash;
CREATE TRIGGER event_seals_are_immutable BEFORE UPDATE ON event_seals
    FOR EACH ROW EXECUTE FUNCTION audit_events_are_immutable();

-- The head also says up to which position everything is sealed (or a hole: a position whose
-- transaction rolled back). Every event above it is acknowledged but not in the trail yet.
ALTER TABLE chain_head ADD COLUMN position BIGINT NOT NULL DEFAULT 0;
UPDATE chain_head SET position = seq;
SELECT setval('event_positions', greatest(seq, 1), seq > 0) FROM chain_head;

-- The events that were waiting take the next positions, in the order they arrived.
INSERT INTO events (position, uuid, timestamp_ms, type, db_user_id, user_email, user_id, method, status,
                    ingested_at_ms, body, user_name)
    SELECT nextval('event_positions'), uuid, timestamp_ms, type, db_user_id, user_email, user_id, method, status,
           ingested_at_ms, body, user_name
    FROM (SELECT * FROM unsequenced ORDER BY arrival) AS waiting;
DROP TABLE unsequenced;

-- The three rollups count an event when it is sealed: one grouped upsert each per sealing
-- transaction, reading the sealed rows' columns from `events`. All of them run under the
-- `chain_head` lock, so the upserts never race. Rows are upserted in key order.
CREATE FUNCTION audit_activity_count_sealed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO activity_hourly AS rollup (hour, type, method, status, events)
        SELECT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000, type, method,
               coalesce(status, -1), count(*)
        FROM sealed JOIN events USING (position) GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (hour, type, method, status) DO UPDATE SET events = rollup.events + excluded.events;
    INSERT INTO activity_user_id_hourly AS rollup (hour, user_id, type, method, status, events)
        SELECT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000, user_id, type, method,
               coalesce(status, -1), count(*)
        FROM sealed JOIN events USING (position) WHERE user_id IS NOT NULL
        GROUP BY 1, 2, 3, 4, 5 ORDER BY 2, 1, 3, 4, 5
        ON CONFLICT (user_id, hour, type, method, status) DO UPDATE SET events = rollup.events + excluded.events;
    INSERT INTO activity_user_email_hourly AS rollup (hour, user_email, type, method, status, events)
        SELECT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000, user_email, type, method,
               coalesce(status, -1), count(*)
        FROM sealed JOIN events USING (position) WHERE user_email IS NOT NULL
        GROUP BY 1, 2, 3, 4, 5 ORDER BY 2, 1, 3, 4, 5
        ON CONFLICT (user_email, hour, type, method, status) DO UPDATE SET events = rollup.events + excluded.events;
    RETURN NULL;
END
$$;
CREATE TRIGGER event_seals_count_activity AFTER INSERT ON event_seals
    REFERENCING NEW TABLE AS sealed FOR EACH STATEMENT EXECUTE FUNCTION audit_activity_count_sealed();

-- Retention takes its events back out of the rollups, and a row it brings to zero goes: a
-- rollup holds only hours that still have events (up to version 8 the zero rows stayed).
CREATE OR REPLACE FUNCTION audit_activity_uncount() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE activity_hourly AS rollup SET events = rollup.events - gone.events
    FROM (SELECT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000 AS hour, type, method,
                 coalesce(status, -1) AS status, count(*) AS events
          FROM purged GROUP BY 1, 2, 3, 4) AS gone
    WHERE rollup.hour = gone.hour AND rollup.type = gone.type AND rollup.method = gone.method
      AND rollup.status = gone.status;
    DELETE FROM activity_hourly AS rollup
    USING (SELECT DISTINCT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000 AS hour, type,
                           method, coalesce(status, -1) AS status
           FROM purged) AS gone
    WHERE rollup.hour = gone.hour AND rollup.type = gone.type AND rollup.method = gone.method
      AND rollup.status = gone.status AND rollup.events = 0;
    UPDATE activity_user_id_hourly AS rollup SET events = rollup.events - gone.events
    FROM (SELECT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000 AS hour, user_id, type,
                 method, coalesce(status, -1) AS status, count(*) AS events
          FROM purged WHERE user_id IS NOT NULL GROUP BY 1, 2, 3, 4, 5) AS gone
    WHERE rollup.hour = gone.hour AND rollup.user_id = gone.user_id AND rollup.type = gone.type
      AND rollup.method = gone.method AND rollup.status = gone.status;
    DELETE FROM activity_user_id_hourly AS rollup
    USING (SELECT DISTINCT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000 AS hour,
                           user_id, type, method, coalesce(status, -1) AS status
           FROM purged WHERE user_id IS NOT NULL) AS gone
    WHERE rollup.hour = gone.hour AND rollup.user_id = gone.user_id AND rollup.type = gone.type
      AND rollup.method = gone.method AND rollup.status = gone.status AND rollup.events = 0;
    UPDATE activity_user_email_hourly AS rollup SET events = rollup.events - gone.events
    FROM (SELECT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000 AS hour, user_email,
                 type, method, coalesce(status, -1) AS status, count(*) AS events
          FROM purged WHERE user_email IS NOT NULL GROUP BY 1, 2, 3, 4, 5) AS gone
    WHERE rollup.hour = gone.hour AND rollup.user_email = gone.user_email AND rollup.type = gone.type
      AND rollup.method = gone.method AND rollup.status = gone.status;
    DELETE FROM activity_user_email_hourly AS rollup
    USING (SELECT DISTINCT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000 AS hour,
                           user_email, type, method, coalesce(status, -1) AS status
           FROM purged WHERE user_email IS NOT NULL) AS gone
    WHERE rollup.hour = gone.hour AND rollup.user_email = gone.user_email AND rollup.type = gone.type
      AND rollup.method = gone.method AND rollup.status = gone.status AND rollup.events = 0;
    RETURN NULL;
END
$$;
DELETE FROM activity_hourly WHERE events = 0;
DELETE FROM activity_user_id_hourly WHERE events = 0;
DELETE FROM activity_user_email_hourly WHERE events = 0;

-- Activity counts a window's partial hours from the timestamp index, index-only, and only
-- what is sealed (`position` at or below the head's): the index carries `position` too.
DROP INDEX events_by_timestamp;
CREATE INDEX events_by_timestamp ON events (timestamp_ms) INCLUDE (status, method, type, user_id, user_email, position);
